"""What each stage is measured against: the peer a Databricks user would pick, and the I/O floor.

Every variant reads the same rows and writes a Delta table of the same shape into its own path,
so their times differ only by what they compute:

- scoring, ours: `segmentation.score.scoring.score` (the forest broadcast into mapInArrow);
- scoring, the peer: the same forest logged as an MLflow scikit-learn model and applied with
  `mlflow.pyfunc.spark_udf` (`predict_proba`, an array result, the argmax in Spark);
- scoring, the copy floor: the same columns read, the output derived by trivial JVM expressions;
- features, the copy floor: the raw input read and a table with the features table's columns
  written, computed by trivial expressions (no contract, no deduplication, no medians).
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import Callable
from urllib.parse import unquote, urlparse

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import ArrayType, DoubleType

from segmentation.core.columns import FEATURE_COLUMNS, ID_COLUMN, RAW_NUMERIC_COLUMNS, RUN_DATE
from segmentation.model.store import ModelBundle
from segmentation.score.scoring import score

SCORED_AT = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)


def files_bytes(df: DataFrame) -> int:
    """Bytes of the files a DataFrame reads (whole files: column pruning reads less of Parquet)."""
    total = 0
    for uri in df.inputFiles():
        path = Path(unquote(urlparse(uri).path)) if uri.startswith("file:") else Path(uri)
        total += path.stat().st_size
    return total


def write_delta(df: DataFrame, path: Path) -> dict[str, float]:
    """Overwrites a Delta table at `path`; seconds, rows and bytes from the commit's own metrics."""
    start = time.perf_counter()
    df.write.format("delta").mode("overwrite").option("overwriteSchema", "true").save(str(path))
    seconds = time.perf_counter() - start
    spark = df.sparkSession
    metrics = spark.sql(f"DESCRIBE HISTORY delta.`{path}` LIMIT 1").first()["operationMetrics"]
    return {"seconds": seconds, "rows": int(metrics.get("numOutputRows", 0)),
            "bytes_written": int(metrics.get("numOutputBytes", 0))}


def best_of(runs: int, fn: Callable[[], dict[str, float]]) -> dict[str, float]:
    results = [fn() for _ in range(runs)]
    return min(results, key=lambda r: r["seconds"])


def _output(frame: DataFrame, bundle: ModelBundle, run_date: dt.date) -> DataFrame:
    """The segments table's columns around (CUST_ID, segment_id, segment_confidence)."""
    names = F.create_map(*[F.lit(x) for k, v in sorted(bundle.segment_names.items()) for x in (int(k), v)])
    return frame.select(
        ID_COLUMN, "segment_id", names[F.col("segment_id")].alias("segment_name"), "segment_confidence",
        F.lit(bundle.version).alias("model_version"), F.lit(run_date).alias(RUN_DATE),
        F.lit(SCORED_AT).cast("timestamp").alias("scored_at"),
    )


def ours(features: DataFrame, bundle: ModelBundle, run_date: dt.date) -> DataFrame:
    return score(features, bundle, run_date, SCORED_AT)


def copy_floor_score(features: DataFrame, bundle: ModelBundle, run_date: dt.date) -> DataFrame:
    """Reads the id and every model column (a hash over them all), computes nothing else."""
    columns = [ID_COLUMN, *bundle.feature_columns]
    segments = F.array(*[F.lit(int(c)) for c in bundle.classes])
    picked = F.element_at(segments, (F.pmod(F.hash(*columns), F.lit(len(bundle.classes))) + 1).cast("int"))
    return _output(
        features.select(*columns).select(ID_COLUMN, picked.cast("int").alias("segment_id"),
                                          F.lit(1.0).alias("segment_confidence")),
        bundle, run_date,
    )


def mlflow_spark_udf(spark: SparkSession, features: DataFrame, bundle: ModelBundle, run_date: dt.date,
                     store: Path) -> DataFrame:
    """The forest as an MLflow sklearn model in a store of its own, applied by `spark_udf`."""
    import mlflow
    import mlflow.sklearn

    uri = f"sqlite:///{store / 'mlflow.db'}"
    store.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    if mlflow.get_experiment_by_name("peer") is None:
        mlflow.create_experiment("peer", artifact_location=(store / "artifacts").as_uri())
    mlflow.set_experiment("peer")
    with mlflow.start_run():
        # cloudpickle: the flavour's default (skops) refuses a forest until its Tree type is trusted.
        info = mlflow.sklearn.log_model(bundle.forest, name="forest", serialization_format="cloudpickle",
                                        pyfunc_predict_fn="predict_proba")
    predict = mlflow.pyfunc.spark_udf(spark, info.model_uri, result_type=ArrayType(DoubleType()),
                                      env_manager="local")
    proba = features.select(ID_COLUMN, predict(*[F.col(c) for c in bundle.feature_columns]).alias("proba"))
    classes = F.array(*[F.lit(int(c)) for c in bundle.classes])
    best = F.array_max("proba")
    return _output(
        proba.select(ID_COLUMN, F.element_at(classes, F.array_position("proba", best).cast("int")).alias("segment_id"),
                     best.alias("segment_confidence")),
        bundle, run_date,
    )


def copy_floor_features(raw: DataFrame, run_date: dt.date) -> DataFrame:
    """The features table's columns from the raw input by trivial expressions: the I/O alone."""
    engineered = [c for c in FEATURE_COLUMNS if c not in RAW_NUMERIC_COLUMNS]
    return raw.select(
        F.col(ID_COLUMN).cast("string").alias(ID_COLUMN),
        *[F.col(c).cast("double").alias(c) for c in RAW_NUMERIC_COLUMNS],
        F.lit("none").alias("PURCHASE_TYPE"),
        *[F.col("BALANCE").cast("double").alias(c) for c in engineered],
        F.lit(run_date).alias(RUN_DATE),
    )
