"""Each night's segment shares of the full scored population, to follow segments night by night."""

from __future__ import annotations


from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql.types import DateType, DoubleType, IntegerType, LongType, StringType, StructField, StructType

from segmentation.core.columns import RUN_DATE

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

