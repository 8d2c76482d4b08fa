"""The score stage: the night's features -> the broadcast forest -> `segments`, then the downstream tables."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pyspark.sql import Observation, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import DateType, DoubleType, IntegerType, StringType, StructField, StructType, TimestampType

from segmentation.core import logs
from segmentation.core.columns import ID_COLUMN, RUN_DATE
from segmentation.core.config import Config
from segmentation.core.errors import AccountingError, FeaturesNotFoundError
from segmentation.downstream import audiences, drift, publish
from segmentation.features.stage import applied_imputation
from segmentation.io import nights, runs, tables
from segmentation.model import registry, store
from segmentation.score import scoring

# `segments`: one row per customer and night, as `scoring.score` selects it (whose
# `scoring.SEGMENTS_SCHEMA` is the scoring pass's own Arrow output, before names and the night).
SEGMENTS_TABLE_SCHEMA = StructType(
    [
        StructField(ID_COLUMN, StringType(), True),
        StructField("segment_id", IntegerType(), True),
        StructField("segment_name", StringType(), True),
        StructField("segment_confidence", DoubleType(), True),
        StructField("model_version", StringType(), False),
        StructField(RUN_DATE, DateType(), False),
        StructField("scored_at", TimestampType(), False),
    ]
)

# What campaign queries filter on; statistics on ids and names would cost every write for nothing.
SEGMENTS_STATS_COLUMNS = ["segment_id", "segment_confidence"]


def run_score(
    spark: SparkSession, cfg: Config, run_date: dt.date, progress: dict[str, Any] | None = None,
    model_version: str | None = None, tag: str | None = None,
) -> dict[str, Any]:
    """The score job: nights a dead run left unpublished set aside, the night scored, then published."""
    progress = {} if progress is None else progress
    tag = tag or tables.new_write_tag("score")
    publish.settle(spark, cfg)
    # What the features scored were built from: the latest features run of the night that recorded it.
    progress["input_version"] = runs.last_input_version(spark, cfg, run_date)
    scored = score_night(spark, cfg, run_date, progress, model_version, tag)
    after = publish.publish_night(spark, cfg, run_date, scored["model"], scored["features"], scored["psis"], tag,
                                  progress.get("run_id"), progress.get("started_at"))
    progress["drift_status"] = after["drift_status"]
    return {
        **{k: scored[k] for k in ("rows_read", "rows_written", "segments_rows", "model_version", "registry_version")},
        "drift_status": after["drift_status"],
        "membership_changes": after["changes"],
        "tables": [scored["table"], *after["tables"]],
        **({"audiences": audiences.summary_text(after["audiences"])} if after["audiences"] else {}),
    }


def score_night(
    spark: SparkSession, cfg: Config, run_date: dt.date, progress: dict[str, Any], model_version: str | None,
    tag: str,
) -> dict[str, Any]:
    """Features partition -> broadcast forest in mapInArrow -> `segments` partition, unpublished.

    Scores with `model_version` when given (nightly passes the model it chose at its start),
    else `score.model_version`, else the registry's champion. A named error raised on an
    executor (non-finite features, other library versions) is raised here by name. `nights`
    marks the night PUBLISHING before `segments` changes; on a failed count the night is set
    aside at once. Returns the model and the features' PSI (when the scoring pass counted
    them), which the publication needs.
    """
    log = logs.get("score")
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
        store.check_features(model, features.columns)
        if not features.inputFiles():  # the Delta log's file list: no data is read
            raise FeaturesNotFoundError(missing)
    _warn_other_imputation(spark, cfg, run_date, model, log)
    nights.begin(spark, cfg, run_date, progress.get("run_id"), tag, progress.get("started_at") or runs.utc_now())
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
        publish.set_aside(spark, cfg, run_date, tag)
        raise FeaturesNotFoundError(missing)
    if rows_out != rows_in:
        publish.set_aside(spark, cfg, run_date, tag)
        raise AccountingError(
            f"score: {rows_in} customers in features but {rows_out} rows in segments; "
            f"{run_date}'s segments were put back as they were before this run"
        )
    # An accumulator counts a task once however often it ran, but only if the write ran it once
    # per partition: anything but one count per row read is set aside.
    psis = drift.psi_of_counts(counts.value, reference) if (
        counts is not None and int(counts.value[drift.ROWS][0]) == rows_in) else None
    return {
        "rows_read": rows_in,
        "rows_written": rows_out,
        "segments_rows": rows_out,
        "model_version": model.version,
        "registry_version": loaded.registry_version,
        "table": str(segments_ref),
        "model": model,
        "features": features,
        "psis": psis,
    }


def _warn_other_imputation(spark: SparkSession, cfg: Config, run_date: dt.date, model: store.ModelBundle,
                           log) -> None:
    """Warns when the night's gaps were filled with other values than `model`'s (features run before
    a promote, or a retrain held back): real time fills them with the model's, so for the customers
    imputed tonight it may give another segment than `segments` holds."""
    applied, imputed = applied_imputation(spark, cfg, run_date)
    other = {c: v for c, v in applied.items() if imputed.get(c) and model.imputation.get(c) != v}
    if other:
        log.warning("the features of %s filled gaps with %s, model %s with %s: for the customers imputed, real-time "
                    "answers may differ from tonight's segments (run features again to fill with this model's values)",
                    run_date, ", ".join(f"{c}={v:.6g} ({imputed[c]} rows)" for c, v in other.items()), model.version,
                    ", ".join(f"{c}={model.imputation.get(c)}" for c in other))


def _count_or_none(df) -> int | None:
    try:
        return df.count()
    except Exception:  # noqa: BLE001 - the error that ended the run is the one to report
        return None


def _score(features, model, run_date, scored_at, drift_counts=None):
    return scoring.score(features, model, run_date, scored_at, drift_counts)
