"""The features stage: raw table -> data contract -> imputed, engineered `features` of the night.

Gaps are filled with the imputation values of the model that will score the night, the values
real-time serving fills them with (`ModelBundle.imputation`), so both paths give a customer the
same segment; with no model (the first night, or a night that trains anew) with the night's own
medians. The `imputation` table records both: the night's median and the value applied.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pyspark.sql import Column, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import (
    ArrayType,
    DateType,
    DoubleType,
    LongType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

from segmentation.core import logs, redact
from segmentation.core.columns import CORRUPT_COLUMN, ID_COLUMN, INDICATOR_COLUMNS, RAW_NUMERIC_COLUMNS, RUN_DATE
from segmentation.core.config import Config
from segmentation.core.errors import AccountingError, InputError
from segmentation.features import contract, guard
from segmentation.features.cleaning import fill_missing, imputation_aggregates, read_imputation, select_raw_columns
from segmentation.features.derived import add_features
from segmentation.io import tables
from segmentation.io.rows import row
from segmentation.model import registry

# The three tables this stage writes, one partition per run_date.
# `features`: the contract's columns, imputed, and the engineered ones. Written from the frame
# `add_features` builds; the imputed columns come out NOT NULL, which follows `imputation.columns`.
FEATURES_SCHEMA = StructType(
    [
        StructField(ID_COLUMN, StringType(), True),
        *[StructField(c, DoubleType(), True) for c in RAW_NUMERIC_COLUMNS],
        StructField("PURCHASE_TYPE", StringType(), False),
        StructField("LIMIT_USAGE", DoubleType(), True),
        StructField("PAYMENT_MINPAY_RATIO", DoubleType(), True),
        *[StructField(c, DoubleType(), False) for c in INDICATOR_COLUMNS],
        StructField("MONTHLY_AVG_PURCHASES", DoubleType(), True),
        StructField("MONTHLY_CASH_ADVANCE", DoubleType(), True),
        StructField(RUN_DATE, DateType(), False),
    ]
)

# `quarantine`: the rows that broke the data contract, as read, with every rule they broke.
QUARANTINE_SCHEMA = StructType(
    [
        StructField(RUN_DATE, DateType(), False),
        StructField("source", StringType(), False),
        StructField(ID_COLUMN, StringType(), True),
        StructField("raw", StringType(), True),
        StructField("reasons", ArrayType(StringType()), False),
        StructField("quarantined_at", TimestampType(), False),
    ]
)

# `imputation`: per imputed column, the night's own median (`value`, computed by `method`), the
# value its gaps were filled with (`applied_value`) and the model that value came from
# (`applied_from`, null: the night's median), and how many gaps there were. A table from before
# `applied_value` has nulls there: its nights were filled with `value`.
IMPUTATION_SCHEMA = StructType(
    [
        StructField(RUN_DATE, DateType(), False),
        StructField("column", StringType(), False),
        StructField("value", DoubleType(), False),
        StructField("method", StringType(), False),
        StructField("rows_imputed", LongType(), True),
        StructField("applied_value", DoubleType(), True),
        StructField("applied_from", StringType(), True),
    ]
)


def quarantine_columns(run_date: dt.date, source: str) -> list[Column]:
    """QUARANTINE_SCHEMA's columns, in its order, over the checked rows that broke the contract."""
    columns = {
        RUN_DATE: F.lit(run_date),
        "source": F.lit(redact.text(source)),  # a URI's password stays out of the table
        ID_COLUMN: F.col(ID_COLUMN),
        "raw": contract.raw_text([ID_COLUMN, *RAW_NUMERIC_COLUMNS]),
        "reasons": F.col(contract.REASONS),
        "quarantined_at": F.current_timestamp(),
    }
    return [columns[name].alias(name) for name in QUARANTINE_SCHEMA.fieldNames()]


def fill_plan(
    medians: dict[str, float], model_values: dict[str, float] | None, model_version: str | None
) -> tuple[dict[str, float], dict[str, str | None]]:
    """(the value each column's gaps are filled with, the model it came from: None for the night's median).

    A model's value wins; a column the model has no value for (imputed since it was trained) is
    filled with the night's median, as with no model at all.
    """
    values: dict[str, float] = {}
    origin: dict[str, str | None] = {}
    for c, median in medians.items():
        if model_values is not None and model_values.get(c) is not None:
            values[c], origin[c] = float(model_values[c]), model_version
        else:
            values[c], origin[c] = median, None
    return values, origin


def imputation_rows(
    run_date: dt.date, medians: dict[str, float], missing: dict[str, int], method: str,
    applied: dict[str, float] | None = None, origin: dict[str, str | None] | None = None,
) -> list[dict[str, Any]]:
    """IMPUTATION_SCHEMA rows: one per imputed column, in the order the medians were computed.

    `applied` (default: the medians) and `origin` are what `fill_plan` returns.
    """
    applied = medians if applied is None else applied
    origin = origin or {}
    return [
        row(IMPUTATION_SCHEMA, run_date=run_date, column=c, value=v, method=method, rows_imputed=missing[c],
            applied_value=applied[c], applied_from=origin.get(c))
        for c, v in medians.items()
    ]


def applied_imputation(spark: SparkSession, cfg: Config, run_date: dt.date) -> tuple[dict[str, float], dict[str, int]]:
    """({column: the value the night's gaps were filled with}, {column: rows imputed}), from the
    `imputation` table; both empty without one. A row from before `applied_value` was filled
    with its `value`."""
    ref = tables.table_ref(cfg.tables, cfg.tables.imputation)
    if not tables.exists(spark, ref):
        return {}, {}
    night = tables.read_run(spark, ref, run_date)
    has_applied, has_counts = "applied_value" in night.columns, "rows_imputed" in night.columns
    applied: dict[str, float] = {}
    imputed: dict[str, int] = {}
    for r in night.collect():  # one row per imputed column
        value = r["applied_value"] if has_applied and r["applied_value"] is not None else r["value"]
        applied[r["column"]] = float(value)
        imputed[r["column"]] = int(r["rows_imputed"] or 0) if has_counts else 0
    return applied, imputed


def run_features_for_scoring(
    spark: SparkSession, cfg: Config, run_date: dt.date, progress: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The `features` job: `run_features` filling gaps with the values of the model `score` would
    use (`score.model_version`, else the champion), or the night's medians when there is none."""
    return run_features(spark, cfg, run_date, progress, fill_from=registry.scoring_version(cfg))


def run_features(
    spark: SparkSession, cfg: Config, run_date: dt.date, progress: dict[str, Any] | None = None,
    tag: str | None = None, fill_from: str | None = None,
) -> dict[str, Any]:
    """Raw table -> contract check -> `features` and `quarantine` partitions for `run_date`.

    Gaps in `imputation.columns` are filled with the imputation values of model `fill_from` (a
    registered version or a bundle folder: the model that will score the night), or with the
    night's own medians when it is None. The night's medians are recorded either way.
    `progress` receives the counts as they become known, so a run that fails later still
    reports them. If the rows written do not add up to the rows read, the night's tables are
    put back as they were before this run's writes (tagged `tag`) and the run fails.
    """
    log = logs.get("features")
    progress = {} if progress is None else progress
    tag = tag or tables.new_write_tag("features")
    features_ref = tables.table_ref(cfg.tables, cfg.tables.features)
    quarantine_ref = tables.table_ref(cfg.tables, cfg.tables.quarantine)
    imputation_ref = tables.table_ref(cfg.tables, cfg.tables.imputation)
    profile_ref = tables.table_ref(cfg.tables, cfg.tables.night_profile)
    previous = guard.previous_night(spark, cfg, run_date) if cfg.guard.enabled else None
    source, imp = cfg.input.source, cfg.imputation
    model_values, model_version = None, None
    if fill_from:
        with logs.step(log, "load the model's imputation values") as s:
            bundle = registry.load(cfg, fill_from).bundle
            model_values, model_version = bundle.imputation, bundle.version
            s.detail = f"model={model_version} " + " ".join(f"{c}={v:.6g}" for c, v in model_values.items())
    with logs.step(log, "read and check input") as s:
        # Taken once, before the read, and the read pinned to it: the run records what it read.
        input_version = progress["input_version"] = tables.input_version(spark, source, cfg.input.format)
        raw = select_raw_columns(tables.read_raw(spark, source, cfg.input.format, input_version))
        checked = contract.check_rows(raw, cfg.contract, nullable=imp.columns)
        kept = F.size(contract.REASONS) == 0
        # One pass: the counts, and the medians and gaps of the rows that keep the contract. The
        # writes below check the input again instead of keeping every checked row (a persist at
        # scale spills them all to disk and reads them back, dearer than the rules themselves).
        totals = checked.agg(
            F.count(F.lit(1)).alias("rows"), F.count_if(~kept).alias("bad"),
            *imputation_aggregates(imp.columns, imp.method, imp.accuracy, kept),
            *guard.aggregates(cfg.guard, kept, previous),
        ).first()
        rows_read, rows_bad = int(totals["rows"]), int(totals["bad"] or 0)
        progress["rows_read"] = s.rows = rows_read
        s.detail = f"source={source} version={input_version} breaking_contract={rows_bad}"
    if rows_read == 0:
        raise InputError(f"input {source} has no rows")
    contract.check_share(rows_read, rows_bad, cfg.contract.max_quarantine_share, source)
    verdict = guard.check(spark, cfg, run_date, raw, totals, rows_read - rows_bad, previous, log)
    medians, missing = read_imputation(totals, imp.columns)
    applied, origin = fill_plan(medians, model_values, model_version)
    filled = (f"{c}={v:.6g} ({f'model {origin[c]}' if origin[c] else 'the night'})" for c, v in applied.items())
    log.info("medians: method=%s %s; gaps filled with %s", imp.method,
             " ".join(f"{c}={v:.6g}" for c, v in medians.items()), " ".join(filled))
    with logs.step(log, "write quarantine") as s:
        bad = checked.where(~kept).select(*quarantine_columns(run_date, source))
        if rows_bad or tables.holds_run(spark, quarantine_ref, run_date) is not False:
            # A clean night empties its quarantine partition without reading the input again.
            tables.replace_run(bad if rows_bad else bad.limit(0), quarantine_ref, run_date, tag=tag)
            s.rows = rows_quarantined = tables.written_rows(spark, quarantine_ref, run_date, tag)
        else:  # a clean night with nothing to empty: no commit
            s.rows = rows_quarantined = 0
        progress["rows_quarantined"] = rows_quarantined
        s.detail = f"table={quarantine_ref}"
    with logs.step(log, "write features") as s:
        features = (
            checked.where(kept).drop(contract.REASONS, CORRUPT_COLUMN)
            .transform(fill_missing, applied)
            .transform(add_features, cfg.features.ratio_epsilon)
            .withColumn(RUN_DATE, F.lit(run_date))
        )
        # No reader filters on feature values: the table keeps row counts, not column statistics.
        tables.replace_run(features, features_ref, run_date, stats_columns=[], tag=tag)
        s.rows = rows_written = tables.written_rows(spark, features_ref, run_date, tag)
        progress["rows_written"] = rows_written
        s.detail = f"table={features_ref}"
    with logs.step(log, "write imputation values") as s:
        rows = imputation_rows(run_date, medians, missing, imp.method, applied, origin)
        tables.replace_run(
            spark.createDataFrame(rows, IMPUTATION_SCHEMA), imputation_ref, run_date, tag=tag, merge_schema=True
        )
        s.rows = len(rows)
    with logs.step(log, "write night profile") as s:
        rows = guard.profile_rows(run_date, cfg.guard, totals, rows_read - rows_bad)
        tables.replace_run(spark.createDataFrame(rows, guard.PROFILE_SCHEMA), profile_ref, run_date, tag=tag)
        s.rows = len(rows)
    if rows_written + rows_quarantined != rows_read:
        tables.restore_night(spark, log, [quarantine_ref, features_ref, imputation_ref, profile_ref], run_date, tag)
        raise AccountingError(
            f"features: read {rows_read} rows but wrote {rows_written} and quarantined {rows_quarantined}; "
            f"{run_date}'s features, quarantine and imputation tables were put back as they were before this run"
        )
    return {
        "rows_read": rows_read,
        "rows_written": rows_written,
        "rows_quarantined": rows_quarantined,
        "input_version": input_version,
        "tables": [str(features_ref), str(quarantine_ref)],
        "medians": medians,
        "applied": applied,
        "applied_from": origin,
        "guard": verdict,
    }


