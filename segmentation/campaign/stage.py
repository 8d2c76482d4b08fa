"""The lift job: responses joined to membership at the time -> `audience_lift` and its page."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from segmentation.campaign import lift, page
from segmentation.core import logs
from segmentation.core.columns import RUN_DATE
from segmentation.core.config import Config
from segmentation.core.errors import FeaturesNotFoundError
from segmentation.io import nights, runs, tables


def run_lift(spark: SparkSession, cfg: Config, responses_source: str) -> dict[str, Any]:
    """Reads the responses, writes `audience_lift` (replaced whole: a measurement of these responses)
    and the page at `lift.report`."""
    log = logs.get("lift")
    events_ref = tables.table_ref(cfg.tables, cfg.tables.audience_events)
    if not tables.exists(spark, events_ref):
        raise FeaturesNotFoundError(f"table {events_ref} does not exist yet: configure audiences and run a night")
    published = nights.published(spark, cfg)
    events = tables.read_delta(spark, events_ref).where(F.col(RUN_DATE).isin(published))
    with logs.step(log, "join responses to membership") as s:
        responses = lift.checked_responses(tables.read_raw(spark, responses_source)).persist()
        matched = lift.at_the_time(responses, events)
        grouped = [r.asDict() for r in lift.counts(matched).collect()]  # a few rows per audience and segment
        total = responses.count()
        kept = sum(r["customers"] for r in grouped)
        responses.unpersist()
        s.rows = kept
        s.detail = f"responses={total} not_members={total - kept} source={responses_source}"
    rows = lift.lift_rows(grouped, cfg.lift.confidence, runs.utc_now())
    ref = tables.table_ref(cfg.tables, cfg.tables.audience_lift)
    with logs.step(log, "write audience_lift") as s:
        writer = spark.createDataFrame(rows, lift.LIFT_SCHEMA).write.format("delta").mode("overwrite")
        writer = writer.option("overwriteSchema", "true")
        writer.saveAsTable(ref.name) if ref.name else writer.save(ref.path)
        s.rows = len(rows)
    report = Path(cfg.lift.report)
    report.parent.mkdir(parents=True, exist_ok=True)
    staged = report.with_name(f".{report.name}.tmp")
    staged.write_text(page.render(rows, kept, total - kept), encoding="utf-8")
    os.replace(staged, report)
    log.info("lift page: %s", report)
    return {"tables": [str(ref)], "responses": total, "rows_read": total, "rows_written": len(rows),
            "report": str(report), "lift": rows}

