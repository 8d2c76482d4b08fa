"""The stages of a night, each a function of (spark, config, run date) returning a summary."""

from __future__ import annotations

import datetime as dt
import time
import uuid
from typing import Any

import numpy as np
from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import (
    BooleanType,
    DateType,
    DoubleType,
    IntegerType,
    StringType,
    StructField,
    StructType,
)

from segmentation import bundle as model_store
from segmentation import classifier, clustering, contract, logs, personas, runs, scoring, tables
from segmentation.cleaning import compute_medians, fill_missing, select_raw_columns
from segmentation.config import Config
from segmentation.errors import AccountingError, FeaturesNotFoundError, InputError, TrainingError
from segmentation.features import FEATURE_COLUMNS, LOG_COLUMNS, add_features
from segmentation.preprocessing import LogScaler
from segmentation.sampling import driver_sample
from segmentation.schema import CORRUPT_COLUMN, ID_COLUMN, RAW_NUMERIC_COLUMNS, RUN_DATE

IMPUTATION_SCHEMA = StructType(
    [
        StructField(RUN_DATE, DateType(), False),
        StructField("column", StringType(), False),
        StructField("value", DoubleType(), False),
        StructField("method", StringType(), False),
    ]
)


def new_write_tag(stage: str) -> str:
    """Marks a run's commits (Delta `userMetadata`) so a failed check can put them back."""
    return f"segmentation-{stage}-{uuid.uuid4().hex}"


def run_features(
    spark: SparkSession, cfg: Config, run_date: dt.date, progress: dict[str, Any] | None = None,
    tag: str | None = None,
) -> dict[str, Any]:
    """Raw table -> contract check -> `features` and `quarantine` partitions for `run_date`.

    `progress` receives the counts as they become known, so a run that fails later still
    reports them. If the rows written do not add up to the rows read, the night's tables are
    put back as they were before this run's writes (tagged `tag`) and the run fails.
    """
    log = logs.get("features")
    progress = {} if progress is None else progress
    tag = tag or new_write_tag("features")
    features_ref = tables.table_ref(cfg.tables, cfg.tables.features)
    quarantine_ref = tables.table_ref(cfg.tables, cfg.tables.quarantine)
    imputation_ref = tables.table_ref(cfg.tables, cfg.tables.imputation)
    source, imp = cfg.input.source, cfg.imputation
    with logs.step(log, "read and check input") as s:
        raw = select_raw_columns(tables.read_raw(spark, source, cfg.input.format))
        # Persisted: the counts, the medians and both writes read the checked rows once.
        checked = contract.check_rows(raw, cfg.contract, nullable=imp.columns).persist()
        totals = checked.agg(
            F.count(F.lit(1)).alias("rows"), F.sum((F.size(contract.REASONS) > 0).cast("long")).alias("bad")
        ).first()
        rows_read, rows_bad = int(totals["rows"]), int(totals["bad"] or 0)
        progress["rows_read"] = s.rows = rows_read
        s.detail = f"source={source} breaking_contract={rows_bad}"
    try:
        if rows_read == 0:
            raise InputError(f"input {source} has no rows")
        contract.check_share(rows_read, rows_bad, cfg.contract.max_quarantine_share, source)
        good = checked.where(F.size(contract.REASONS) == 0).drop(contract.REASONS, CORRUPT_COLUMN)
        with logs.step(log, "compute medians") as s:
            medians = compute_medians(good, imp.columns, imp.method, imp.accuracy)
            s.detail = f"method={imp.method} " + " ".join(f"{c}={v:.6g}" for c, v in medians.items())
        with logs.step(log, "write quarantine") as s:
            bad = checked.where(F.size(contract.REASONS) > 0).select(
                F.lit(run_date).alias(RUN_DATE),
                F.lit(source).alias("source"),
                F.col(ID_COLUMN),
                contract.raw_text([ID_COLUMN, *RAW_NUMERIC_COLUMNS]).alias("raw"),
                F.col(contract.REASONS).alias("reasons"),
                F.current_timestamp().alias("quarantined_at"),
            )
            tables.replace_run(bad, quarantine_ref, run_date, tag=tag)
            s.rows = rows_quarantined = tables.read_run(spark, quarantine_ref, run_date).count()
            progress["rows_quarantined"] = rows_quarantined
            s.detail = f"table={quarantine_ref}"
        with logs.step(log, "write features") as s:
            features = (
                good.transform(fill_missing, medians)
                .transform(add_features, cfg.features.ratio_epsilon)
                .withColumn(RUN_DATE, F.lit(run_date))
            )
            # No reader filters on feature values: the table keeps row counts, not column statistics.
            tables.replace_run(features, features_ref, run_date, stats_columns=[], tag=tag)
            s.rows = rows_written = tables.read_run(spark, features_ref, run_date).count()
            progress["rows_written"] = rows_written
            s.detail = f"table={features_ref}"
    finally:
        checked.unpersist()
    with logs.step(log, "write imputation values") as s:
        rows = [(run_date, c, v, imp.method) for c, v in medians.items()]
        tables.replace_run(spark.createDataFrame(rows, IMPUTATION_SCHEMA), imputation_ref, run_date, tag=tag)
        s.rows = len(rows)
    if rows_written + rows_quarantined != rows_read:
        _restore(spark, log, [quarantine_ref, features_ref, imputation_ref], run_date, tag)
        raise AccountingError(
            f"features: read {rows_read} rows but wrote {rows_written} and quarantined {rows_quarantined}; "
            f"{run_date}'s features, quarantine and imputation tables were put back as they were before this run"
        )
    return {
        "rows_read": rows_read,
        "rows_written": rows_written,
        "rows_quarantined": rows_quarantined,
        "tables": [str(features_ref), str(quarantine_ref)],
        "medians": medians,
    }


def _restore(spark: SparkSession, log, refs: list[tables.TableRef], run_date: dt.date, tag: str) -> None:
    """Puts back `run_date`'s rows of every table this run's writes (tagged `tag`) changed."""
    with logs.step(log, "restore the night's tables") as s:
        restored = [str(ref) for ref in refs if tables.restore_run(spark, ref, run_date, tag)]
        s.detail = "tables=" + (",".join(restored) or "none")


def _imputation_values(spark: SparkSession, cfg: Config, run_date: dt.date) -> dict[str, float]:
    ref = tables.table_ref(cfg.tables, cfg.tables.imputation)
    if not tables.exists(spark, ref):
        return {}
    rows = tables.read_run(spark, ref, run_date).select("column", "value").collect()  # a handful of rows
    return {r["column"]: float(r["value"]) for r in rows}


CANDIDATES_SCHEMA = StructType(
    [
        StructField("model_version", StringType(), False),
        StructField(RUN_DATE, DateType(), False),
        StructField("algorithm", StringType(), False),
        StructField("params", StringType(), False),
        StructField("n_segments", IntegerType(), False),
        StructField("silhouette", DoubleType(), True),
        StructField("calinski_harabasz", DoubleType(), True),
        StructField("davies_bouldin", DoubleType(), True),
        StructField("noise_share", DoubleType(), False),
        StructField("smallest_share", DoubleType(), False),
        StructField("stability", DoubleType(), True),
        StructField("bic", DoubleType(), True),
        StructField("passed", BooleanType(), False),
        StructField("reason", StringType(), False),
        StructField("chosen", BooleanType(), False),
        StructField("fit_seconds", DoubleType(), False),
        StructField("sample_rows", IntegerType(), False),
        StructField("model_usable", BooleanType(), False),
    ]
)


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def _train_sample(spark: SparkSession, cfg: Config, run_date: dt.date):
    """The bounded driver sample of the date's features, building the features first if absent."""
    features_ref = tables.table_ref(cfg.tables, cfg.tables.features)
    scfg = cfg.train.sample
    if not tables.exists(spark, features_ref) or tables.read_run(spark, features_ref, run_date).isEmpty():
        logs.get("train").info("no features for %s yet: running the features stage first", run_date)
        run_features(spark, cfg, run_date)
    features = tables.read_run(spark, features_ref, run_date)
    return driver_sample(features, FEATURE_COLUMNS, scfg.max_rows, scfg.seed)


def run_train(spark: SparkSession, cfg: Config, run_date: dt.date) -> dict[str, Any]:
    """Sample -> scale -> compare clusterings -> forest surrogate -> saved model bundle."""
    log = logs.get("train")
    tcfg, ccfg = cfg.train, cfg.train.clustering
    version = model_store.new_version()
    with logs.step(log, "sample features") as s:
        sample = _train_sample(spark, cfg, run_date)
        s.rows = len(sample)
        s.detail = f"cap={tcfg.sample.max_rows} seed={tcfg.sample.seed}"
    with logs.step(log, "transform") as s:
        prep = LogScaler(FEATURE_COLUMNS, LOG_COLUMNS, tcfg.transform.kind, tcfg.transform.offset).fit(sample)
        X = prep.transform(sample)
        s.rows = len(X)
        s.detail = f"kind={tcfg.transform.kind}"
    with logs.step(log, "compare clusterings") as s:
        candidates = clustering.evaluate(X, ccfg)
        clustering.apply_guardrails(candidates, ccfg.guardrails)
        s.rows = len(X)
        s.detail = (
            f"candidates={len(candidates)} passed={sum(c.passed for c in candidates)} "
            f"(fits and DBSCAN on {len(X)} rows, cap train.sample.max_rows={tcfg.sample.max_rows}; "
            f"metrics on {min(len(X), ccfg.metric_max_rows)} rows, cap clustering.metric_max_rows={ccfg.metric_max_rows})"
        )
    for c in candidates:
        log.info(
            "candidate %s: segments=%d silhouette=%s calinski_harabasz=%s davies_bouldin=%s noise=%.3f "
            "smallest=%.3f stability=%s %s",
            c.name, c.n_segments, _fmt(c.silhouette), _fmt(c.calinski_harabasz), _fmt(c.davies_bouldin),
            c.noise_share, c.smallest_share, _fmt(c.stability), "passed" if c.passed else f"failed: {c.reason}",
        )
    try:
        winner = clustering.choose(candidates, ccfg.tie_tolerance)
    except TrainingError:
        _write_candidates(spark, cfg, version, run_date, candidates, len(X), usable=False)
        raise
    log.info("winner: %s silhouette=%s segments=%d", winner.name, _fmt(winner.silhouette), winner.n_segments)
    with logs.step(log, "train forest") as s:
        forest, report = classifier.train_forest(
            sample[FEATURE_COLUMNS].to_numpy(dtype=float), winner.labels, tcfg.forest
        )
        s.rows = report.train_rows
        s.detail = f"test_rows={report.test_rows} accuracy={report.accuracy:.4f} macro_f1={report.macro_f1:.4f} " + (
            "per_segment_f1=" + ",".join(f"{k}:{v:.3f}" for k, v in report.per_segment_f1.items())
        )
    usable = report.macro_f1 >= tcfg.forest.min_macro_f1
    keep = winner.labels != clustering.NOISE
    profiles = personas.segment_profiles(X[keep], winner.labels[keep], FEATURE_COLUMNS)
    names = personas.name_segments(profiles, forest.feature_importances_)
    segments, sizes = np.unique(winner.labels[keep], return_counts=True)
    metrics = {
        "run_date": run_date.isoformat(),
        "sample_rows": len(sample),
        "transform": tcfg.transform.kind,
        "candidates": [c.record() for c in candidates],
        "winner": winner.record(),
        "forest": report.record(),
        "usable": usable,
        "segment_sizes": {str(k): int(v) for k, v in zip(segments, sizes)},
        "segment_names": {str(k): v for k, v in names.items()},
    }
    bundle = model_store.ModelBundle(
        version=version,
        feature_columns=list(FEATURE_COLUMNS),
        preprocessor=prep,
        forest=forest,
        segment_names=names,
        imputation=_imputation_values(spark, cfg, run_date),
        metrics=metrics,
        library_versions=model_store.library_versions(),
        trained_on=f"{tables.table_ref(cfg.tables, cfg.tables.features)} run_date={run_date}",
    )
    with logs.step(log, "save model") as s:
        path = model_store.save(bundle, cfg.tables.models_dir, usable=usable)
        _write_candidates(spark, cfg, version, run_date, candidates, len(X), usable=usable)
        s.detail = f"version={version} usable={usable} path={path}"
    if not usable:
        raise TrainingError(
            f"the forest agrees with the clusterer at macro-F1 {report.macro_f1:.4f} on held-out rows, below "
            f"train.forest.min_macro_f1={tcfg.forest.min_macro_f1}; model {version} kept at {path} but not used"
        )
    return {
        "model_version": version,
        "model_path": str(path),
        "metrics": metrics,
        "sample_rows": len(sample),
        "tables": [str(tables.table_ref(cfg.tables, cfg.tables.clustering_candidates))],
    }


def _write_candidates(spark, cfg: Config, version: str, run_date: dt.date, candidates, rows: int, usable: bool) -> None:
    ref = tables.table_ref(cfg.tables, cfg.tables.clustering_candidates)
    records = []
    for c in candidates:
        r = c.record()
        records.append(
            (version, run_date, r["algorithm"], r["params"], r["n_segments"], r["silhouette"], r["calinski_harabasz"],
             r["davies_bouldin"], r["noise_share"], r["smallest_share"], r["stability"], r["bic"], r["passed"],
             r["reason"], r["chosen"], float(r["fit_seconds"]), rows, usable)
        )
    tables.replace_key(spark.createDataFrame(records, CANDIDATES_SCHEMA), ref, "model_version", version)


# What campaign queries filter on; statistics on ids and names would cost every write for nothing.
SEGMENTS_STATS_COLUMNS = ["segment_id", "segment_confidence"]


def run_score(
    spark: SparkSession, cfg: Config, run_date: dt.date, progress: dict[str, Any] | None = None,
    model_version: str | None = None, tag: str | None = None,
) -> dict[str, Any]:
    """Features partition -> broadcast forest in mapInArrow -> `segments` partition.

    Scores with `model_version` when given (nightly passes the model it chose at its start),
    else `score.model_version`, else the latest model. A named error raised on an executor
    (non-finite features, other library versions) is raised here by name.
    """
    log = logs.get("score")
    progress = {} if progress is None else progress
    tag = tag or new_write_tag("score")
    features_ref = tables.table_ref(cfg.tables, cfg.tables.features)
    segments_ref = tables.table_ref(cfg.tables, cfg.tables.segments)
    with logs.step(log, "load model") as s:
        model = model_store.load(cfg.tables.models_dir, model_version or cfg.score.model_version)
        progress["model_version"] = model.version
        s.detail = f"version={model.version} segments={len(model.classes)}"
    with logs.step(log, "read features") as s:
        features = tables.read_run(spark, features_ref, run_date)
        model_store.check_features(model, features.columns)
        progress["rows_read"] = s.rows = rows_in = features.count()
    if rows_in == 0:
        raise FeaturesNotFoundError(f"no features for run date {run_date} in {features_ref}: run the features job first")
    with logs.step(log, "score and write segments") as s:
        spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", str(cfg.score.arrow_batch_rows))
        segments = _score(features, model, run_date, runs.utc_now())
        with scoring.executor_errors():
            tables.replace_run(segments, segments_ref, run_date, stats_columns=SEGMENTS_STATS_COLUMNS, tag=tag)
        s.rows = rows_out = tables.read_run(spark, segments_ref, run_date).count()
        progress["rows_written"] = rows_out
        s.detail = f"table={segments_ref}"
    if rows_out != rows_in:
        _restore(spark, log, [segments_ref], run_date, tag)
        raise AccountingError(
            f"score: {rows_in} customers in features but {rows_out} rows in segments; "
            f"{run_date}'s segments were put back as they were before this run"
        )
    return {
        "rows_read": rows_in,
        "rows_written": rows_out,
        "segments_rows": rows_out,
        "model_version": model.version,
        "tables": [str(segments_ref)],
    }


def _score(features, model, run_date, scored_at):
    return scoring.score(features, model, run_date, scored_at)


def run_nightly(
    spark: SparkSession, cfg: Config, run_date: dt.date, progress: dict[str, Any] | None = None
) -> dict[str, Any]:
    """features -> train (when no model exists or retraining is asked) -> score.

    The model is fixed once: `score.model_version` if set, else the one this run trains, else
    the one `LATEST` named when the run started, so a concurrent `train` cannot swap it. If any
    accounting check fails, every table of the night is put back as it was.
    """
    log = logs.get("nightly")
    progress = {} if progress is None else progress
    pinned = cfg.score.model_version
    model_version = pinned or model_store.latest(cfg.tables.models_dir)
    night = [tables.table_ref(cfg.tables, name) for name in
             (cfg.tables.features, cfg.tables.quarantine, cfg.tables.imputation, cfg.tables.segments)]
    tag = new_write_tag("nightly")
    summary: dict[str, Any] = {"tables": []}
    try:
        stage: dict[str, Any] = {}
        try:
            feats = run_features(spark, cfg, run_date, stage, tag=tag)
        finally:  # rows_written of features is not the night's: the night writes segments
            progress.update({k: stage[k] for k in ("rows_read", "rows_quarantined") if k in stage})
        summary["rows_read"] = feats["rows_read"]
        summary["rows_quarantined"] = feats["rows_quarantined"]
        summary["tables"] += feats["tables"]
        if cfg.train.retrain or not model_version:
            trained = run_train(spark, cfg, run_date)
            summary["trained"] = trained["model_version"]
            model_version = pinned or trained["model_version"]
        else:
            log.info("train: skipped (model %s exists; pass --retrain to train anew)", model_version)
        progress["model_version"] = model_version
        stage = {}
        try:
            scored = run_score(spark, cfg, run_date, stage, model_version=model_version, tag=tag)
        finally:
            progress.update({k: stage[k] for k in ("rows_written", "model_version") if k in stage})
        summary["tables"] += scored["tables"]
        summary["rows_written"] = summary["segments_rows"] = scored["segments_rows"]
        summary["model_version"] = scored["model_version"]
        if summary["segments_rows"] + summary["rows_quarantined"] != summary["rows_read"]:
            raise AccountingError(
                f"nightly: read {summary['rows_read']} rows but scored {summary['segments_rows']} "
                f"and quarantined {summary['rows_quarantined']}; {run_date}'s tables were put back as they were "
                "before this run"
            )
    except AccountingError:
        _restore(spark, log, night, run_date, tag)
        raise
    return summary
