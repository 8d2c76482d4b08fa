"""From night to night: tonight's input against the last published night, before anything is written.

A file holding half the customers, re-keyed ids or money in cents keeps every row rule, and would
publish a night that marks half of `segments_current` inactive (or retrain on it). The guard
measures what such breaks change (customer count, departed and new customers, the shape of the
ids, each money column's median), `decide` compares the figures with `guard.*`, and a night past a
threshold is refused unless accepted by hand.

Tonight's medians and id shapes come from the stage's one aggregation pass; last night's from its
`night_profile` rows (written with each night), or, for a lake older than that table, from its
`features` and `segments` partitions. Departed and new customers are one join of the two nights' ids.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from typing import Any

from pyspark.sql import Column, DataFrame, Row, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import DateType, DoubleType, StringType, StructField, StructType

from segmentation.core.columns import ID_COLUMN, RUN_DATE
from segmentation.core.config import Config, GuardConfig
from segmentation.core.errors import NightGuardError
from segmentation.io import nights, tables

MEDIAN, ID_SHAPE, CUSTOMERS = "median", "id_shape", "customers"
PROFILE_SCHEMA = StructType(
    [
        StructField(RUN_DATE, DateType(), False),
        StructField("measure", StringType(), False),  # median | id_shape | customers
        StructField("name", StringType(), False),  # the money column, the shape, or "" for customers
        StructField("value", DoubleType(), True),  # the median, the shape's customers, the count
    ]
)
_MEDIAN_ALIAS, _SHAPES_ALIAS, _UNSEEN_ALIAS = "_guard_median_", "_guard_id_shapes", "_guard_unseen_id_shape"
ACCEPT_HINT = "--accept-night (or --set guard.accept=true)"


# ---------------------------------------------------------------------------------------------
# the decision: plain values in, failures out


@dataclass(frozen=True)
class Figures:
    """Tonight against last night, as counts and medians; `None` where a figure was not measured."""

    previous_run_date: dt.date
    customers: int
    previous_customers: int
    departed: int
    new: int
    tonight_ids: int
    unseen_id_format: int | None = None  # None: last night's shapes unknown (too many to keep)
    medians: dict[str, float | None] = field(default_factory=dict)
    previous_medians: dict[str, float | None] = field(default_factory=dict)

    def measures(self) -> dict[str, float | None]:
        """Every figure `decide` judges, by the name of its threshold's figure."""
        share = (lambda n, of: n / of if of else None)
        out: dict[str, float | None] = {
            "count_change": share(self.customers - self.previous_customers, self.previous_customers),
            "departed_share": share(self.departed, self.previous_customers),
            "new_share": share(self.new, self.tonight_ids),
            "unseen_id_format_share": None if self.unseen_id_format is None else share(self.unseen_id_format, self.customers),
        }
        for column, value in self.medians.items():
            out[f"median_ratio:{column}"] = median_ratio(value, self.previous_medians.get(column))
        return out


def median_ratio(tonight: float | None, previous: float | None) -> float | None:
    """tonight / previous; None when either is missing or zero (a zero median has no scale to compare)."""
    if tonight is None or previous is None or tonight == 0 or previous == 0:
        return None
    return tonight / previous


@dataclass(frozen=True)
class Failure:
    figure: str
    value: float
    threshold: float

    def __str__(self) -> str:
        if self.figure.startswith("median_ratio:"):
            return f"{self.figure} {self.value:.4g} (beyond x{self.threshold:g} or /{self.threshold:g})"
        return f"{self.figure} {self.value:+.4f} (threshold {self.threshold:g})" if self.figure == "count_change" \
            else f"{self.figure} {self.value:.4f} (threshold {self.threshold:g})"


def decide(figures: Figures, cfg: GuardConfig) -> list[Failure]:
    """The figures past their `guard.*` thresholds, in the order they are measured."""
    limits = {"count_change": cfg.max_count_change, "departed_share": cfg.max_departed_share,
              "new_share": cfg.max_new_share, "unseen_id_format_share": cfg.max_unseen_id_format_share}
    failures = []
    for name, value in figures.measures().items():
        if value is None:
            continue
        if name.startswith("median_ratio:"):
            if max(value, 1 / value) > cfg.max_median_ratio:
                failures.append(Failure(name, value, cfg.max_median_ratio))
        elif abs(value) > limits[name]:
            failures.append(Failure(name, value, limits[name]))
    return failures


def describe(figures: Figures) -> str:
    """Every measured figure on one line, for the log."""
    parts = [f"previous_run_date={figures.previous_run_date}", f"customers={figures.customers}",
             f"previous_customers={figures.previous_customers}", f"departed={figures.departed}", f"new={figures.new}"]
    parts += [f"{k}={v:.4g}" for k, v in figures.measures().items() if v is not None]
    return " ".join(parts)


def refusal(run_date: dt.date, figures: Figures, failures: list[Failure]) -> str:
    """The error's text, one line (the `runs` row keeps the first): every failed figure and how to accept."""
    return (f"night {run_date} refused by the night-to-night guard against {figures.previous_run_date} "
            f"({figures.customers} customers tonight, {figures.previous_customers} then): "
            + "; ".join(map(str, failures))
            + f"; nothing was written for {run_date}. If the input is right, re-run with {ACCEPT_HINT}")


# ---------------------------------------------------------------------------------------------
# Spark: columns for the stage's aggregation pass, the previous night, the ids' join


def id_shape(ids: Column) -> Column:
    """The id's format: every letter as A, every digit as 9 (C10001 -> A99999)."""
    return F.regexp_replace(F.regexp_replace(ids, "[A-Za-z]", "A"), "[0-9]", "9")


@dataclass(frozen=True)
class Previous:
    """What the guard keeps of the last published night before tonight."""

    run_date: dt.date
    medians: dict[str, float | None]
    shapes: list[str] | None  # None: more shapes than guard.max_id_shapes, not compared


def aggregates(cfg: GuardConfig, kept: Column, previous: Previous | None) -> list[Column]:
    """Tonight's profile, for the stage's one pass over the input: medians and id shapes of the rows
    that keep the contract, and how many of those ids have a shape last night did not."""
    shape = id_shape(F.col(ID_COLUMN))
    cols = [F.percentile_approx(F.when(kept, F.col(c)), 0.5, cfg.accuracy).alias(_MEDIAN_ALIAS + c)
            for c in cfg.median_columns]
    # Capped: one over the cap says "too many to keep" without collecting every id's shape.
    cols.append(F.slice(F.collect_set(F.when(kept, shape)), 1, cfg.max_id_shapes + 1).alias(_SHAPES_ALIAS))
    if previous is not None and previous.shapes is not None:
        seen = F.lit(None).cast("boolean") if not previous.shapes else shape.isin(previous.shapes)
        cols.append(F.count_if(kept & ~F.coalesce(seen, F.lit(False))).alias(_UNSEEN_ALIAS))
    return cols


def tonight_medians(totals: Row, cfg: GuardConfig) -> dict[str, float | None]:
    return {c: _number(totals[_MEDIAN_ALIAS + c]) for c in cfg.median_columns}


def tonight_shapes(totals: Row, cfg: GuardConfig) -> list[str] | None:
    shapes = sorted(s for s in totals[_SHAPES_ALIAS] if s is not None)
    return None if len(shapes) > cfg.max_id_shapes else shapes


def _number(value: Any) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)


def previous_night(spark: SparkSession, cfg: Config, run_date: dt.date) -> Previous | None:
    """The latest published night (`nights`) before tonight, with its medians and id
    shapes; None on the first night (nothing to compare with)."""
    segments = tables.table_ref(cfg.tables, cfg.tables.segments)
    if not tables.exists(spark, segments):
        return None
    earlier = [d for d in nights.published(spark, cfg) if d < run_date]
    if not earlier:
        return None
    found = earlier[-1]
    stored = _stored_profile(spark, cfg, found)
    if stored is not None:
        return stored
    return _profile_from_tables(spark, cfg, found, segments)


def _stored_profile(spark: SparkSession, cfg: Config, run_date: dt.date) -> Previous | None:
    ref = tables.table_ref(cfg.tables, cfg.tables.night_profile)
    if not tables.exists(spark, ref):
        return None
    rows = tables.read_run(spark, ref, run_date).where(F.col("measure").isin(MEDIAN, ID_SHAPE, CUSTOMERS)).collect()
    if not rows:  # a night published before the table existed
        return None
    medians = {r["name"]: r["value"] for r in rows if r["measure"] == MEDIAN}
    shapes = sorted(r["name"] for r in rows if r["measure"] == ID_SHAPE)
    # A night of too many shapes stored none, and says so with its customers row's name.
    too_many = any(r["measure"] == CUSTOMERS and r["name"] == "id_shapes_not_kept" for r in rows)
    return Previous(run_date, {c: medians.get(c) for c in cfg.guard.median_columns}, None if too_many else shapes)


def _profile_from_tables(spark: SparkSession, cfg: Config, run_date: dt.date, segments: tables.TableRef) -> Previous:
    """A lake from before `night_profile`: the night's medians from its `features` partition (imputed
    values included) and its id shapes from its `segments` ids."""
    g = cfg.guard
    medians: dict[str, float | None] = {c: None for c in g.median_columns}
    features = tables.table_ref(cfg.tables, cfg.tables.features)
    if tables.exists(spark, features):
        row = tables.read_run(spark, features, run_date).agg(
            *[F.percentile_approx(c, 0.5, g.accuracy).alias(c) for c in g.median_columns]).first()
        medians = {c: _number(row[c]) for c in g.median_columns}
    shapes = [r[0] for r in tables.read_run(spark, segments, run_date)
              .select(id_shape(F.col(ID_COLUMN))).distinct().limit(g.max_id_shapes + 1).collect()]
    return Previous(run_date, medians, None if len(shapes) > g.max_id_shapes else sorted(shapes))


def id_changes(tonight: DataFrame, previous: DataFrame) -> DataFrame:
    """One row: tonight's distinct ids, last night's, those departed and those new (ids only, one join)."""
    a = tonight.select(F.col(ID_COLUMN)).where(F.col(ID_COLUMN).isNotNull()).distinct().withColumn("_t", F.lit(True))
    b = previous.select(F.col(ID_COLUMN)).distinct().withColumn("_p", F.lit(True))
    joined = a.join(b, ID_COLUMN, "full_outer")
    return joined.agg(
        F.count_if(F.col("_t").isNotNull()).alias("tonight"),
        F.count_if(F.col("_p").isNotNull()).alias("previous"),
        F.count_if(F.col("_t").isNull()).alias("departed"),
        F.count_if(F.col("_p").isNull()).alias("new"),
    )


def measure(spark: SparkSession, cfg: Config, raw: DataFrame, totals: Row, customers: int,
            previous: Previous) -> Figures:
    """Tonight's figures against `previous`: the pass's medians and shapes, and the ids' join."""
    segments = tables.read_run(spark, tables.table_ref(cfg.tables, cfg.tables.segments), previous.run_date)
    ids = id_changes(raw, segments).first()
    unseen = int(totals[_UNSEEN_ALIAS]) if previous.shapes is not None else None
    return Figures(
        previous_run_date=previous.run_date, customers=customers, previous_customers=int(ids["previous"]),
        departed=int(ids["departed"]), new=int(ids["new"]), tonight_ids=int(ids["tonight"]),
        unseen_id_format=unseen, medians=tonight_medians(totals, cfg.guard), previous_medians=previous.medians,
    )


def check(spark: SparkSession, cfg: Config, run_date: dt.date, raw: DataFrame, totals: Row, customers: int,
          previous: Previous | None, log) -> dict[str, Any]:
    """Measures and decides; raises `NightGuardError` past a threshold unless `guard.accept`.

    Returns what the night's summary and the nightly need: whether the guard fired, and why.
    """
    if not cfg.guard.enabled:
        log.info("night guard: off (guard.enabled=false)")
        return {"fired": False, "failures": []}
    if previous is None:
        log.info("night guard: no published night before %s, nothing to compare with (first night)", run_date)
        return {"fired": False, "failures": []}
    figures = measure(spark, cfg, raw, totals, customers, previous)
    failures = decide(figures, cfg.guard)
    if not failures:
        log.info("night guard: passed: %s", describe(figures))
        return {"fired": False, "failures": [], "previous_run_date": str(previous.run_date)}
    if not cfg.guard.accept:
        raise NightGuardError(refusal(run_date, figures, failures))
    log.warning("night guard FIRED and the night was ACCEPTED by %s: %s; figures: %s", ACCEPT_HINT,
                "; ".join(map(str, failures)), describe(figures))
    return {"fired": True, "failures": [str(f) for f in failures], "previous_run_date": str(previous.run_date)}


def profile_rows(run_date: dt.date, cfg: GuardConfig, totals: Row, customers: int) -> list[tuple]:
    """Tonight's `night_profile` rows: each money median, each id shape, and the customer count."""
    shapes = tonight_shapes(totals, cfg)
    rows = [(run_date, MEDIAN, c, v) for c, v in tonight_medians(totals, cfg).items()]
    rows += [(run_date, ID_SHAPE, s, None) for s in shapes or []]
    rows.append((run_date, CUSTOMERS, "id_shapes_not_kept" if shapes is None else "", float(customers)))
    return rows
