"""`segment_migrations`: how many customers moved from segment a to b since the last scored night."""

from __future__ import annotations

import datetime as dt

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import DateType, IntegerType, LongType, StringType, StructField, StructType

from segmentation.core.columns import ID_COLUMN, RUN_DATE
from segmentation.downstream import events

NEW, DEPARTED, STAYED, MOVED = "new", "departed", "stayed", "moved"

# `segment_migrations`: one row per (run_date, from_segment_id, to_segment_id).
MIGRATIONS_SCHEMA = StructType(
    [
        StructField(RUN_DATE, DateType(), False),
        StructField("previous_run_date", DateType(), True),  # null on the first scored night
        StructField("from_segment_id", IntegerType(), True),  # null: a new customer
        StructField("to_segment_id", IntegerType(), True),  # null: a customer who departed
        StructField("movement", StringType(), False),  # new | departed | stayed | moved
        StructField("customers", LongType(), False),
    ]
)


def migrations(night: DataFrame, previous: DataFrame | None, run_date: dt.date, previous_date: dt.date | None) -> DataFrame:
    """Counts per (from_segment_id, to_segment_id); a null `from` is a new customer, a null `to` one
    who departed. With no previous night every customer is new."""
    now = night.select(ID_COLUMN, F.col("segment_id").alias("to_segment_id"))
    if previous is None:
        joined = now.withColumn("from_segment_id", F.lit(None).cast("int"))
    else:
        before = previous.select(ID_COLUMN, F.col("segment_id").alias("from_segment_id"))
        joined = before.join(now, ID_COLUMN, "full_outer")
    movement = (
        F.when(F.col("from_segment_id").isNull(), NEW)
        .when(F.col("to_segment_id").isNull(), DEPARTED)
        .when(F.col("from_segment_id") == F.col("to_segment_id"), STAYED)
        .otherwise(MOVED)
    )
    columns = {
        RUN_DATE: F.lit(run_date),
        "previous_run_date": F.lit(previous_date).cast("date"),
        "from_segment_id": F.col("from_segment_id"),
        "to_segment_id": F.col("to_segment_id"),
        "movement": movement,
        "customers": F.col("customers"),
    }
    return (
        joined.groupBy("from_segment_id", "to_segment_id")
        .agg(F.count(F.lit(1)).alias("customers"))
        .select(*[columns[name].alias(name) for name in MIGRATIONS_SCHEMA.fieldNames()])
    )


def migrations_from_events(night: DataFrame, night_events: DataFrame, run_date: dt.date,
                           previous_date: dt.date | None) -> DataFrame:
    """`migrations(night, previous, ...)`'s rows from the night's `segment_events` and the night
    alone, without joining the night with the night before again: the new, moved and departed
    counts are the events'; a segment's stayed count is its customers tonight less those who
    arrived in it (new or moved). A relabelled customer has no other segment, so they stayed."""
    arrived = F.col("event").isin(events.NEW, events.MOVED)
    changed = (
        night_events.where(arrived | (F.col("event") == events.DEPARTED))
        .groupBy("from_segment_id", "to_segment_id").agg(F.count(F.lit(1)).alias("customers"))
        .withColumn("movement", F.when(F.col("from_segment_id").isNull(), NEW)
                    .when(F.col("to_segment_id").isNull(), DEPARTED).otherwise(MOVED))
    )
    into = night_events.where(arrived).groupBy("to_segment_id").agg(F.count(F.lit(1)).alias("arrived"))
    stayed = (
        night.groupBy(F.col("segment_id").alias("to_segment_id")).agg(F.count(F.lit(1)).alias("tonight"))
        .join(into, "to_segment_id", "left")
        .select(F.col("to_segment_id").alias("from_segment_id"), "to_segment_id", F.lit(STAYED).alias("movement"),
                (F.col("tonight") - F.coalesce("arrived", F.lit(0))).alias("customers"))
        .where(F.col("customers") > 0)
    )
    columns = {
        RUN_DATE: F.lit(run_date),
        "previous_run_date": F.lit(previous_date).cast("date"),
        "from_segment_id": F.col("from_segment_id").cast("int"),
        "to_segment_id": F.col("to_segment_id").cast("int"),
        "movement": F.col("movement"),
        "customers": F.col("customers").cast("long"),
    }
    return changed.unionByName(stayed).select(*[columns[name].alias(name) for name in MIGRATIONS_SCHEMA.fieldNames()])
