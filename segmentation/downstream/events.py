"""`segment_events`: the permanent history of membership, one row per customer whose membership
changed from the previous published night to this one.

Append-only by night and replaced whole when a night is re-run, so it holds the same rows
whatever order nights were run in, and it outlives the change feed (which VACUUM and log
retention purge): "who moved since D" is `WHERE run_date > D`.
"""

from __future__ import annotations

import datetime as dt

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import DateType, DoubleType, IntegerType, StringType, StructField, StructType

from segmentation.core.columns import ID_COLUMN, RUN_DATE

NEW, MOVED, RELABELLED, DEPARTED = "new", "moved", "relabelled", "departed"

EVENTS_SCHEMA = StructType(
    [
        StructField(RUN_DATE, DateType(), False),
        StructField("previous_run_date", DateType(), True),  # the published night compared with; null: first
        StructField(ID_COLUMN, StringType(), False),
        StructField("event", StringType(), False),  # new | moved | relabelled | departed
        StructField("from_segment_id", IntegerType(), True),  # null: new
        StructField("to_segment_id", IntegerType(), True),  # null: departed
        StructField("segment_name", StringType(), True),  # tonight's name; for departed, the last one
        StructField("segment_confidence", DoubleType(), True),  # tonight's; null for departed
        StructField("model_version", StringType(), True),  # the model that scored tonight (departed: the last night)
    ]
)


def events(night: DataFrame, previous: DataFrame | None, run_date: dt.date, previous_date: dt.date | None) -> DataFrame:
    """EVENTS_SCHEMA rows: `night`'s `segments` rows against the previous published night's.

    new: not in the previous night (first seen, or back after a gap); departed: missing tonight;
    moved: another segment id; relabelled: the same id under another name (a retrain renamed
    it). A customer in the same segment under the same name has no event, whatever their
    confidence did.
    """
    now = night.select(ID_COLUMN, "segment_id", "segment_name", "segment_confidence", "model_version")
    if previous is None:
        before = now.limit(0).select(ID_COLUMN, *[F.col(c).alias(f"p_{c}") for c in now.columns[1:]])
    else:
        before = previous.select(ID_COLUMN, *[F.col(c).alias(f"p_{c}") for c in now.columns[1:]])
    joined = before.join(now, ID_COLUMN, "full_outer")
    event = (
        F.when(F.col("p_segment_id").isNull() & F.col("segment_id").isNotNull(), NEW)
        .when(F.col("segment_id").isNull(), DEPARTED)
        .when(F.col("p_segment_id") != F.col("segment_id"), MOVED)
        .when(~F.col("p_segment_name").eqNullSafe(F.col("segment_name")), RELABELLED)
    )
    columns = {
        RUN_DATE: F.lit(run_date),
        "previous_run_date": F.lit(previous_date).cast("date"),
        ID_COLUMN: F.col(ID_COLUMN),
        "event": F.col("event"),
        "from_segment_id": F.col("p_segment_id"),
        "to_segment_id": F.col("segment_id"),
        "segment_name": F.coalesce("segment_name", "p_segment_name"),
        "segment_confidence": F.col("segment_confidence"),
        "model_version": F.coalesce("model_version", "p_model_version"),
    }
    return (
        joined.withColumn("event", event)
        .where(F.col("event").isNotNull())
        .select(*[columns[name].alias(name) for name in EVENTS_SCHEMA.fieldNames()])
    )
