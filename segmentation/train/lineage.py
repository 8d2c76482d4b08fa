"""Stable segment ids across retrains: match a new clustering to the current model's segments.

Campaigns target `segment_id` week after week, so a retrain must not renumber what it found
again. The current model's forest labels the new training sample; the new clusters are matched
to those labels by Hungarian assignment on the overlap matrix. A match whose overlap covers at
least `min_overlap` of either segment keeps the old id (and name); every other new segment gets
a fresh id above any id ever issued, so an id is never reused for a different segment.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from pyspark.sql.types import ArrayType, IntegerType, LongType, StringType, StructField, StructType
from scipy.optimize import linear_sum_assignment

from segmentation.core.columns import NOISE
from segmentation.core.config import LineageConfig
from segmentation.io.rows import row

KEPT, NEW, SPLIT, MERGE, RETIRED = "kept", "new", "split", "merge", "retired"
_DEFAULTS = LineageConfig()  # the thresholds `match` uses unless told (train.lineage)

LINEAGE_SCHEMA = StructType(
    [
        StructField("model_version", StringType(), False),
        StructField("previous_model_version", StringType(), True),
        StructField("relation", StringType(), False),  # kept | new | split | merge | retired
        StructField("segment_ids", ArrayType(IntegerType()), False),  # in this model
        StructField("previous_segment_ids", ArrayType(IntegerType()), False),  # in the previous model
        StructField("rows", LongType(), False),  # sample rows the relation is about
    ]
)


@dataclass
class Matching:
    mapping: dict[int, int]  # clusterer label -> stable id
    next_id: int  # the first id never issued yet
    previous_version: str | None = None
    events: list[dict] = field(default_factory=list)

    def relabel(self, labels: np.ndarray) -> np.ndarray:
        out = labels.copy()
        for label, stable in self.mapping.items():
            out[labels == label] = stable
        return out

    @property
    def kept(self) -> dict[int, int]:
        return {e["segment_ids"][0]: e["previous_segment_ids"][0] for e in self.events if e["relation"] == KEPT}


def first_ids(labels: np.ndarray, start: int = 0) -> Matching:
    """With no current model to match, the clusterer's labels (offset by `start`) are the ids."""
    segments = [int(s) for s in np.unique(labels) if s != NOISE]
    mapping = {s: s + start for s in segments}
    events = [{"relation": NEW, "segment_ids": [mapping[s]], "previous_segment_ids": [],
               "rows": int((labels == s).sum())} for s in segments]
    return Matching(mapping, max(mapping.values(), default=start - 1) + 1, None, events)


def match(
    labels: np.ndarray, previous: np.ndarray, previous_version: str, previous_next_id: int,
    min_overlap: float = _DEFAULTS.min_overlap, part: float = _DEFAULTS.part,
) -> Matching:
    """Stable ids for `labels` (new clusters) given `previous` (the current model's ids, same rows).

    Events: `kept` (matched), `new`, `retired` (an old id with no match), `merge` (a new segment
    with two or more old sources each >= `part` of it), `split` (an old segment sending >= `part`
    of itself to two or more new segments).
    """
    keep = labels != NOISE
    table = pd.crosstab(pd.Series(labels[keep], name="new"), pd.Series(previous[keep], name="old"))
    new_ids, old_ids = [int(i) for i in table.index], [int(j) for j in table.columns]
    overlap = table.to_numpy()
    rows, cols = linear_sum_assignment(-overlap)
    new_size, old_size = overlap.sum(axis=1), overlap.sum(axis=0)
    mapping: dict[int, int] = {}
    events: list[dict] = []
    for r, c in zip(rows, cols):
        o = overlap[r, c]
        if o > 0 and (o >= min_overlap * new_size[r] or o >= min_overlap * old_size[c]):
            mapping[new_ids[r]] = old_ids[c]
            events.append({"relation": KEPT, "segment_ids": [old_ids[c]], "previous_segment_ids": [old_ids[c]],
                           "rows": int(o)})
    next_id = max([previous_next_id, *[i + 1 for i in old_ids]])
    for r, label in enumerate(new_ids):
        if label not in mapping:
            mapping[label] = next_id
            sources = [old_ids[c] for c in np.argsort(-overlap[r], kind="stable") if overlap[r, c] >= part * new_size[r]]
            events.append({"relation": NEW, "segment_ids": [next_id], "previous_segment_ids": sources,
                           "rows": int(new_size[r])})
            next_id += 1
    matched_old = set(mapping.values())
    for c, old in enumerate(old_ids):
        if old not in matched_old:
            events.append({"relation": RETIRED, "segment_ids": [], "previous_segment_ids": [old],
                           "rows": int(old_size[c])})
    for r, label in enumerate(new_ids):
        sources = [old_ids[c] for c in np.argsort(-overlap[r], kind="stable") if overlap[r, c] >= part * new_size[r]]
        if len(sources) >= 2:
            events.append({"relation": MERGE, "segment_ids": [mapping[label]], "previous_segment_ids": sources,
                           "rows": int(new_size[r])})
    for c, old in enumerate(old_ids):
        targets = [mapping[new_ids[r]] for r in np.argsort(-overlap[:, c], kind="stable")
                   if overlap[r, c] >= part * old_size[c]]
        if len(targets) >= 2:
            events.append({"relation": SPLIT, "segment_ids": targets, "previous_segment_ids": [old],
                           "rows": int(old_size[c])})
    return Matching(mapping, next_id, previous_version, events)


def table_rows(matching: Matching, version: str) -> list[dict]:
    """LINEAGE_SCHEMA rows: one per event of the matching."""
    return [
        row(LINEAGE_SCHEMA, model_version=version, previous_model_version=matching.previous_version,
            relation=e["relation"], segment_ids=list(e["segment_ids"]),
            previous_segment_ids=list(e["previous_segment_ids"]), rows=int(e["rows"]))
        for e in matching.events
    ]
