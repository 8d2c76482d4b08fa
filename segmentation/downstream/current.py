"""`segments_current`: one row per customer, their segment now, merged in after every score.

Created with Delta's Change Data Feed, so a reader asks "who moved since version N" with
`readChangeFeed`. The MERGE touches a row only when something about it changed: a re-run of the
same night writes no change. Customers missing from a night (closed accounts) are not deleted:
they turn `active = false` with `last_seen_run_date`, the last night they were scored.
"""

from __future__ import annotations

import datetime as dt
import time

from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import BooleanType, DateType, DoubleType, IntegerType, StringType, StructField, StructType

from segmentation.core import logs
from segmentation.core.columns import ID_COLUMN, RUN_DATE
from segmentation.io import tables

CURRENT_SCHEMA = StructType(
    [
        StructField(ID_COLUMN, StringType(), False),
        StructField("segment_id", IntegerType(), False),
        StructField("segment_name", StringType(), False),
        StructField("segment_confidence", DoubleType(), False),
        StructField("model_version", StringType(), False),
        StructField("scored_run_date", DateType(), False),  # the night these values come from
        StructField("since_run_date", DateType(), False),  # the night the customer entered this segment
        StructField("previous_segment_id", IntegerType(), True),  # the segment before, null if none
        StructField("active", BooleanType(), False),  # false: missing from a later night's input
        StructField("last_seen_run_date", DateType(), True),  # null while active; the last night scored
    ]
)


def previous_run_date(spark: SparkSession, segments_ref: tables.TableRef, run_date: dt.date) -> dt.date | None:
    """The latest scored night before `run_date` (one aggregate over the partition column)."""
    row = tables.read_delta(spark, segments_ref).where(F.col(RUN_DATE) < F.lit(run_date)).agg(F.max(RUN_DATE)).first()
    return row[0] if row else None


def _ensure_table(spark: SparkSession, ref: tables.TableRef) -> DeltaTable:
    if not tables.exists(spark, ref):
        builder = DeltaTable.createIfNotExists(spark)
        builder = builder.tableName(ref.name) if ref.name else builder.location(ref.path)
        try:
            builder.addColumns(CURRENT_SCHEMA).property("delta.enableChangeDataFeed", "true").execute()
        except Exception:  # noqa: BLE001 - another run created it first: merge into theirs
            if not tables.exists(spark, ref):
                raise
    return DeltaTable.forName(spark, ref.name) if ref.name else DeltaTable.forPath(spark, ref.path)


def merge_night(
    spark: SparkSession, night: DataFrame, current_ref: tables.TableRef, run_date: dt.date,
    previous_date: dt.date | None, attempts: int = 5,
) -> None:
    """MERGEs one night's `segments` rows into `segments_current`, retrying when another night's
    MERGE commits first.

    A night older than a row's values never overwrites them, so the MERGE gives the same table
    whichever of two nights commits first, and a retry after a conflict is safe.
    """
    for attempt in range(1, attempts + 1):
        try:
            return _merge(spark, night, current_ref, run_date, previous_date)
        except Exception as exc:  # noqa: BLE001 - only Delta's conflicts are retried
            if attempt == attempts or not tables.is_write_conflict(exc):
                raise
            logs.get("score").info("segments_current: another run's MERGE committed first; retrying (%d)", attempt)
            time.sleep(0.5 * attempt)


def _merge(
    spark: SparkSession, night: DataFrame, current_ref: tables.TableRef, run_date: dt.date,
    previous_date: dt.date | None,
) -> None:
    target = _ensure_table(spark, current_ref)
    source = night.select(ID_COLUMN, "segment_id", "segment_name", "segment_confidence", "model_version",
                          F.col(RUN_DATE).alias("scored_run_date"))
    moved = "t.segment_id <> s.segment_id"
    changed = (
        f"t.scored_run_date <= s.scored_run_date AND ({moved} OR t.segment_name <> s.segment_name "
        "OR t.segment_confidence <> s.segment_confidence OR t.model_version <> s.model_version OR NOT t.active)"
    )
    # An active customer was scored on the previous night (or would have been marked then).
    departed = F.lit(previous_date) if previous_date is not None else F.col("t.scored_run_date")
    (
        target.alias("t")
        .merge(source.alias("s"), f"t.{ID_COLUMN} = s.{ID_COLUMN}")
        .whenMatchedUpdate(
            condition=changed,
            set={
                "segment_id": "s.segment_id",
                "segment_name": "s.segment_name",
                "segment_confidence": "s.segment_confidence",
                "model_version": "s.model_version",
                "scored_run_date": "s.scored_run_date",
                "since_run_date": f"CASE WHEN {moved} THEN s.scored_run_date ELSE t.since_run_date END",
                "previous_segment_id": f"CASE WHEN {moved} THEN t.segment_id ELSE t.previous_segment_id END",
                "active": "true",
                "last_seen_run_date": "CAST(NULL AS DATE)",
            },
        )
        .whenNotMatchedInsert(
            values={
                ID_COLUMN: f"s.{ID_COLUMN}",
                "segment_id": "s.segment_id",
                "segment_name": "s.segment_name",
                "segment_confidence": "s.segment_confidence",
                "model_version": "s.model_version",
                "scored_run_date": "s.scored_run_date",
                "since_run_date": "s.scored_run_date",
                "previous_segment_id": "CAST(NULL AS INT)",
                "active": "true",
                "last_seen_run_date": "CAST(NULL AS DATE)",
            }
        )
        .whenNotMatchedBySourceUpdate(
            condition=F.col("t.active") & (F.col("t.scored_run_date") <= F.lit(run_date)),
            set={"active": F.lit(False), "last_seen_run_date": departed},
        )
        .execute()
    )
