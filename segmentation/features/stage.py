"""The features stage: raw table -> data contract -> imputed, engineered `features` of the night."""

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

from segmentation.core import logs
from segmentation.core.columns import CORRUPT_COLUMN, ID_COLUMN, INDICATOR_COLUMNS, RAW_NUMERIC_COLUMNS, RUN_DATE
from segmentation.core.config import Config
from segmentation.core.errors import AccountingError, InputError
from segmentation.features import contract, guard
from segmentation.features.cleaning import fill_missing, imputation_aggregates, read_imputation, select_raw_columns
from segmentation.features.derived import add_features
from segmentation.io import tables
from segmentation.io.rows import row

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

# `imputation`: the value each imputed column's gaps were filled with, and how many there were.
IMPUTATION_SCHEMA = StructType(
    [
        StructField(RUN_DATE, DateType(), False),
        StructField("column", StringType(), False),
        StructField("value", DoubleType(), False),
        StructField("method", StringType(), False),
        StructField("rows_imputed", LongType(), True),
    ]
)


def quarantine_columns(run_date: dt.date, source: str) -> list[Column]:
    """QUARANTINE_SCHEMA's columns, in its order, over the checked rows that broke the contract."""
    columns = {
        RUN_DATE: F.lit(run_date),
        "source": F.lit(source),
        ID_COLUMN: F.col(ID_COLUMN),
        "raw": contract.raw_text([ID_COLUMN, *RAW_NUMERIC_COLUMNS]),
        "reasons": F.col(contract.REASONS),
        "quarantined_at": F.current_timestamp(),
    }
    return [columns[name].alias(name) for name in QUARANTINE_SCHEMA.fieldNames()]


def imputation_rows(
    run_date: dt.date, medians: dict[str, float], missing: dict[str, int], method: str
) -> list[dict[str, Any]]:
    """IMPUTATION_SCHEMA rows: one per imputed column, in the order the medians were computed."""
    return [
        row(IMPUTATION_SCHEMA, run_date=run_date, column=c, value=v, method=method, rows_imputed=missing[c])
        for c, v in medians.items()
    ]


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
    tag = tag or tables.new_write_tag("features")
    features_ref = tables.table_ref(cfg.tables, cfg.tables.features)
    quarantine_ref = tables.table_ref(cfg.tables, cfg.tables.quarantine)
    imputation_ref = tables.table_ref(cfg.tables, cfg.tables.imputation)
    profile_ref = tables.table_ref(cfg.tables, cfg.tables.night_profile)
    previous = guard.previous_night(spark, cfg, run_date) if cfg.guard.enabled else None
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
            *guard.aggregates(cfg.guard, kept, previous),
        ).first()
        rows_read, rows_bad = int(totals["rows"]), int(totals["bad"] or 0)
        progress["rows_read"] = s.rows = rows_read
        s.detail = f"source={source} breaking_contract={rows_bad}"
    if rows_read == 0:
        raise InputError(f"input {source} has no rows")
    contract.check_share(rows_read, rows_bad, cfg.contract.max_quarantine_share, source)
    verdict = guard.check(spark, cfg, run_date, raw, totals, rows_read - rows_bad, previous, log)
    medians, missing = read_imputation(totals, imp.columns)
    log.info("medians: method=%s %s", imp.method, " ".join(f"{c}={v:.6g}" for c, v in medians.items()))
    with logs.step(log, "write quarantine") as s:
        bad = checked.where(~kept).select(*quarantine_columns(run_date, source))
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
        rows = imputation_rows(run_date, medians, missing, imp.method)
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
        "tables": [str(features_ref), str(quarantine_ref)],
        "medians": medians,
        "guard": verdict,
    }


