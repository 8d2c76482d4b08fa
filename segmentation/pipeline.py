"""The stages of a night, each a function of (spark, config, run date) returning a summary."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import DateType, DoubleType, StringType, StructField, StructType

from segmentation import bundle as model_store
from segmentation import classifier, clustering, logs, personas, tables
from segmentation.cleaning import compute_medians, fill_missing, select_raw_columns
from segmentation.config import Config
from segmentation.errors import AccountingError, FeaturesNotFoundError
from segmentation.features import FEATURE_COLUMNS, LOG_COLUMNS, add_features
from segmentation.preprocessing import LogScaler
from segmentation.sampling import driver_sample
from segmentation.schema import ID_COLUMN, RUN_DATE

IMPUTATION_SCHEMA = StructType(
    [
        StructField(RUN_DATE, DateType(), False),
        StructField("column", StringType(), False),
        StructField("value", DoubleType(), False),
        StructField("method", StringType(), False),
    ]
)


def run_features(spark: SparkSession, cfg: Config, run_date: dt.date) -> dict[str, Any]:
    """Raw table -> cleaned, imputed, engineered `features` partition for `run_date`."""
    log = logs.get("features")
    features_ref = tables.table_ref(cfg.tables, cfg.tables.features)
    with logs.step(log, "read input") as s:
        raw = select_raw_columns(tables.read_raw(spark, cfg.input.source, cfg.input.format))
        s.rows = rows_read = raw.count()
        s.detail = f"source={cfg.input.source}"
    if rows_read == 0:
        from segmentation.errors import InputError

        raise InputError(f"input {cfg.input.source} has no rows")
    imp = cfg.imputation
    with logs.step(log, "compute medians") as s:
        medians = compute_medians(raw, imp.columns, imp.method, imp.accuracy)
        s.detail = f"method={imp.method} " + " ".join(f"{c}={v:.6g}" for c, v in medians.items())
    with logs.step(log, "write features") as s:
        features = (
            raw.transform(fill_missing, medians)
            .transform(add_features, cfg.features.ratio_epsilon)
            .withColumn(RUN_DATE, F.lit(run_date))
        )
        tables.replace_run(features, features_ref, run_date)
        s.rows = rows_written = tables.read_run(spark, features_ref, run_date).count()
        s.detail = f"table={features_ref}"
    with logs.step(log, "write imputation values") as s:
        imputation_ref = tables.table_ref(cfg.tables, cfg.tables.imputation)
        rows = [(run_date, c, v, imp.method) for c, v in medians.items()]
        tables.replace_run(spark.createDataFrame(rows, IMPUTATION_SCHEMA), imputation_ref, run_date)
        s.rows = len(rows)
    if rows_written != rows_read:
        raise AccountingError(f"features: read {rows_read} rows but wrote {rows_written}")
    return {"rows_read": rows_read, "features_rows": rows_written, "tables": [str(features_ref)], "medians": medians}


def _imputation_values(spark: SparkSession, cfg: Config, run_date: dt.date) -> dict[str, float]:
    ref = tables.table_ref(cfg.tables, cfg.tables.imputation)
    if not tables.exists(spark, ref):
        return {}
    rows = tables.read_run(spark, ref, run_date).select("column", "value").collect()  # a handful of rows
    return {r["column"]: float(r["value"]) for r in rows}


def run_train(spark: SparkSession, cfg: Config, run_date: dt.date) -> dict[str, Any]:
    """Sample -> scale -> compare clusterings -> forest surrogate -> saved model bundle."""
    log = logs.get("train")
    tcfg = cfg.train
    features_ref = tables.table_ref(cfg.tables, cfg.tables.features)
    with logs.step(log, "sample features") as s:
        features = tables.read_run(spark, features_ref, run_date)
        sample = driver_sample(features, FEATURE_COLUMNS, tcfg.sample.max_rows, tcfg.sample.seed)
        s.rows = len(sample)
        s.detail = f"cap={tcfg.sample.max_rows} seed={tcfg.sample.seed}"
    if sample.empty:
        raise FeaturesNotFoundError(f"no features for run date {run_date} in {features_ref}")
    with logs.step(log, "transform") as s:
        prep = LogScaler(FEATURE_COLUMNS, LOG_COLUMNS, tcfg.transform.kind, tcfg.transform.offset).fit(sample)
        X = prep.transform(sample)
        s.rows = len(X)
        s.detail = f"kind={tcfg.transform.kind}"
    with logs.step(log, "compare clusterings") as s:
        candidates = clustering.evaluate(X, tcfg.clustering)
        winner = clustering.choose(candidates)
        s.rows = len(X)
        s.detail = "; ".join(
            f"{c.algorithm}{c.params} silhouette={'n/a' if c.silhouette is None else f'{c.silhouette:.4f}'}"
            f" segments={c.n_segments}"
            for c in candidates
        ) + f"; winner={winner.algorithm}"
    with logs.step(log, "train forest") as s:
        forest, report = classifier.train_forest(
            sample[FEATURE_COLUMNS].to_numpy(dtype=float), winner.labels, tcfg.forest
        )
        s.rows = report.train_rows
        s.detail = f"accuracy={report.accuracy:.4f} macro_f1={report.macro_f1:.4f}"
    keep = winner.labels != clustering.NOISE
    profiles = personas.segment_profiles(X[keep], winner.labels[keep], FEATURE_COLUMNS)
    names = personas.name_segments(profiles, forest.feature_importances_)
    metrics = {
        "run_date": run_date.isoformat(),
        "sample_rows": len(sample),
        "transform": tcfg.transform.kind,
        "candidates": [c.record() for c in candidates],
        "winner": winner.record(),
        "forest": report.record(),
        "segment_sizes": {str(k): int(v) for k, v in zip(*_counts(winner.labels[keep]))},
        "segment_names": {str(k): v for k, v in names.items()},
    }
    bundle = model_store.ModelBundle(
        version=model_store.new_version(),
        feature_columns=list(FEATURE_COLUMNS),
        preprocessor=prep,
        forest=forest,
        segment_names=names,
        imputation=_imputation_values(spark, cfg, run_date),
        metrics=metrics,
        library_versions=model_store.library_versions(),
        trained_on=f"{features_ref} run_date={run_date}",
    )
    with logs.step(log, "save model") as s:
        path = model_store.save(bundle, cfg.tables.models_dir)
        s.detail = f"version={bundle.version} path={path}"
    return {"model_version": bundle.version, "model_path": str(path), "metrics": metrics, "sample_rows": len(sample)}


def _counts(labels):
    import numpy as np

    return np.unique(labels, return_counts=True)


def run_score(spark: SparkSession, cfg: Config, run_date: dt.date) -> dict[str, Any]:
    """Features partition -> broadcast forest in mapInPandas -> `segments` partition."""
    log = logs.get("score")
    features_ref = tables.table_ref(cfg.tables, cfg.tables.features)
    segments_ref = tables.table_ref(cfg.tables, cfg.tables.segments)
    with logs.step(log, "load model") as s:
        model = model_store.load(cfg.tables.models_dir, cfg.score.model_version)
        s.detail = f"version={model.version} segments={len(model.classes)}"
    with logs.step(log, "read features") as s:
        features = tables.read_run(spark, features_ref, run_date)
        model_store.check_features(model, features.columns)
        s.rows = rows_in = features.count()
    if rows_in == 0:
        raise FeaturesNotFoundError(f"no features for run date {run_date} in {features_ref}: run the features job first")
    with logs.step(log, "score and write segments") as s:
        spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", str(cfg.score.arrow_batch_rows))
        scored_at = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
        segments = _score(features, model, run_date, scored_at)
        tables.replace_run(segments, segments_ref, run_date)
        s.rows = rows_out = tables.read_run(spark, segments_ref, run_date).count()
        s.detail = f"table={segments_ref}"
    if rows_out != rows_in:
        raise AccountingError(f"score: {rows_in} customers in features but {rows_out} rows in segments")
    return {"rows_read": rows_in, "segments_rows": rows_out, "model_version": model.version, "tables": [str(segments_ref)]}


def _score(features, model, run_date, scored_at):
    from segmentation.scoring import score

    return score(features, model, run_date, scored_at)


def run_nightly(spark: SparkSession, cfg: Config, run_date: dt.date) -> dict[str, Any]:
    """features -> train (when no model exists or retraining is asked) -> score."""
    log = logs.get("nightly")
    summary: dict[str, Any] = {"tables": []}
    feats = run_features(spark, cfg, run_date)
    summary["rows_read"] = feats["rows_read"]
    summary["tables"] += feats["tables"]
    if cfg.train.retrain or cfg.score.model_version == "" and model_store.latest(cfg.tables.models_dir) is None:
        trained = run_train(spark, cfg, run_date)
        summary["trained"] = trained["model_version"]
    else:
        log.info("train: skipped (model %s exists; pass --retrain to train anew)",
                 cfg.score.model_version or model_store.latest(cfg.tables.models_dir))
    scored = run_score(spark, cfg, run_date)
    summary["tables"] += scored["tables"]
    summary["segments_rows"] = scored["segments_rows"]
    summary["model_version"] = scored["model_version"]
    return summary
