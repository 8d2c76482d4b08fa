"""Scores the full features table with the bundle's forest, inside Spark, batch by batch.

The batches stay in Arrow from the JVM to the forest and back: the id column passes through
untouched and the feature columns become one float32 matrix (the dtype the trees compare in),
so the Python side spends its time in `predict_proba`, not in converting rows.
"""

from __future__ import annotations

import datetime as dt
import pickle
from typing import Iterator

import numpy as np
import pyarrow as pa
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from segmentation.bundle import ModelBundle
from segmentation.schema import ID_COLUMN, RUN_DATE

SEGMENTS_SCHEMA = "CUST_ID string, segment_id int, segment_confidence double"

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


def feature_matrix(batch: pa.RecordBatch, columns: list[str]) -> np.ndarray:
    """The named columns of an Arrow batch as one C-ordered float32 matrix, nulls as NaN."""
    X = np.empty((batch.num_rows, len(columns)), dtype=np.float32)
    for j, name in enumerate(columns):
        X[:, j] = batch.column(name).to_numpy(zero_copy_only=False)
    return X


def score_batch(model: ModelBundle, batch: pa.RecordBatch, columns: list[str]) -> pa.RecordBatch:
    segment, confidence = model.predict_matrix(feature_matrix(batch, columns))
    return pa.RecordBatch.from_arrays(
        [batch.column(ID_COLUMN), pa.array(segment, pa.int32()), pa.array(confidence, pa.float64())],
        names=[ID_COLUMN, "segment_id", "segment_confidence"],
    )


def score(features: DataFrame, bundle: ModelBundle, run_date: dt.date, scored_at: dt.datetime) -> DataFrame:
    """One row per customer of `features`: segment id, name and confidence, stamped with the run."""
    spark = features.sparkSession
    # The bundle travels once per executor as a broadcast, not inside every task's closure.
    payload = spark.sparkContext.broadcast(pickle.dumps(bundle, protocol=pickle.HIGHEST_PROTOCOL))
    version = bundle.version
    columns = list(bundle.feature_columns)

    def score_batches(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        model = _worker_model(version, payload)
        for batch in batches:
            yield score_batch(model, batch, columns)

    # Names are a lookup the JVM does per row; only ids and confidences cross from Python.
    names = F.create_map(*[F.lit(x) for k, v in sorted(bundle.segment_names.items()) for x in (int(k), v)])
    return features.select(ID_COLUMN, *columns).mapInArrow(score_batches, SEGMENTS_SCHEMA).select(
        ID_COLUMN,
        "segment_id",
        names[F.col("segment_id")].alias("segment_name"),
        "segment_confidence",
        F.lit(version).alias("model_version"),
        F.lit(run_date).alias(RUN_DATE),
        F.lit(scored_at).cast("timestamp").alias("scored_at"),
    )
