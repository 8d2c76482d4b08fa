"""What the monitoring page shows (`MonitorInputs`): the last N published nights, read from the tables.

Only per-night aggregates leave Spark (a few rows per night and segment, feature or reason): the
customer tables are never collected. Everything after `read` is pandas, so the page is drawn
without Spark, like the model report.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from segmentation.core.columns import RUN_DATE
from segmentation.core.config import Config, GuardConfig
from segmentation.core.errors import FeaturesNotFoundError
from segmentation.io import nights, tables

MONITOR_FILE = "monitor.html"


@dataclass(eq=False)  # frames do not compare to a single bool
class MonitorInputs:
    """The nights on the page, oldest first, and what each table says about them."""

    nights: pd.DataFrame  # run_date, model_version, customers, started_at, published_at (PUBLISHED only)
    shares: pd.DataFrame  # run_date, segment_id, segment_name, customers, share
    drift: pd.DataFrame  # run_date, measure (psi | share_change_points), name, value, threshold, flagged
    migrations: pd.DataFrame  # run_date, previous_run_date, from_segment_id, to_segment_id, movement, customers
    quarantine: pd.DataFrame  # run_date, reason, rows (a row breaking two rules counts under both)
    quarantined_rows: pd.DataFrame  # run_date, rows (each quarantined row once)
    runs: pd.DataFrame  # run_id, run_date, job, status, started_at, ended_at, seconds, error, drift_status
    profile: pd.DataFrame  # night_profile: run_date, measure, name, value; one night before the first included
    psi_threshold: float
    share_change_points: float
    guard: GuardConfig
    requested: int  # monitor.nights: how many nights were asked for
    created_at: str  # ISO 8601, UTC


def default_output(cfg: Config) -> Path:
    """`monitor.output`, or monitor.html beside the model bundles' folder."""
    if cfg.monitor.output:
        return Path(cfg.monitor.output)
    return Path(cfg.tables.models_dir).resolve().parent / MONITOR_FILE


def _frame(df: DataFrame | None, columns: list[str]) -> pd.DataFrame:
    """A small aggregate as pandas, or an empty frame with its columns when the table is missing."""
    if df is None:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in columns})
    return df.select(*columns).toPandas()


def _of_nights(spark: SparkSession, cfg: Config, key: str, dates: list[dt.date]) -> DataFrame | None:
    ref = tables.table_ref(cfg.tables, getattr(cfg.tables, key))
    if not dates or not tables.exists(spark, ref):
        return None
    return tables.read_delta(spark, ref).where(F.col(RUN_DATE).isin(dates))


def read(spark: SparkSession, cfg: Config, created_at: dt.datetime) -> MonitorInputs:
    """The last `monitor.nights` published nights of the lake; a named error when none is published."""
    rows = nights.all_nights(spark, cfg)  # one small row per night
    published = [r for r in rows if r["status"] == nights.PUBLISHED]
    if not published:
        raise FeaturesNotFoundError(f"no published night in {nights.ref(cfg)}: nothing to monitor yet")
    shown = published[-cfg.monitor.nights:]
    dates = [r[RUN_DATE] for r in shown]
    before = [r[RUN_DATE] for r in published[:-len(shown)][-1:]]  # what the first night's guard compared with
    night_frame = pd.DataFrame([{k: r[k] for k in ("run_date", "model_version", "customers", "started_at",
                                                    "published_at")} for r in shown])
    quarantine = _of_nights(spark, cfg, "quarantine", dates)
    reasons = None if quarantine is None else (
        quarantine.select(RUN_DATE, F.explode("reasons").alias("reason")).groupBy(RUN_DATE, "reason")
        .agg(F.count(F.lit(1)).alias("rows")))
    per_night = None if quarantine is None else quarantine.groupBy(RUN_DATE).agg(F.count(F.lit(1)).alias("rows"))
    runs_ref = tables.table_ref(cfg.tables, cfg.tables.runs)
    runs = None
    if tables.exists(spark, runs_ref):
        # Every run of the window's dates, refused and failed ones included (their nights are not published).
        runs = (tables.read_delta(spark, runs_ref).where(F.col(RUN_DATE).between(F.lit(dates[0]), F.lit(dates[-1])))
                .withColumn("seconds", F.col("ended_at").cast("double") - F.col("started_at").cast("double")))
    return MonitorInputs(
        nights=night_frame,
        shares=_frame(_of_nights(spark, cfg, "segment_shares", dates),
                      [RUN_DATE, "segment_id", "segment_name", "customers", "share"]),
        drift=_frame(_of_nights(spark, cfg, "drift", dates),
                     [RUN_DATE, "measure", "name", "value", "threshold", "flagged"]),
        migrations=_frame(_of_nights(spark, cfg, "segment_migrations", dates),
                          [RUN_DATE, "previous_run_date", "from_segment_id", "to_segment_id", "movement", "customers"]),
        quarantine=_frame(reasons, [RUN_DATE, "reason", "rows"]),
        quarantined_rows=_frame(per_night, [RUN_DATE, "rows"]),
        runs=_frame(runs, ["run_id", RUN_DATE, "job", "status", "started_at", "ended_at", "seconds", "error",
                           "drift_status"]),
        profile=_frame(_of_nights(spark, cfg, "night_profile", before + dates), [RUN_DATE, "measure", "name", "value"]),
        psi_threshold=cfg.drift.psi_threshold,
        share_change_points=cfg.drift.share_change_points,
        guard=cfg.guard,
        requested=cfg.monitor.nights,
        created_at=created_at.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    )
