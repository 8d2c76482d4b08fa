"""Erasure: the listed customers removed from every product table that holds a CUST_ID.

The tables are found from the table registry (`TABLE_KEYS`), not listed here: a table added
later with a CUST_ID column is covered without a change. Each is a Delta DELETE (a MERGE with
the ids), so its earlier versions still hold the rows until the `maintain` job's VACUUM removes
their files after `maintain.vacuum_retention_hours` (docs/security.md, erasure).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from segmentation.core import logs
from segmentation.core.columns import ID_COLUMN
from segmentation.core.config import TABLE_KEYS, Config
from segmentation.core.errors import InputError
from segmentation.io import nights, tables


class IdsNotFoundError(InputError):
    """The file (or table) of customers to forget does not exist or holds no CUST_ID column."""


def read_ids(spark: SparkSession, source: str) -> DataFrame:
    """The distinct, non-null CUST_IDs of a CSV, Parquet or Delta path, or a table."""
    if not source:
        raise IdsNotFoundError("forget needs --ids PATH: a CSV, Parquet or Delta path, or a table, with a CUST_ID column")
    kind = tables.input_kind(source, "auto")
    if kind != "table" and "://" not in source and not Path(source).exists():
        raise IdsNotFoundError(f"forget --ids {source}: no such file or folder")
    try:
        df = tables.read_raw(spark, source, "auto")
    except InputError as exc:
        raise IdsNotFoundError(f"forget --ids {source}: {exc}") from None
    if ID_COLUMN not in df.columns:
        raise IdsNotFoundError(f"forget --ids {source}: no {ID_COLUMN} column (columns: {', '.join(df.columns)})")
    return df.select(F.col(ID_COLUMN).cast("string").alias(ID_COLUMN)).where(F.col(ID_COLUMN).isNotNull()).distinct()


def forget(spark: SparkSession, cfg: Config, source: str) -> dict[str, Any]:
    """Deletes the customers listed in `source` from every table with a CUST_ID; rows deleted per table."""
    log = logs.get("forget")
    ids = read_ids(spark, source).cache()
    try:
        listed = ids.count()
        deleted: dict[str, int] = {}
        for key in TABLE_KEYS:
            ref = tables.table_ref(cfg.tables, getattr(cfg.tables, key))
            if not tables.exists(spark, ref) or ID_COLUMN not in tables.read_delta(spark, ref).columns:
                continue
            with logs.step(log, f"forget in {key}") as s:
                before = tables.latest_version(spark, ref)
                s.rows = deleted[key] = tables.delete_keys(spark, ref, ids, ID_COLUMN) if listed else 0
                s.detail = f"table={ref}"
            if key in nights.VERSION_COLUMNS and deleted[key]:
                # The last published night held the table at `before`; it now holds it without
                # the forgotten customers, whose events the other tables lost too, so the next
                # night still applies only its own events instead of rebuilding or replaying.
                nights.move_version(spark, cfg, key, before, tables.latest_version(spark, ref))
    finally:
        ids.unpersist()
    log.info("forget: %d customers listed; rows deleted: %s", listed,
             " ".join(f"{k}={v}" for k, v in deleted.items()) or "none (no table holds a CUST_ID)")
    return {"rows_read": listed, "rows_written": 0, "deleted": deleted, "tables": sorted(deleted)}
