"""All reads and writes of tables: the raw input and the Delta tables the product owns."""

from __future__ import annotations

import csv
import datetime as dt
import os
import re
from dataclasses import dataclass
from pathlib import Path

from delta.exceptions import DeltaConcurrentModificationException
from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StringType, StructField, StructType
from pyspark.sql.utils import AnalysisException

from segmentation.config import TablesConfig
from segmentation.errors import ArgumentError, ConcurrentRunError, FeaturesNotFoundError, InputError
from segmentation.schema import CORRUPT_COLUMN, RAW_SCHEMA, RUN_DATE

# Up to three-part names (catalog.schema.table) of plain identifiers.
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*){0,2}$")
_PATH_SUFFIXES = (".csv", ".parquet", ".delta")


@dataclass(frozen=True)
class TableRef:
    """A Delta table either at a path or under a metastore name."""

    path: str = ""
    name: str = ""

    def __str__(self) -> str:
        return self.name or self.path


def check_identifier(name: str) -> str:
    if not _IDENTIFIER.match(name):
        raise ArgumentError(f"{name!r} is not a table name (expected up to three dot-separated identifiers)")
    return name


def table_ref(tables: TablesConfig, table: str) -> TableRef:
    if tables.schema:
        return TableRef(name=check_identifier(f"{tables.schema}.{table}"))
    return TableRef(path=os.path.join(tables.root, table))


def parse_run_date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except (TypeError, ValueError):
        raise ArgumentError(f"run date must be YYYY-MM-DD, got {text!r}") from None


def run_date_predicate(run_date: dt.date) -> str:
    # Built from a parsed date, never from user text.
    return f"{RUN_DATE} = DATE'{run_date.isoformat()}'"


# ---------------------------------------------------------------------------------------------
# raw input


def input_kind(source: str, fmt: str) -> str:
    if fmt != "auto":
        return fmt
    lowered = source.lower().rstrip("/")
    if lowered.endswith(".csv"):
        return "csv"
    if lowered.endswith(".parquet"):
        return "parquet"
    if "/" in source or "://" in source or lowered.endswith(_PATH_SUFFIXES):
        if "://" not in source and Path(source, "_delta_log").is_dir():
            return "delta"
        if "://" not in source and Path(source).is_dir():
            return "parquet"
        return "delta"
    return "table"


def csv_schema(header: list[str]) -> StructType:
    """The explicit schema for a CSV with this header: contract columns typed, extras as text.

    Built in the file's own column order, so columns are matched by name, and with a column
    for Spark's corrupt-record handling, which keeps a malformed line whole.
    """
    types = {f.name: f.dataType for f in RAW_SCHEMA.fields}
    fields = [StructField(name, types.get(name, StringType()), True) for name in header]
    return StructType(fields + [StructField(CORRUPT_COLUMN, StringType(), True)])


def _csv_header(spark: SparkSession, source: str) -> list[str]:
    first = spark.read.text(source).first()
    if first is None or not first[0].strip():
        raise InputError(f"input {source} is empty (no header line)")
    line = first[0].lstrip("\ufeff")  # a spreadsheet's byte-order mark
    return [name.strip().strip('"') for name in next(csv.reader([line]))]


def read_raw(spark: SparkSession, source: str, fmt: str = "auto") -> DataFrame:
    """The raw customer table; CSV is read with an explicit schema built from its header."""
    kind = input_kind(source, fmt)
    if kind != "table" and "://" not in source and not Path(source).exists():
        raise InputError(f"input not found: {source}")
    try:
        if kind == "csv":
            return spark.read.csv(
                source, schema=csv_schema(_csv_header(spark, source)), header=True, mode="PERMISSIVE",
                columnNameOfCorruptRecord=CORRUPT_COLUMN,
            )
        if kind == "table":
            return spark.read.table(check_identifier(source))
        return spark.read.format(kind).load(source)
    except AnalysisException as exc:
        raise InputError(f"cannot read input {source} as {kind}: {exc.getMessage()}") from None


# ---------------------------------------------------------------------------------------------
# Delta tables


def exists(spark: SparkSession, ref: TableRef) -> bool:
    if ref.name:
        return spark.catalog.tableExists(ref.name)
    return DeltaTable.isDeltaTable(spark, ref.path)


def read_delta(spark: SparkSession, ref: TableRef) -> DataFrame:
    if ref.name:
        return spark.read.table(ref.name)
    return spark.read.format("delta").load(ref.path)


def read_run(spark: SparkSession, ref: TableRef, run_date: dt.date) -> DataFrame:
    """One night's partition of a run_date-keyed table; a named error when there is none."""
    if not exists(spark, ref):
        raise FeaturesNotFoundError(f"table {ref} does not exist yet: run the features job first")
    return read_delta(spark, ref).where(F.col(RUN_DATE) == F.lit(run_date))


def replace_run(
    df: DataFrame, ref: TableRef, run_date: dt.date, stats_columns: list[str] | None = None, merge_schema: bool = False,
) -> None:
    """Atomically replace one run_date of a table partitioned by run_date (creating it if new).

    `stats_columns` names the columns a new table keeps file statistics on ([]: row counts
    only); None keeps Delta's default of the first 32 columns. Statistics cost time on every
    write, so tables keep them only where a reader can skip files with them. `merge_schema`
    lets a release add columns to a table an earlier release created.
    """
    if stats_columns is not None:
        _create_if_missing(df, ref, stats_columns)
    _replace(df, ref, run_date_predicate(run_date), partition_by=RUN_DATE, merge_schema=merge_schema)


def _create_if_missing(df: DataFrame, ref: TableRef, stats_columns: list[str]) -> None:
    spark = df.sparkSession
    if exists(spark, ref):
        return
    builder = DeltaTable.createIfNotExists(spark)
    builder = builder.tableName(ref.name) if ref.name else builder.location(ref.path)
    builder = builder.addColumns(df.schema).partitionedBy(RUN_DATE)
    if stats_columns:
        builder = builder.property("delta.dataSkippingStatsColumns", ",".join(stats_columns))
    else:
        builder = builder.property("delta.dataSkippingNumIndexedCols", "0")
    try:
        builder.execute()
    except Exception as exc:
        if not _is_write_conflict(exc) and not exists(spark, ref):
            raise
        # Another run created it first: its table is the one we write into.


_TOKEN = re.compile(r"^[A-Za-z0-9_.:-]+$")


def replace_key(df: DataFrame, ref: TableRef, column: str, value: str, merge_schema: bool = False) -> None:
    """Atomically replace the rows whose `column` equals `value` (a version-like token)."""
    if not _TOKEN.match(value) or not _IDENTIFIER.match(column):
        raise ArgumentError(f"refusing to build a predicate from {column!r} = {value!r}")
    _replace(df, ref, f"{column} = '{value}'", partition_by=None, merge_schema=merge_schema)


def _replace(df: DataFrame, ref: TableRef, predicate: str, partition_by: str | None, merge_schema: bool = False) -> None:
    writer = df.write.format("delta").mode("overwrite").option("replaceWhere", predicate)
    if merge_schema:
        writer = writer.option("mergeSchema", "true")
    if partition_by:
        writer = writer.partitionBy(partition_by)
    try:
        if ref.name:
            writer.saveAsTable(ref.name)
        else:
            writer.save(ref.path)
    except Exception as exc:
        if not _is_write_conflict(exc):
            raise
        # Delta's optimistic concurrency: the other writer's commit stands whole, ours is not applied.
        raise ConcurrentRunError(
            f"another run wrote {ref} where {predicate} at the same time; this run's write was not applied "
            f"({type(exc).__name__}); re-run it once the other has finished"
        ) from None


def _is_write_conflict(exc: BaseException) -> bool:
    """Delta's concurrent-modification errors, whether converted to Python or still a Java error."""
    if isinstance(exc, DeltaConcurrentModificationException):
        return True
    java = getattr(exc, "java_exception", None)
    while java is not None:
        if "io.delta.exceptions" in java.getClass().getName() or "Concurrent" in java.getClass().getSimpleName():
            return True
        java = java.getCause()
    return False


def is_write_conflict(exc: BaseException) -> bool:
    """Whether `exc` is Delta telling a writer that another commit won (the caller may retry)."""
    return _is_write_conflict(exc)


def append(df: DataFrame, ref: TableRef) -> None:
    writer = df.write.format("delta").mode("append")
    if ref.name:
        writer.saveAsTable(ref.name)
    else:
        writer.save(ref.path)


def latest_version(spark: SparkSession, ref: TableRef) -> int:
    table = DeltaTable.forName(spark, ref.name) if ref.name else DeltaTable.forPath(spark, ref.path)
    return int(table.history(1).select("version").first()[0])
