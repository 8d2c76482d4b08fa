"""Each night's segment shares of the full scored population, to follow segments night by night."""

from __future__ import annotations

import datetime as dt

from pyspark.sql import SparkSession, Window
from pyspark.sql import functions as F

from segmentation.core.columns import RUN_DATE
from segmentation.io import tables


def write(spark: SparkSession, segments_ref: tables.TableRef, shares_ref: tables.TableRef, run_date: dt.date) -> int:
    """Aggregates the night's `segments` partition into `segment_shares`; returns the segment count.

    One row per segment: customers, share, mean confidence and the model that scored them; a
    re-run replaces the night's rows.
    """
    night = tables.read_run(spark, segments_ref, run_date)
    shares = (
        night.groupBy(RUN_DATE, "model_version", "segment_id", "segment_name")
        .agg(F.count(F.lit(1)).alias("customers"), F.avg("segment_confidence").alias("mean_confidence"))
        .withColumn("share", F.col("customers") / F.sum("customers").over(Window.partitionBy(RUN_DATE)))
        .select(RUN_DATE, "model_version", "segment_id", "segment_name", "customers", "share", "mean_confidence")
    )
    tables.replace_run(shares, shares_ref, run_date)
    return tables.read_run(spark, shares_ref, run_date).count()
