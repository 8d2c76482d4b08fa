"""Keeping a Delta table small over years of nights: retention properties, compaction, VACUUM.

Every night adds small files to most tables (a row per night in `nights`, two commits per run in
`runs`, a file or two per night in `segment_shares`, ...) and every rewrite leaves the old files
behind for time travel. Compaction (`OPTIMIZE`) bin-packs the small files of each partition;
`VACUUM` deletes the files no version younger than the retention needs. Neither changes a row:
OPTIMIZE commits with no data change, so the change feed and the tables' contents stay as they were.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Iterator

from pyspark.sql import SparkSession

from segmentation.core.config import MaintainConfig
from segmentation.io import tables

# What maintenance commits: none of them changes a row.
MAINTENANCE_OPERATIONS = frozenset({"OPTIMIZE", "VACUUM START", "VACUUM END", "SET TBLPROPERTIES"})
_LISTING_PARALLELISM = "spark.sql.sources.parallelPartitionDiscovery.parallelism"


def retention_properties(m: MaintainConfig) -> dict[str, str]:
    """The table properties every table gets: how long the log and the removed files are kept."""
    return {
        "delta.logRetentionDuration": f"interval {m.log_retention_days} days",
        "delta.deletedFileRetentionDuration": f"interval {m.vacuum_retention_hours} hours",
    }


def default_properties(m: MaintainConfig) -> dict[str, str]:
    """The session settings that give every table Delta creates these properties from its first commit."""
    return {f"spark.databricks.delta.properties.defaults.{key.removeprefix('delta.')}": value
            for key, value in retention_properties(m).items()}


@dataclass
class TableFigures:
    """What maintenance did to one table."""

    table: str
    files_before: int = 0
    bytes_before: int = 0
    files_after: int = 0
    bytes_after: int = 0
    files_compacted: int = 0  # small files OPTIMIZE replaced
    files_written: int = 0  # the files it replaced them with
    files_vacuumed: int = 0
    bytes_vacuumed: int = 0
    version_before: int = 0
    version_after: int = 0
    properties_set: list[str] = field(default_factory=list)
    skipped: str = ""  # why the table was left alone (another run committed meanwhile)

    def line(self) -> str:
        if self.skipped:
            return f"table={self.table} skipped: {self.skipped}"
        return (f"table={self.table} files_before={self.files_before} files_after={self.files_after} "
                f"bytes_before={self.bytes_before} bytes_after={self.bytes_after} compacted={self.files_compacted}"
                f"->{self.files_written} vacuumed_files={self.files_vacuumed} vacuumed_bytes={self.bytes_vacuumed}"
                + (f" properties_set={','.join(self.properties_set)}" if self.properties_set else ""))


def _detail(spark: SparkSession, ref: tables.TableRef) -> tuple[int, int]:
    row = tables.delta_table(spark, ref).detail().select("numFiles", "sizeInBytes").first()
    return int(row["numFiles"] or 0), int(row["sizeInBytes"] or 0)


def set_properties(spark: SparkSession, ref: tables.TableRef, properties: dict[str, str]) -> list[str]:
    """Sets the properties a table lacks (one ALTER TABLE); returns their names."""
    current = tables.delta_table(spark, ref).detail().select("properties").first()[0] or {}
    missing = {k: v for k, v in properties.items() if current.get(k) != v}
    if missing:
        settings = ", ".join(f"'{k}' = '{v}'" for k, v in missing.items())
        name = tables.check_identifier(ref.name) if ref.name else f"delta.`{ref.path}`"
        spark.sql(f"ALTER TABLE {name} SET TBLPROPERTIES ({settings})")
    return sorted(missing)


@contextlib.contextmanager
def _listing_parallelism(spark: SparkSession, tasks: int) -> Iterator[None]:
    """VACUUM lists files in as many tasks as this session setting says; put back afterwards."""
    before = spark.conf.get(_LISTING_PARALLELISM, None)
    spark.conf.set(_LISTING_PARALLELISM, str(tasks))
    try:
        yield
    finally:
        if before is None:
            spark.conf.unset(_LISTING_PARALLELISM)
        else:
            spark.conf.set(_LISTING_PARALLELISM, before)


def maintain_table(spark: SparkSession, ref: tables.TableRef, m: MaintainConfig) -> TableFigures:
    """Retention properties, then OPTIMIZE, then VACUUM with `m.vacuum_retention_hours`.

    A write conflict (a night committed to the table meanwhile) leaves the table for the next run.
    """
    figures = TableFigures(str(ref))
    figures.files_before, figures.bytes_before = _detail(spark, ref)
    figures.version_before = tables.latest_version(spark, ref)
    try:
        figures.properties_set = set_properties(spark, ref, retention_properties(m))
        if m.compact:
            metrics = tables.delta_table(spark, ref).optimize().executeCompaction().first()["metrics"]
            figures.files_compacted, figures.files_written = int(metrics["numFilesRemoved"]), int(metrics["numFilesAdded"])
        if m.vacuum:
            with _listing_parallelism(spark, m.listing_parallelism):
                # A fresh handle: the table's retention property, just set, is what Delta checks against.
                tables.delta_table(spark, ref).vacuum(m.vacuum_retention_hours)
            figures.files_vacuumed, figures.bytes_vacuumed = _vacuumed(spark, ref)
    except Exception as exc:
        if not tables.is_write_conflict(exc):
            raise
        figures.skipped = f"another run committed to it meanwhile ({type(exc).__name__}); the next maintain does it"
    figures.files_after, figures.bytes_after = _detail(spark, ref)
    figures.version_after = tables.latest_version(spark, ref)
    return figures


def _vacuumed(spark: SparkSession, ref: tables.TableRef) -> tuple[int, int]:
    """Files and bytes the last VACUUM deleted, from its START and END commits (0, 0 if not logged)."""
    files = size = 0
    for commit in tables.delta_table(spark, ref).history(4).select("operation", "operationMetrics").collect():
        metrics = commit["operationMetrics"] or {}
        if commit["operation"] == "VACUUM END" and not files:
            files = int(metrics.get("numDeletedFiles", 0))
        elif commit["operation"] == "VACUUM START":
            size = int(metrics.get("sizeOfDataToDelete", 0))
            break
    return files, size


def only_maintenance_since(spark: SparkSession, ref: tables.TableRef, version: int) -> bool:
    """Whether every commit after `version` is maintenance's: the rows are those of `version`."""
    later = (tables.delta_table(spark, ref).history().where(f"version > {int(version)}")
             .select("operation").collect())  # the handful of commits since the version
    return all(r["operation"] in MAINTENANCE_OPERATIONS for r in later)
