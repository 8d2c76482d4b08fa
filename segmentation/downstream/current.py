"""`segments_current`: one row per customer, their membership now, as the published nights say.

A row changes only when membership does: the customer enters, moves to another segment, is
renamed by a retrain, leaves (`active = false`, `last_seen_run_date` the last night they were
scored) or comes back. Confidence and model drift alone are no change, so an unchanged night
commits nothing, and the change feed (`readChangeFeed`) carries exactly the membership changes.
`segment_confidence`, `model_version` and `scored_run_date` are the values of the night the
row last changed; each night's own are in `segments`.

Two ways to the same table:
- a night after the last published one applies its `segment_events` (the customers who
  changed) with one MERGE, whose cost grows with those customers; deletion vectors keep it
  from rewriting the files of the rows it updates;
- any other night (a backfill, a re-run, a night set aside) rebuilds the rows from the
  published nights in `segments`, and MERGEs only the rows that differ.
Both follow one definition, so the table does not depend on the order nights arrive in.
"""

from __future__ import annotations

import datetime as dt
import time

from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql.types import BooleanType, DateType, DoubleType, IntegerType, StringType, StructField, StructType

from segmentation.core import logs
from segmentation.core.columns import ID_COLUMN, RUN_DATE
from segmentation.downstream.events import DEPARTED, NEW, RELABELLED
from segmentation.io import tables

CURRENT_SCHEMA = StructType(
    [
        StructField(ID_COLUMN, StringType(), False),
        StructField("segment_id", IntegerType(), False),
        StructField("segment_name", StringType(), False),
        StructField("segment_confidence", DoubleType(), False),  # of the night the row last changed
        StructField("model_version", StringType(), False),  # of the night the row last changed
        StructField("scored_run_date", DateType(), False),  # the night the row last changed
        StructField("since_run_date", DateType(), False),  # the night the customer entered this segment
        StructField("previous_segment_id", IntegerType(), True),  # the segment before, null if none
        StructField("active", BooleanType(), False),  # false: missing from the latest published night
        StructField("last_seen_run_date", DateType(), True),  # null while active; the last night scored
    ]
)
_VALUES = [c for c in CURRENT_SCHEMA.fieldNames() if c != ID_COLUMN]
TABLE_PROPERTIES = {"delta.enableChangeDataFeed": "true", "delta.enableDeletionVectors": "true"}


def ensure_table(spark: SparkSession, ref: tables.TableRef) -> DeltaTable:
    """The table, created with its change feed and deletion vectors (and given them if older)."""
    if not tables.exists(spark, ref):
        builder = DeltaTable.createIfNotExists(spark)
        builder = builder.tableName(ref.name) if ref.name else builder.location(ref.path)
        builder = builder.addColumns(CURRENT_SCHEMA)
        for key, value in TABLE_PROPERTIES.items():
            builder = builder.property(key, value)
        try:
            builder.execute()
        except Exception:  # noqa: BLE001 - another run created it first: use theirs
            if not tables.exists(spark, ref):
                raise
    table = DeltaTable.forName(spark, ref.name) if ref.name else DeltaTable.forPath(spark, ref.path)
    properties = table.detail().select("properties").first()[0] or {}
    missing = {k: v for k, v in TABLE_PROPERTIES.items() if properties.get(k) != v}
    if missing:  # a table an earlier release created
        settings = ", ".join(f"'{k}' = '{v}'" for k, v in missing.items())
        spark.sql(f"ALTER TABLE {ref.name or f'delta.`{ref.path}`'} SET TBLPROPERTIES ({settings})")
    return table


def _retried(what, attempts: int = 5):
    for attempt in range(1, attempts + 1):
        try:
            return what()
        except Exception as exc:  # noqa: BLE001 - only Delta's conflicts are retried
            if attempt == attempts or not tables.is_write_conflict(exc):
                raise
            logs.get("score").info("segments_current: another run's MERGE committed first; retrying (%d)", attempt)
            time.sleep(0.5 * attempt)


def apply_events(spark: SparkSession, events: DataFrame, ref: tables.TableRef, run_date: dt.date,
                 previous_date: dt.date | None) -> None:
    """MERGEs one night's `segment_events` into a table that holds the night before: only the
    customers who changed are read from the source and written to the target."""
    table = ensure_table(spark, ref)
    source = events.select(ID_COLUMN, "event", F.col("to_segment_id").alias("segment_id"), "segment_name",
                           "segment_confidence", "model_version")
    moved = "t.segment_id <> s.segment_id"
    values = {
        "segment_id": "s.segment_id",
        "segment_name": "s.segment_name",
        "segment_confidence": "s.segment_confidence",
        "model_version": "s.model_version",
        "scored_run_date": F.lit(run_date),
        "active": F.lit(True),
        "last_seen_run_date": F.lit(None).cast(DateType()),
    }
    entered = {  # moved, or back after a gap (into the old segment: still in it since then)
        **values,
        "since_run_date": F.expr(f"CASE WHEN {moved} THEN DATE'{run_date.isoformat()}' ELSE t.since_run_date END"),
        "previous_segment_id": F.expr(f"CASE WHEN {moved} THEN t.segment_id ELSE t.previous_segment_id END"),
    }
    inserted = {ID_COLUMN: f"s.{ID_COLUMN}", **values, "since_run_date": F.lit(run_date),
                "previous_segment_id": F.lit(None).cast(IntegerType())}
    departed = F.lit(previous_date).cast(DateType())
    _retried(lambda: (
        table.alias("t")
        .merge(source.alias("s"), f"t.{ID_COLUMN} = s.{ID_COLUMN}")
        .whenMatchedUpdate(condition=f"s.event = '{DEPARTED}'",
                           set={"active": F.lit(False), "last_seen_run_date": departed})
        .whenMatchedUpdate(condition=f"s.event = '{RELABELLED}'",
                           set={k: v for k, v in values.items() if k != "segment_id"})
        .whenMatchedUpdate(set=entered)
        .whenNotMatchedInsert(condition=f"s.event = '{NEW}'", values=inserted)
        .execute()
    ))


def from_history(segments: DataFrame, nights: list[dt.date]) -> DataFrame:
    """CURRENT_SCHEMA rows from the `segments` rows of the published `nights` (oldest first).

    The definition `apply_events` follows night by night: a row's values come from the last
    night it changed (first seen, back after a gap, moved, renamed); `since_run_date` and
    `previous_segment_id` from the last night it entered its segment (first seen, or moved).
    """
    spark = segments.sparkSession
    index = spark.createDataFrame([(d, i) for i, d in enumerate(nights)], f"{RUN_DATE} date, night int")
    rows = (segments.where(F.col(RUN_DATE).isin(nights))
            .select(ID_COLUMN, "segment_id", "segment_name", "segment_confidence", "model_version", RUN_DATE)
            .join(F.broadcast(index), RUN_DATE))
    w = Window.partitionBy(ID_COLUMN).orderBy("night")
    lag_night, lag_segment, lag_name = (F.lag(c).over(w) for c in ("night", "segment_id", "segment_name"))
    rows = (rows.withColumn("lag_night", lag_night).withColumn("lag_segment", lag_segment)
            .withColumn("lag_name", lag_name))
    entered = F.col("lag_segment").isNull() | (F.col("lag_segment") != F.col("segment_id"))
    changed = entered | (F.col("lag_night") != F.col("night") - 1) | (F.col("lag_name") != F.col("segment_name"))
    last = len(nights) - 1
    per_customer = rows.groupBy(ID_COLUMN).agg(
        F.max(F.when(changed, F.struct("night", "segment_id", "segment_name", "segment_confidence",
                                      "model_version", RUN_DATE))).alias("v"),
        F.max(F.when(entered, F.struct("night", RUN_DATE, "lag_segment"))).alias("e"),
        F.max("night").alias("latest_night"),
        F.max(RUN_DATE).alias("latest_date"),
    )
    active = F.col("latest_night") == F.lit(last)
    columns = {
        ID_COLUMN: F.col(ID_COLUMN),
        "segment_id": F.col("v.segment_id"),
        "segment_name": F.col("v.segment_name"),
        "segment_confidence": F.col("v.segment_confidence"),
        "model_version": F.col("v.model_version"),
        "scored_run_date": F.col(f"v.{RUN_DATE}"),
        "since_run_date": F.col(f"e.{RUN_DATE}"),
        "previous_segment_id": F.col("e.lag_segment"),
        "active": active,
        "last_seen_run_date": F.when(~active, F.col("latest_date")),
    }
    return per_customer.select(*[columns[c].alias(c) for c in CURRENT_SCHEMA.fieldNames()])


def rebuild(spark: SparkSession, segments: DataFrame, nights: list[dt.date], ref: tables.TableRef) -> int:
    """Makes the table equal `from_history(segments, nights)`, writing only the rows that differ.

    Returns how many rows differed (0: nothing was committed).
    """
    table = ensure_table(spark, ref)
    expected = from_history(segments, nights) if nights else spark.createDataFrame([], CURRENT_SCHEMA)
    now = table.toDF()
    same = F.lit(True)
    for c in _VALUES:
        same = same & F.col(f"e.{c}").eqNullSafe(F.col(f"n.{c}"))
    diff = (
        expected.alias("e").join(now.alias("n"), F.col(f"e.{ID_COLUMN}") == F.col(f"n.{ID_COLUMN}"), "full_outer")
        .where(~(same & F.col(f"e.{ID_COLUMN}").isNotNull() & F.col(f"n.{ID_COLUMN}").isNotNull()))
        .select(F.coalesce(f"e.{ID_COLUMN}", f"n.{ID_COLUMN}").alias(ID_COLUMN),
                F.col(f"e.{ID_COLUMN}").isNull().alias("gone"), *[F.col(f"e.{c}").alias(c) for c in _VALUES])
        .persist()
    )
    try:
        differing = diff.count()
        if differing:
            _retried(lambda: (
                table.alias("t")
                .merge(diff.alias("s"), f"t.{ID_COLUMN} = s.{ID_COLUMN}")
                .whenMatchedDelete(condition="s.gone")
                .whenMatchedUpdate(set={c: f"s.{c}" for c in _VALUES})
                .whenNotMatchedInsert(condition="NOT s.gone",
                                      values={c: f"s.{c}" for c in CURRENT_SCHEMA.fieldNames()})
                .execute()
            ))
        return differing
    finally:
        diff.unpersist()
