"""The stages of a night, each a function of (spark, config, run date) returning a summary."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from pyspark.sql import Observation, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import (
    DateType,
    DoubleType,
    LongType,
    StringType,
    StructField,
    StructType,
)

from segmentation import bundle as model_store
from segmentation import contract, downstream, drift, logs, registry, runs, scoring, tables, training
from segmentation.cleaning import fill_missing, imputation_aggregates, read_imputation, select_raw_columns
from segmentation.config import Config
from segmentation.errors import AccountingError, FeaturesNotFoundError, InputError, ModelError
from segmentation.features import add_features
from segmentation.schema import CORRUPT_COLUMN, ID_COLUMN, RAW_NUMERIC_COLUMNS, RUN_DATE

IMPUTATION_SCHEMA = StructType(
    [
        StructField(RUN_DATE, DateType(), False),
        StructField("column", StringType(), False),
        StructField("value", DoubleType(), False),
        StructField("method", StringType(), False),
        StructField("rows_imputed", LongType(), True),
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
        checked = contract.check_rows(raw, cfg.contract, nullable=imp.columns)
        kept = F.size(contract.REASONS) == 0
        # One pass: the counts, and the medians and gaps of the rows that keep the contract. The
        # writes below check the input again instead of keeping every checked row (a persist at
        # scale spills them all to disk and reads them back, dearer than the rules themselves).
        totals = checked.agg(
            F.count(F.lit(1)).alias("rows"), F.count_if(~kept).alias("bad"),
            *imputation_aggregates(imp.columns, imp.method, imp.accuracy, kept),
        ).first()
        rows_read, rows_bad = int(totals["rows"]), int(totals["bad"] or 0)
        progress["rows_read"] = s.rows = rows_read
        s.detail = f"source={source} breaking_contract={rows_bad}"
    if rows_read == 0:
        raise InputError(f"input {source} has no rows")
    contract.check_share(rows_read, rows_bad, cfg.contract.max_quarantine_share, source)
    medians, missing = read_imputation(totals, imp.columns)
    log.info("medians: method=%s %s", imp.method, " ".join(f"{c}={v:.6g}" for c, v in medians.items()))
    with logs.step(log, "write quarantine") as s:
        bad = checked.where(~kept).select(
            F.lit(run_date).alias(RUN_DATE),
            F.lit(source).alias("source"),
            F.col(ID_COLUMN),
            contract.raw_text([ID_COLUMN, *RAW_NUMERIC_COLUMNS]).alias("raw"),
            F.col(contract.REASONS).alias("reasons"),
            F.current_timestamp().alias("quarantined_at"),
        )
        # A clean night empties its quarantine partition without reading the input again.
        tables.replace_run(bad if rows_bad else bad.limit(0), quarantine_ref, run_date, tag=tag)
        s.rows = rows_quarantined = tables.written_rows(spark, quarantine_ref, run_date, tag)
        progress["rows_quarantined"] = rows_quarantined
        s.detail = f"table={quarantine_ref}"
    with logs.step(log, "write features") as s:
        features = (
            checked.where(kept).drop(contract.REASONS, CORRUPT_COLUMN)
            .transform(fill_missing, medians)
            .transform(add_features, cfg.features.ratio_epsilon)
            .withColumn(RUN_DATE, F.lit(run_date))
        )
        # No reader filters on feature values: the table keeps row counts, not column statistics.
        tables.replace_run(features, features_ref, run_date, stats_columns=[], tag=tag)
        s.rows = rows_written = tables.written_rows(spark, features_ref, run_date, tag)
        progress["rows_written"] = rows_written
        s.detail = f"table={features_ref}"
    with logs.step(log, "write imputation values") as s:
        rows = [(run_date, c, v, imp.method, missing[c]) for c, v in medians.items()]
        tables.replace_run(
            spark.createDataFrame(rows, IMPUTATION_SCHEMA), imputation_ref, run_date, tag=tag, merge_schema=True
        )
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


def run_train(spark: SparkSession, cfg: Config, run_date: dt.date) -> dict[str, Any]:
    """The train stage (see `segmentation.training`), building the date's features if missing."""
    return training.run_train(spark, cfg, run_date, ensure_features=run_features)


# What campaign queries filter on; statistics on ids and names would cost every write for nothing.
SEGMENTS_STATS_COLUMNS = ["segment_id", "segment_confidence"]


def run_score(
    spark: SparkSession, cfg: Config, run_date: dt.date, progress: dict[str, Any] | None = None,
    model_version: str | None = None, tag: str | None = None,
) -> dict[str, Any]:
    """Features partition -> broadcast forest in mapInArrow -> `segments` partition.

    Scores with `model_version` when given (nightly passes the model it chose at its start),
    else `score.model_version`, else the registry's champion. A named error raised on an
    executor (non-finite features, other library versions) is raised here by name.
    """
    log = logs.get("score")
    progress = {} if progress is None else progress
    tag = tag or new_write_tag("score")
    features_ref = tables.table_ref(cfg.tables, cfg.tables.features)
    segments_ref = tables.table_ref(cfg.tables, cfg.tables.segments)
    with logs.step(log, "load model") as s:
        loaded = registry.load(cfg, model_version or cfg.score.model_version)
        model = loaded.bundle
        progress["model_version"] = model.version
        progress["registry_version"] = loaded.registry_version
        s.detail = (f"version={model.version} registry_version={loaded.registry_version} "
                    f"segments={len(model.classes)}")
    missing = f"no features for run date {run_date} in {features_ref}: run the features job first"
    with logs.step(log, "read features") as s:
        features = tables.read_run(spark, features_ref, run_date)
        model_store.check_features(model, features.columns)
        if not features.inputFiles():  # the Delta log's file list: no data is read
            raise FeaturesNotFoundError(missing)
    with logs.step(log, "score and write segments") as s:
        spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", str(cfg.score.arrow_batch_rows))
        # The features are read once: the write counts them on the way (an observed metric).
        seen = Observation("features read by score")
        observed = features.observe(seen, F.count(F.lit(1)).alias("rows"))
        # The drift bins are counted on the way too; a Spark aggregate measures them if not.
        reference = model.drift_reference
        counts = spark.sparkContext.accumulator(drift.zero_counts(reference), drift.BinCounts()) if reference else None
        segments = _score(observed, model, run_date, runs.utc_now(), counts)
        try:
            with scoring.executor_errors():
                tables.replace_run(segments, segments_ref, run_date, stats_columns=SEGMENTS_STATS_COLUMNS, tag=tag)
        except Exception:
            progress["rows_read"] = _count_or_none(features)  # a failed run still reports what it read
            raise
        progress["rows_read"] = rows_in = int(seen.get["rows"])
        s.rows = rows_out = tables.written_rows(spark, segments_ref, run_date, tag)
        if rows_out != rows_in:  # an observed metric may count a retried task twice: confirm by reading
            progress["rows_read"] = rows_in = features.count()
        progress["rows_written"] = rows_out
        s.detail = f"features={rows_in} table={segments_ref}"
    if rows_in == 0:
        _restore(spark, log, [segments_ref], run_date, tag)
        raise FeaturesNotFoundError(missing)
    if rows_out != rows_in:
        _restore(spark, log, [segments_ref], run_date, tag)
        raise AccountingError(
            f"score: {rows_in} customers in features but {rows_out} rows in segments; "
            f"{run_date}'s segments were put back as they were before this run"
        )
    # An accumulator counts a task once however often it ran, but only if the write ran it once
    # per partition: anything but one count per row read is set aside.
    psis = drift.psi_of_counts(counts.value, reference) if (
        counts is not None and int(counts.value[drift.ROWS][0]) == rows_in) else None
    after = downstream.refresh(spark, cfg, run_date, model, features, psis)
    progress["drift_status"] = after["drift_status"]
    return {
        "rows_read": rows_in,
        "rows_written": rows_out,
        "segments_rows": rows_out,
        "model_version": model.version,
        "registry_version": loaded.registry_version,
        "drift_status": after["drift_status"],
        "tables": [str(segments_ref), *after["tables"]],
    }


def _count_or_none(df) -> int | None:
    try:
        return df.count()
    except Exception:  # noqa: BLE001 - the error that ended the run is the one to report
        return None


def _score(features, model, run_date, scored_at, drift_counts=None):
    return scoring.score(features, model, run_date, scored_at, drift_counts)


def _features_drifted(spark: SparkSession, cfg: Config, run_date: dt.date, model_version: str) -> bool:
    """--retrain-on-drift: tonight's features against the current model's training sample."""
    model = registry.load(cfg, model_version).bundle
    features = tables.read_run(spark, tables.table_ref(cfg.tables, cfg.tables.features), run_date)
    psis = downstream.features_drift(spark, cfg, model, features)
    drifted = {c: v for c, v in psis.items() if v > cfg.drift.psi_threshold}
    log = logs.get("nightly")
    if drifted:
        log.warning("features drifted from model %s (%s): retraining before scoring", model.version,
                    ", ".join(f"{c} PSI {v:.2f}" for c, v in sorted(drifted.items())))
    else:
        log.info("no feature drift against model %s (max PSI %.3f): no retrain", model.version,
                 max(psis.values(), default=0.0))
    return bool(drifted)


def run_nightly(
    spark: SparkSession, cfg: Config, run_date: dt.date, progress: dict[str, Any] | None = None
) -> dict[str, Any]:
    """features -> train (when no model exists or retraining is asked) -> score.

    The model is fixed once: `score.model_version` if set, else the one this run trains, else
    the champion when the run started, so a concurrent `train` or `promote` cannot swap it. A
    registry with no champion (every version failed its gates) trains. If any accounting check
    fails, every table of the night is put back as it was.
    """
    log = logs.get("nightly")
    progress = {} if progress is None else progress
    pinned = cfg.score.model_version
    try:
        model_version = pinned or registry.current(cfg)
    except ModelError as exc:
        log.warning("%s: training a new model", exc)
        model_version = None
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
        retrain = cfg.train.retrain or not model_version
        if not retrain and cfg.drift.retrain_on_drift:
            retrain = _features_drifted(spark, cfg, run_date, model_version)
        if retrain:
            trained = run_train(spark, cfg, run_date)
            summary["trained"] = trained["model_version"]
            model_version = pinned or str(trained.get("registry_version") or trained["model_version"])
        else:
            log.info("train: skipped (model %s exists; pass --retrain to train anew)", model_version)
        progress["model_version"] = model_version
        stage = {}
        try:
            scored = run_score(spark, cfg, run_date, stage, model_version=model_version, tag=tag)
        finally:
            progress.update({k: stage[k] for k in ("rows_written", "model_version", "registry_version") if k in stage})
        summary["tables"] += scored["tables"]
        summary["rows_written"] = summary["segments_rows"] = scored["segments_rows"]
        summary["model_version"] = scored["model_version"]
        summary["registry_version"] = scored["registry_version"]
        summary["drift_status"] = progress["drift_status"] = scored["drift_status"]
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
