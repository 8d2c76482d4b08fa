"""Segment profiles: what each segment looks like in raw units, and how far from everyone.

Computed at train time on the training sample (pandas, driver side). Raw figures are what an
analyst quotes; the standardized difference is measured in the log-scaled space the features
are compared in, so one heavy tail does not decide which traits stand out.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from pyspark.sql.types import (
    DoubleType,
    IntegerType,
    LongType,
    StringType,
    StructField,
    StructType,
)

from segmentation.io.rows import row

POPULATION = "All customers"

PROFILE_COLUMNS = ["segment_id", "segment_name", "size", "share", "feature", "mean", "median", "p25", "p75", "std_diff"]

# The Delta table `segment_profiles`: one row per (model_version, segment_id, feature); the
# population rows have a null segment_id.
PROFILES_SCHEMA = StructType(
    [
        StructField("model_version", StringType(), False),
        StructField("segment_id", IntegerType(), True),
        StructField("segment_name", StringType(), False),
        StructField("size", LongType(), False),
        StructField("share", DoubleType(), False),
        StructField("feature", StringType(), False),
        StructField("mean", DoubleType(), False),
        StructField("median", DoubleType(), False),
        StructField("p25", DoubleType(), False),
        StructField("p75", DoubleType(), False),
        StructField("std_diff", DoubleType(), False),
    ]
)


def _stats(values: pd.DataFrame) -> pd.DataFrame:
    q = values.quantile([0.25, 0.5, 0.75])
    return pd.DataFrame({"mean": values.mean(), "median": q.loc[0.5], "p25": q.loc[0.25], "p75": q.loc[0.75]})


def segment_profiles(
    sample: pd.DataFrame, scaled: np.ndarray, labels: np.ndarray, columns: list[str],
    names: dict[int, str] | None = None,
) -> pd.DataFrame:
    """Long profile frame: per segment (and the population, segment_id <NA>) and feature.

    `scaled` is the sample in the fitted transform's units (population mean 0, sd 1), so the
    standardized difference is the segment's mean there minus the population's.
    """
    names = names or {}
    raw = sample[columns].astype(float)
    scaled_frame = pd.DataFrame(scaled, columns=columns)
    population_scaled = scaled_frame.mean()
    total = len(labels)
    parts = []
    pop = _stats(raw)
    pop["std_diff"] = 0.0
    parts.append(pop.assign(segment_id=pd.NA, segment_name=POPULATION, size=total, share=1.0))
    for segment in np.unique(labels):
        mask = labels == segment
        stats = _stats(raw[mask])
        stats["std_diff"] = scaled_frame[mask].mean() - population_scaled
        parts.append(
            stats.assign(
                segment_id=int(segment), segment_name=names.get(int(segment), f"Segment {segment}"),
                size=int(mask.sum()), share=float(mask.sum() / total),
            )
        )
    frame = pd.concat(parts).rename_axis("feature").reset_index()
    frame["segment_id"] = frame["segment_id"].astype("Int64")
    return frame[PROFILE_COLUMNS].reset_index(drop=True)


def with_names(profiles: pd.DataFrame, names: dict[int, str]) -> pd.DataFrame:
    """The same profiles with the personas' names filled in."""
    out = profiles.copy()
    segment = out["segment_id"]
    out["segment_name"] = [
        names.get(int(s), n) if not pd.isna(s) else n for s, n in zip(segment, out["segment_name"])
    ]
    return out


def pivot(profiles: pd.DataFrame, value: str) -> pd.DataFrame:
    """segments x features of one statistic (population rows left out)."""
    segs = profiles.dropna(subset=["segment_id"])
    return segs.pivot(index="segment_id", columns="feature", values=value)


def population(profiles: pd.DataFrame) -> pd.DataFrame:
    """The population rows, indexed by feature."""
    return profiles[profiles["segment_id"].isna()].set_index("feature")


def table_rows(profiles: pd.DataFrame, version: str) -> list[dict]:
    """Rows for PROFILES_SCHEMA, in the profile frame's order (the population's segment_id null)."""
    return [
        row(PROFILES_SCHEMA, model_version=version, segment_id=None if pd.isna(r.segment_id) else int(r.segment_id),
            segment_name=r.segment_name, size=int(r.size), share=float(r.share), feature=r.feature,
            mean=float(r.mean), median=float(r.median), p25=float(r.p25), p75=float(r.p75),
            std_diff=float(r.std_diff))
        for r in profiles.itertuples(index=False)
    ]
