"""Scores the full features table with the bundle's forest, inside Spark, batch by batch.

The batches stay in Arrow from the JVM to the forest and back: the id column passes through
untouched and the feature columns become one float32 matrix (the dtype the trees compare in),
so the Python side spends its time in `predict_proba`, not in converting rows.
"""

from __future__ import annotations

import datetime as dt
import pickle
from contextlib import contextmanager
from typing import Iterator

import numpy as np
import pyarrow as pa
from pyspark import Accumulator
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from segmentation.core.columns import ID_COLUMN, RUN_DATE
from segmentation.core.errors import SegmentationError, from_executor
from segmentation.downstream import drift
from segmentation.model import store
from segmentation.model.store import ModelBundle, check_libraries

SEGMENTS_SCHEMA = "CUST_ID string, segment_id int, segment_confidence double"

# One unpickled bundle per Python worker process, reused by every task it runs.
_WORKER_MODELS: dict[str, ModelBundle] = {}


def _worker_model(version: str, payload, recorded: dict[str, str]) -> ModelBundle:
    model = _WORKER_MODELS.get(version)
    if model is None:
        _WORKER_MODELS.clear()
        # The executor's Python may not be the driver's: check before unpickling, and again on
        # what the pickle itself says it was trained with.
        check_libraries(recorded, version, where="this executor")
        model = store.loads(payload.value)
        check_libraries(model.library_versions, version, where="this executor")
        model.forest.n_jobs = 1  # Spark runs one task per core already
        _WORKER_MODELS[version] = model
    return model


def feature_matrix(batch: pa.RecordBatch, columns: list[str]) -> np.ndarray:
    """The named columns of an Arrow batch as one C-ordered float32 matrix, nulls as NaN."""
    X = np.empty((batch.num_rows, len(columns)), dtype=np.float32)
    with np.errstate(over="ignore"):  # beyond float32 becomes an infinity, which check_finite refuses
        for j, name in enumerate(columns):
            X[:, j] = batch.column(name).to_numpy(zero_copy_only=False)
    return X


def check_finite(X: np.ndarray, batch: pa.RecordBatch, columns: list[str]) -> None:
    """Refuses a matrix with NaN or an infinity (a float32 overflow included): the trees would guess."""
    store.check_finite(
        X, columns, lambda row, j: batch.column(columns[j])[row].as_py(),
        lambda row: batch.column(ID_COLUMN)[row].as_py(), "batch",
        " (the data contract quarantines such raw values: this one was computed, or written, otherwise)",
    )


def score_batch(model: ModelBundle, batch: pa.RecordBatch, columns: list[str]) -> pa.RecordBatch:
    X = feature_matrix(batch, columns)
    check_finite(X, batch, columns)
    segment, confidence = model.predict_matrix(X)
    return pa.RecordBatch.from_arrays(
        [batch.column(ID_COLUMN), pa.array(segment, pa.int32()), pa.array(confidence, pa.float64())],
        names=[ID_COLUMN, "segment_id", "segment_confidence"],
    )


def score(
    features: DataFrame, bundle: ModelBundle, run_date: dt.date, scored_at: dt.datetime,
    drift_counts: Accumulator | None = None,
) -> DataFrame:
    """One row per customer of `features`: segment id, name and confidence, stamped with the run.

    With `drift_counts` (an accumulator of `drift.BinCounts`), the workers also count each
    feature's rows per drift bin of the bundle's reference as the batches go by.
    """
    spark = features.sparkSession
    # The bundle travels once per executor as a broadcast, not inside every task's closure.
    payload = spark.sparkContext.broadcast(pickle.dumps(bundle, protocol=pickle.HIGHEST_PROTOCOL))
    version = bundle.version
    columns = list(bundle.feature_columns)
    recorded = dict(bundle.library_versions)

    reference = bundle.drift_reference if drift_counts is not None else None

    def score_batches(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        model = _worker_model(version, payload, recorded)
        for batch in batches:
            scored = score_batch(model, batch, columns)  # refuses a non-finite value before it is counted
            if reference:
                drift_counts.add(drift.batch_counts(batch, reference))
            yield scored

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


@contextmanager
def executor_errors() -> Iterator[None]:
    """Spark actions over `score`: a named error raised in a Python worker is raised here by name.

    Without this it would reach the driver as a `PythonException` quoting the worker's traceback.
    """
    try:
        yield
    except SegmentationError:
        raise
    except Exception as exc:
        named = from_executor(exc)
        if named is None:
            raise
        raise named from None
