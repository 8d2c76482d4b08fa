"""Each night's segment shares of the full scored population, to follow segments night by night."""

from __future__ import annotations

import datetime as dt

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql.types import DateType, DoubleType, IntegerType, LongType, StringType, StructField, StructType

from segmentation.core.columns import RUN_DATE
from segmentation.io import tables

# `segment_shares`: one row per (run_date, segment) of the scored customers.
SHARES_SCHEMA = StructType(
    [
        StructField(RUN_DATE, DateType(), False),
        StructField("model_version", StringType(), False),
        StructField("segment_id", IntegerType(), True),
        StructField("segment_name", StringType(), True),
        StructField("customers", LongType(), False),
        StructField("share", DoubleType(), True),  # of the night's scored customers
        StructField("mean_confidence", DoubleType(), True),
    ]
)


def shares(night: DataFrame) -> DataFrame:
    """SHARES_SCHEMA's columns from `segments` rows: customers, share of their night, mean confidence
    and the model that scored them, per night and segment."""
    return (
        night.groupBy(RUN_DATE, "model_version", "segment_id", "segment_name")
        .agg(F.count(F.lit(1)).alias("customers"), F.avg("segment_confidence").alias("mean_confidence"))
        .withColumn("share", F.col("customers") / F.sum("customers").over(Window.partitionBy(RUN_DATE)))
        .select(*SHARES_SCHEMA.fieldNames())
    )


def write(spark: SparkSession, segments_ref: tables.TableRef, shares_ref: tables.TableRef, run_date: dt.date) -> int:
    """Aggregates the night's `segments` partition into `segment_shares`; returns the segment count.

    One row per segment; a re-run replaces the night's rows.
    """
    night = tables.read_run(spark, segments_ref, run_date)
    tables.replace_run(shares(night), shares_ref, run_date)
    return tables.read_run(spark, shares_ref, run_date).count()
