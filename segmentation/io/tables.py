"""All reads and writes of tables: the raw input and the Delta tables the product owns."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import os
import re
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from delta.exceptions import DeltaConcurrentModificationException
from delta.tables import DeltaTable
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StringType, StructField, StructType
from pyspark.sql.utils import AnalysisException

from segmentation.core import logs
from segmentation.core.columns import CORRUPT_COLUMN, RAW_SCHEMA, RUN_DATE
from segmentation.core.config import TABLE_KEYS, TablesConfig
from segmentation.core.errors import (
    ArgumentError,
    ConcurrentRunError,
    FeaturesNotFoundError,
    InputError,
    ProductTableError,
)

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


# What Spark's CSV reader decompresses by the file's ending (Hadoop's codecs).
CSV_SUFFIXES = (".csv", ".csv.gz", ".csv.bz2", ".csv.deflate", ".csv.zst", ".csv.lz4", ".csv.snappy")


def input_kind(source: str, fmt: str) -> str:
    if fmt != "auto":
        return fmt
    lowered = source.lower().rstrip("/")
    if lowered.endswith(CSV_SUFFIXES):
        return "csv"
    if lowered.endswith(".parquet"):
        return "parquet"
    if "/" in source or "://" in source or lowered.endswith(_PATH_SUFFIXES):
        if "://" not in source and Path(source, "_delta_log").is_dir():
            return "delta"
        if "://" not in source and Path(source).is_dir():
            return "csv" if _holds_csv(Path(source)) else "parquet"
        return "delta"
    return "table"


def _holds_csv(folder: Path) -> bool:
    """A local folder (not Delta) whose data files are CSV, compressed or not."""
    names = [p.name.lower() for p in folder.rglob("*") if p.is_file() and not _hidden(p.relative_to(folder).parts)]
    return bool(names) and all(n.endswith(CSV_SUFFIXES) for n in names)


def _hidden(parts) -> bool:
    # Spark's file listing skips names starting with "_" or "." (_SUCCESS, .crc files, _delta_log).
    return any(part.startswith(("_", ".")) for part in parts)


def csv_schema(header: list[str]) -> StructType:
    """The explicit schema for a CSV with this header: contract columns typed, extras as text.

    Built in the file's own column order, so columns are matched by name, and with a column
    for Spark's corrupt-record handling, which keeps a malformed line whole.
    """
    types = {f.name: f.dataType for f in RAW_SCHEMA.fields}
    fields = [StructField(name, types.get(name, StringType()), True) for name in header]
    return StructType(fields + [StructField(CORRUPT_COLUMN, StringType(), True)])


def _parse_header(line: str) -> list[str]:
    line = line.lstrip("\ufeff")  # a spreadsheet's byte-order mark
    return [name.strip().strip('"') for name in next(csv.reader([line]))]


def _data_files(spark: SparkSession, source: str) -> list:
    """The input's data files (Hadoop `FileStatus`es, sorted by path) as Spark's reader sees them:
    the files a path or glob names, and the visible files under the folders it names."""
    jvm = spark.sparkContext._jvm
    hadoop_path = jvm.org.apache.hadoop.fs.Path(source)
    fs = hadoop_path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
    statuses = fs.globStatus(hadoop_path)
    if statuses is None:
        raise InputError(f"input not found: {source}")
    found = []
    for status in statuses:
        if not status.isDirectory():
            found.append(status)
            continue
        root = str(status.getPath().toUri().getPath())
        listing = fs.listFiles(status.getPath(), True)
        while listing.hasNext():
            child = listing.next()
            relative = str(child.getPath().toUri().getPath())[len(root):].strip("/")
            if not _hidden(relative.split("/")):
                found.append(child)
    return sorted(found, key=lambda st: str(st.getPath()))


def csv_headers(spark: SparkSession, source: str) -> dict[str, list[str]]:
    """Each CSV file's own header, by file: the first line of each, read on the driver.

    Spark takes a folder's header from one file and applies the schema by position to all, so
    a file whose columns come in another order would be misread. Only the first line of each
    file is read (through Hadoop's file system and codecs, so `s3a://` and `.csv.gz` work too);
    files with no line at all are left out, as Spark reads no rows from them.
    """
    jvm = spark.sparkContext._jvm
    conf = spark.sparkContext._jsc.hadoopConfiguration()
    codecs = jvm.org.apache.hadoop.io.compress.CompressionCodecFactory(conf)
    headers: dict[str, list[str]] = {}
    for status in _data_files(spark, source):
        path = status.getPath()
        stream = path.getFileSystem(conf).open(path)
        codec = codecs.getCodec(path)
        if codec is not None:
            stream = codec.createInputStream(stream)
        reader = jvm.java.io.BufferedReader(jvm.java.io.InputStreamReader(stream, "UTF-8"))
        try:
            line = reader.readLine()
        finally:
            reader.close()
        if line is None:
            continue
        if not line.strip():
            raise InputError(f"input {source}: {path} has an empty first line where its header should be")
        headers[str(path)] = _parse_header(line)
    return headers


def input_version(spark: SparkSession, source: str, fmt: str = "auto") -> str | None:
    """Which state of the input a run reads: `delta:<version>` for a Delta table, else
    `files:sha256:<hex>` over the sorted (path, size, modification time) of its data files.

    The file digest reads no data: a digest of the contents would read the whole input a second
    time, and a rewrite, an added or a removed file changes size or time (or the list) anyway.
    None for a metastore table that is not Delta (nothing cheap identifies its state).
    """
    kind = input_kind(source, fmt)
    if kind == "table":
        ref = TableRef(name=check_identifier(source))
        try:
            return f"delta:{latest_version(spark, ref)}"
        except Exception:  # noqa: BLE001 - not a Delta table: no version to name
            return None
    if "://" not in source and not Path(source).exists():
        raise InputError(f"input not found: {source}")
    if kind == "delta":
        try:
            return f"delta:{latest_version(spark, TableRef(path=source))}"
        except AnalysisException as exc:
            raise InputError(f"cannot read input {source} as delta: {exc.getMessage()}") from None
    digest = hashlib.sha256()
    for status in _data_files(spark, source):
        digest.update(f"{status.getPath()}\t{status.getLen()}\t{status.getModificationTime()}\n".encode())
    return f"files:sha256:{digest.hexdigest()}"


def _delta_version(version: str | None) -> int | None:
    return int(version.split(":", 1)[1]) if version and version.startswith("delta:") else None


def _read_csv(spark: SparkSession, source: str) -> DataFrame:
    """The CSV input, every file read by its own header's names.

    Files whose headers name the same columns in another order are read apart (each with the
    schema in its own order) and put together by name; files naming other columns are refused.
    """
    headers = csv_headers(spark, source)
    if not headers:
        raise InputError(f"input {source} is empty (no header line)")
    (first_file, first), *_ = headers.items()
    orders: dict[tuple[str, ...], list[str]] = {}
    for path, header in headers.items():
        if sorted(header) != sorted(first):
            raise InputError(
                f"input {source}: {path} has the header {','.join(header)} but {first_file} has "
                f"{','.join(first)}; every file must name the same columns"
            )
        orders.setdefault(tuple(header), []).append(path)

    def read(paths, header) -> DataFrame:
        return spark.read.csv(paths, schema=csv_schema(list(header)), header=True, mode="PERMISSIVE",
                              columnNameOfCorruptRecord=CORRUPT_COLUMN)

    if len(orders) == 1:
        return read(source, first)  # one column order: read as given (partition folders and all)
    frames = [read(paths, header) for header, paths in orders.items()]
    out = frames[0]
    for frame in frames[1:]:
        out = out.unionByName(frame)
    return out


def read_raw(spark: SparkSession, source: str, fmt: str = "auto", version: str | None = None) -> DataFrame:
    """The raw customer table; CSV is read file by file by header name, with an explicit schema.

    `version` (from `input_version`): a Delta input is read at that version, so what is read is
    what is recorded.
    """
    kind = input_kind(source, fmt)
    if kind != "table" and "://" not in source and not Path(source).exists():
        raise InputError(f"input not found: {source}")
    pinned = _delta_version(version)
    try:
        if kind == "csv":
            return _read_csv(spark, source)
        if kind == "table":
            ref = TableRef(name=check_identifier(source))
            return read_version(spark, ref, pinned) if pinned is not None else spark.read.table(ref.name)
        if kind == "delta" and pinned is not None:
            return read_version(spark, TableRef(path=source), pinned)
        return spark.read.format(kind).load(source)
    except AnalysisException as exc:
        raise InputError(f"cannot read input {source} as {kind}: {exc.getMessage()}") from None


# ---------------------------------------------------------------------------------------------
# Delta tables


def _normal(path: str) -> str:
    return path.rstrip("/") if "://" in path else os.path.realpath(path)


def _within(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def refuse_product_path(spark: SparkSession, tables: TablesConfig, path: str, own_tag: str = "") -> None:
    """A named error if writing `path` would overwrite what the product owns: a configured table,
    anything under `tables.root` or `tables.models_dir`, a folder holding them, or any Delta table
    (but one whose latest commit carries `own_tag`, the writer's own earlier output)."""
    target = _normal(path)
    owned = {f"tables.{key}": os.path.join(tables.root, getattr(tables, key)) for key in TABLE_KEYS
             if not tables.schema}
    owned.update({"tables.root": tables.root, "tables.models_dir": tables.models_dir})
    for key, folder in owned.items():
        folder = _normal(folder)
        if _within(target, folder) or _within(folder, target):
            raise ProductTableError(
                f"refusing to write {path}: it is {'inside' if _within(target, folder) else 'a folder holding'} "
                f"{key} ({folder}), which the product owns; write test data elsewhere"
            )
    if DeltaTable.isDeltaTable(spark, path):
        if own_tag and DeltaTable.forPath(spark, path).history(1).first()["userMetadata"] == own_tag:
            return
        raise ProductTableError(f"refusing to write {path}: it is an existing Delta table; write test data elsewhere")


def exists(spark: SparkSession, ref: TableRef) -> bool:
    if ref.name:
        return spark.catalog.tableExists(ref.name)
    return DeltaTable.isDeltaTable(spark, ref.path)


def read_delta(spark: SparkSession, ref: TableRef) -> DataFrame:
    if ref.name:
        return spark.read.table(ref.name)
    return spark.read.format("delta").load(ref.path)


def read_run(spark: SparkSession, ref: TableRef, run_date: dt.date, version: int | None = None) -> DataFrame:
    """One night's partition of a run_date-keyed table (at Delta `version` if given); a named
    error when there is none."""
    if not exists(spark, ref):
        raise FeaturesNotFoundError(f"table {ref} does not exist yet: run the features job first")
    table = read_delta(spark, ref) if version is None else read_version(spark, ref, version)
    return table.where(F.col(RUN_DATE) == F.lit(run_date))


def holds_run(spark: SparkSession, ref: TableRef, run_date: dt.date) -> bool | None:
    """Whether the table has rows for `run_date` (None: there is no table), from the files its
    partition holds in the log (Delta writes no empty file), without a Spark job: a clean night
    can leave a table it has nothing to empty untouched."""
    if not exists(spark, ref):
        return None
    return bool(read_delta(spark, ref).where(F.col(RUN_DATE) == F.lit(run_date)).inputFiles())


def replace_run(
    df: DataFrame, ref: TableRef, run_date: dt.date, stats_columns: list[str] | None = None, tag: str | None = None,
    merge_schema: bool = False,
) -> None:
    """Atomically replace one run_date of a table partitioned by run_date (creating it if new).

    `stats_columns` names the columns a new table keeps file statistics on ([]: row counts
    only); None keeps Delta's default of the first 32 columns. Statistics cost time on every
    write, so tables keep them only where a reader can skip files with them. `tag` becomes
    the commit's `userMetadata` (in the table's history), which `restore_run` looks for.
    `merge_schema` lets a release add columns to a table an earlier release created.
    """
    if stats_columns is not None:
        _create_if_missing(df, ref, stats_columns)
    _replace(df, ref, run_date_predicate(run_date), partition_by=RUN_DATE, tag=tag, merge_schema=merge_schema)


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
        if not is_write_conflict(exc) and not exists(spark, ref):
            raise
        # Another run created it first: its table is the one we write into.


_TOKEN = re.compile(r"^[A-Za-z0-9_.:-]+$")


def replace_key(df: DataFrame, ref: TableRef, column: str, value: str, merge_schema: bool = False) -> None:
    """Atomically replace the rows whose `column` equals `value` (a version-like token)."""
    if not _TOKEN.match(value) or not _IDENTIFIER.match(column):
        raise ArgumentError(f"refusing to build a predicate from {column!r} = {value!r}")
    _replace(df, ref, f"{column} = '{value}'", partition_by=None, merge_schema=merge_schema)


def _replace(
    df: DataFrame, ref: TableRef, predicate: str, partition_by: str | None, tag: str | None = None,
    merge_schema: bool = False,
) -> None:
    writer = df.write.format("delta").mode("overwrite").option("replaceWhere", predicate)
    if tag:
        writer = writer.option("userMetadata", tag)
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
        if not is_write_conflict(exc):
            raise
        # Delta's optimistic concurrency: the other writer's commit stands whole, ours is not applied.
        raise ConcurrentRunError(
            f"another run wrote {ref} where {predicate} at the same time; this run's write was not applied "
            f"({type(exc).__name__}); re-run it once the other has finished"
        ) from None


# Every Delta conflict (ConcurrentAppendException, MetadataChangedException, ...) descends from this
# class, in both its io.delta.exceptions and its internal names. Its own parent,
# java.util.ConcurrentModificationException, is thrown by plain Java collections and is no conflict.
_DELTA_CONFLICT_CLASS = "org.apache.spark.sql.delta.DeltaConcurrentModificationException"


def is_write_conflict(exc: BaseException) -> bool:
    """Delta's concurrent-modification errors, whether converted to Python or still a Java error."""
    if isinstance(exc, DeltaConcurrentModificationException):
        return True
    java = getattr(exc, "java_exception", None)
    seen = 0
    while java is not None and seen < 20:  # the cause chain; bounded in case it loops
        cls = java.getClass()
        while cls is not None:
            if cls.getName() == _DELTA_CONFLICT_CLASS:
                return True
            cls = cls.getSuperclass()
        java, seen = java.getCause(), seen + 1
    return False


# An update reads the whole (unpartitioned) table, so another job's append committed meanwhile is a
# conflict for Delta; the update is then simply run again on the new version.
_UPDATE_ATTEMPTS = 8


def update(spark: SparkSession, ref: TableRef, condition: Column, values: dict[str, Column]) -> None:
    """Sets `values` on the rows matching `condition`, retried on a write conflict."""
    for attempt in range(1, _UPDATE_ATTEMPTS + 1):
        try:
            delta_table(spark, ref).update(condition=condition, set=values)
            return
        except Exception as exc:
            if attempt == _UPDATE_ATTEMPTS or not is_write_conflict(exc):
                raise
            time.sleep(0.2 * attempt)


def delete_keys(spark: SparkSession, ref: TableRef, keys: DataFrame, column: str) -> int:
    """Deletes the rows whose `column` is among `keys`' (distinct) values; returns how many.

    A MERGE with the keys, not `column IN (...)` text: the list may be long, and it is never
    collected. Retried on a write conflict, as `update` is.
    """
    for attempt in range(1, _UPDATE_ATTEMPTS + 1):
        try:
            table = delta_table(spark, ref)
            before = latest_version(spark, ref)
            table.alias("t").merge(keys.alias("k"), f"t.`{column}` = k.`{column}`").whenMatchedDelete().execute()
            commit = table.history(1).select("version", "operationMetrics").first()
            if int(commit["version"]) == before:
                return 0  # nothing matched, nothing committed
            return int((commit["operationMetrics"] or {}).get("numTargetRowsDeleted", 0))
        except Exception as exc:
            if attempt == _UPDATE_ATTEMPTS or not is_write_conflict(exc):
                raise
            time.sleep(0.2 * attempt)
    raise AssertionError("unreachable")


def append(df: DataFrame, ref: TableRef, merge_schema: bool = False) -> None:
    writer = df.write.format("delta").mode("append")
    if merge_schema:
        writer = writer.option("mergeSchema", "true")
    if ref.name:
        writer.saveAsTable(ref.name)
    else:
        writer.save(ref.path)


def delta_table(spark: SparkSession, ref: TableRef) -> DeltaTable:
    return DeltaTable.forName(spark, ref.name) if ref.name else DeltaTable.forPath(spark, ref.path)


def latest_version(spark: SparkSession, ref: TableRef) -> int:
    return int(delta_table(spark, ref).history(1).select("version").first()[0])


def read_version(spark: SparkSession, ref: TableRef, version: int) -> DataFrame:
    """The table as it was at `version` (Delta time travel)."""
    if ref.name:
        return spark.sql(f"SELECT * FROM {check_identifier(ref.name)} VERSION AS OF {int(version)}")
    return spark.read.format("delta").option("versionAsOf", int(version)).load(ref.path)


# A run's commit is found among the table's latest commits; other runs may have committed since.
_HISTORY_LOOKBACK = 20


def written_rows(spark: SparkSession, ref: TableRef, run_date: dt.date, tag: str) -> int:
    """Rows the latest commit tagged `tag` wrote (Delta's `operationMetrics.numOutputRows`).

    The commit's own metric, so the table is not read again; `run_date`'s rows are counted
    when the metric is missing (metrics turned off, or the commit not found among the latest).
    """
    history = delta_table(spark, ref).history(_HISTORY_LOOKBACK).select("userMetadata", "operationMetrics")
    for commit in history.collect():  # newest first; one small row per commit
        if commit["userMetadata"] != tag:
            continue
        metrics = commit["operationMetrics"] or {}
        if "numOutputRows" in metrics:
            return int(metrics["numOutputRows"])
        if metrics.get("numFiles") == "0":  # Delta leaves the row metric out when no file was added
            return 0
        break
    return read_run(spark, ref, run_date).count()


def restore_run(spark: SparkSession, ref: TableRef, run_date: dt.date, tag: str) -> bool:
    """Puts `run_date`'s rows back as they were before the first commit tagged `tag`.

    Writes made with `tag` carry it as Delta's commit `userMetadata`; the rows come back from
    the version before the first of them (time travel), and only that date's rows are
    rewritten, so other nights committed meanwhile by other runs stay. False if `tag` never
    committed to the table (nothing to put back).
    """
    if not exists(spark, ref):
        return False
    ours = [r["version"] for r in delta_table(spark, ref).history().select("version", "userMetadata").collect()
            if r["userMetadata"] == tag]  # the table's commit log: one small row per commit
    if not ours:
        return False
    first = min(ours)
    predicate = run_date_predicate(run_date)
    if first == 0:  # the table began with this run's write: the night had no rows before it
        delta_table(spark, ref).delete(predicate)
    else:
        before = read_version(spark, ref, first - 1).where(F.col(RUN_DATE) == F.lit(run_date))
        _replace(before, ref, predicate, partition_by=RUN_DATE, tag=f"{tag}:restore")
    return True


def new_write_tag(stage: str) -> str:
    """Marks a run's commits (Delta `userMetadata`) so a failed check can put them back."""
    return f"segmentation-{stage}-{uuid.uuid4().hex}"


def restore_night(spark: SparkSession, log, refs: list[TableRef], run_date: dt.date, tag: str) -> None:
    """Puts back `run_date`'s rows of every table this run's writes (tagged `tag`) changed."""
    with logs.step(log, "restore the night's tables") as s:
        restored = [str(ref) for ref in refs if restore_run(spark, ref, run_date, tag)]
        s.detail = "tables=" + (",".join(restored) or "none")
