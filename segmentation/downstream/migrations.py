"""`segment_migrations`: how many customers moved from segment a to b since the last scored night."""

from __future__ import annotations

import datetime as dt

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from segmentation.core.columns import ID_COLUMN, RUN_DATE


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
        F.when(F.col("from_segment_id").isNull(), "new")
        .when(F.col("to_segment_id").isNull(), "departed")
        .when(F.col("from_segment_id") == F.col("to_segment_id"), "stayed")
        .otherwise("moved")
    )
    return (
        joined.groupBy("from_segment_id", "to_segment_id")
        .agg(F.count(F.lit(1)).alias("customers"))
        .select(
            F.lit(run_date).alias(RUN_DATE),
            F.lit(previous_date).cast("date").alias("previous_run_date"),
            "from_segment_id", "to_segment_id", movement.alias("movement"), "customers",
        )
    )
