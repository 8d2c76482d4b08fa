"""The `runs` audit table: one row per job run, success or failure, with its row accounting."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from pyspark.sql import SparkSession
from pyspark.sql.types import DateType, LongType, StringType, StructField, StructType, TimestampType

from segmentation import tables
from segmentation.config import Config

RUNS_SCHEMA = StructType(
    [
        StructField("run_id", StringType(), False),
        StructField("run_date", DateType(), False),
        StructField("job", StringType(), False),
        StructField("started_at", TimestampType(), False),
        StructField("ended_at", TimestampType(), False),
        StructField("status", StringType(), False),
        StructField("rows_read", LongType(), True),
        StructField("rows_written", LongType(), True),
        StructField("rows_quarantined", LongType(), True),
        StructField("model_version", StringType(), True),
        StructField("error", StringType(), True),
    ]
)


def new_run_id() -> str:
    return uuid.uuid4().hex


def record(
    spark: SparkSession, cfg: Config, run_id: str, run_date: dt.date, job: str,
    started_at: dt.datetime, summary: dict[str, Any] | None, error: BaseException | None,
) -> None:
    """Appends the run's row; appending (not replacing) keeps every attempt of a night."""
    summary = summary or {}
    row = (
        run_id, run_date, job, started_at, dt.datetime.now(dt.timezone.utc).replace(tzinfo=None),
        "FAILED" if error else "SUCCEEDED",
        summary.get("rows_read"), summary.get("rows_written"), summary.get("rows_quarantined"),
        summary.get("model_version"),
        f"{type(error).__name__}: {error}" if error else None,
    )
    ref = tables.table_ref(cfg.tables, cfg.tables.runs)
    tables.append(spark.createDataFrame([row], RUNS_SCHEMA), ref)
