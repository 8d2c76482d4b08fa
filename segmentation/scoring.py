"""Scores the full features table with the bundle's forest, inside Spark, batch by batch."""

from __future__ import annotations

import datetime as dt
import pickle
from typing import Iterator

import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from segmentation.bundle import ModelBundle
from segmentation.schema import ID_COLUMN, RUN_DATE

SEGMENTS_SCHEMA = "CUST_ID string, segment_id int, segment_name string, segment_confidence double"

# One unpickled bundle per Python worker process, reused by every task it runs.
_WORKER_MODELS: dict[str, ModelBundle] = {}


def _worker_model(version: str, payload) -> ModelBundle:
    model = _WORKER_MODELS.get(version)
    if model is None:
        _WORKER_MODELS.clear()
        model = pickle.loads(payload.value)
        model.forest.n_jobs = 1  # Spark runs one task per core already
        _WORKER_MODELS[version] = model
    return model


def score(features: DataFrame, bundle: ModelBundle, run_date: dt.date, scored_at: dt.datetime) -> DataFrame:
    """One row per customer of `features`: segment id, name and confidence, stamped with the run."""
    spark = features.sparkSession
    # The bundle travels once per executor as a broadcast, not inside every task's closure.
    payload = spark.sparkContext.broadcast(pickle.dumps(bundle, protocol=pickle.HIGHEST_PROTOCOL))
    version = bundle.version
    columns = list(bundle.feature_columns)

    def score_batches(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        model = _worker_model(version, payload)
        for batch in batches:
            segment, confidence = model.predict(batch[columns])
            yield pd.DataFrame(
                {
                    ID_COLUMN: batch[ID_COLUMN].to_numpy(),
                    "segment_id": segment,
                    "segment_name": [model.segment_names[int(s)] for s in segment],
                    "segment_confidence": confidence,
                }
            )

    return features.select(ID_COLUMN, *columns).mapInPandas(score_batches, SEGMENTS_SCHEMA).select(
        ID_COLUMN,
        "segment_id",
        "segment_name",
        "segment_confidence",
        F.lit(version).alias("model_version"),
        F.lit(run_date).alias(RUN_DATE),
        F.lit(scored_at).cast("timestamp").alias("scored_at"),
    )
