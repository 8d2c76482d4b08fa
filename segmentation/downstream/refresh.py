"""What campaign teams build on, refreshed after every score: shares, current segments, migrations, drift."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from segmentation.core import logs
from segmentation.core.config import Config
from segmentation.downstream import current, drift, shares
from segmentation.downstream.migrations import migrations
from segmentation.io import tables
from segmentation.model.store import ModelBundle

OK, DRIFT = "ok", "drift"


def features_drift(spark: SparkSession, cfg: Config, model: ModelBundle, features: DataFrame) -> dict[str, float]:
    """PSI of every model feature of tonight's features against the model's training sample."""
    if not model.drift_reference:
        logs.get("drift").warning("model %s has no drift reference (trained before drift existed): PSI skipped",
                                  model.version)
        return {}
    return drift.feature_psi(features, model.drift_reference)


def refresh(spark: SparkSession, cfg: Config, run_date: dt.date, model: ModelBundle,
            features: DataFrame, psis: dict[str, float] | None = None) -> dict[str, Any]:
    """After `segments` holds the night: segment_shares, segments_current, segment_migrations, drift.

    `psis`: the features' PSI when the scoring pass measured it; else it is measured here.
    """
    log = logs.get("score")
    t = cfg.tables
    segments_ref = tables.table_ref(t, t.segments)
    refs = {name: tables.table_ref(t, getattr(t, name))
            for name in ("segment_shares", "segments_current", "segment_migrations", "drift")}
    night = tables.read_run(spark, segments_ref, run_date)
    previous_date = current.previous_run_date(spark, segments_ref, run_date)
    with logs.step(log, "write segment shares") as s:
        s.rows = shares.write(spark, segments_ref, refs["segment_shares"], run_date)
    with logs.step(log, "merge segments_current") as s:
        current.merge_night(spark, night, refs["segments_current"], run_date, previous_date)
        s.detail = f"table={refs['segments_current']} previous_run_date={previous_date}"
    with logs.step(log, "write segment migrations") as s:
        before = tables.read_run(spark, segments_ref, previous_date) if previous_date else None
        tables.replace_run(migrations(night, before, run_date, previous_date), refs["segment_migrations"], run_date)
        s.rows = tables.read_run(spark, refs["segment_migrations"], run_date).count()
    with logs.step(log, "measure drift") as s:
        counted_by = "score" if psis is not None else "aggregate"
        if psis is None:
            psis = features_drift(spark, cfg, model, features)
        changes = {}
        if previous_date is not None:
            two_nights = tables.read_delta(spark, refs["segment_shares"]).where(
                F.col("run_date").isin(run_date, previous_date)
            ).select("run_date", "segment_id", "share").collect()  # a few rows per night
            tonight = {r.segment_id: r.share for r in two_nights if r.run_date == run_date}
            before_shares = {r.segment_id: r.share for r in two_nights if r.run_date == previous_date}
            changes = drift.share_changes(tonight, before_shares)
        dc = cfg.drift
        records = drift.rows(run_date, model.version, psis, changes, dc.psi_threshold, dc.share_change_points,
                             previous_date)
        tables.replace_run(spark.createDataFrame(records, drift.DRIFT_SCHEMA), refs["drift"], run_date)
        flagged = [f"{r['measure']}:{r['name']}={r['value']:.3f}" for r in records if r["flagged"]]
        status = DRIFT if flagged else OK
        s.rows = len(records)
        s.detail = f"status={status} bins_counted_by={counted_by} max_psi={max(psis.values(), default=0):.3f} " + (
            f"max_share_change={max((abs(v) for v in changes.values()), default=0):.2f}pts")
    if flagged:
        log.warning("DRIFT on %s against model %s: %s", run_date, model.version, ", ".join(flagged))
    return {"drift_status": status, "drift_flags": flagged, "tables": [str(r) for r in refs.values()]}
