"""The `nights` table: which nights are published, so a reader never sees half a night.

A run marks its night `PUBLISHING` before it writes `segments`, and `PUBLISHED` once every
downstream table holds the night. Readers (and every later night: the guard, migrations, drift,
`segments_current`) take only `PUBLISHED` nights. A night left `PUBLISHING` by a run that died
is set aside by the next run of any date (`downstream.publish.settle`). One small row per night,
in one unpartitioned table.
"""

from __future__ import annotations

import datetime as dt
import time

from pyspark.sql import Row, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import DateType, LongType, StringType, StructField, StructType, TimestampType

from segmentation.core.columns import RUN_DATE
from segmentation.core.config import Config
from segmentation.core.errors import ConcurrentRunError
from segmentation.io import tables
from segmentation.io.rows import row

PUBLISHING, PUBLISHED = "PUBLISHING", "PUBLISHED"

NIGHTS_SCHEMA = StructType(
    [
        StructField(RUN_DATE, DateType(), False),
        StructField("status", StringType(), False),  # PUBLISHING | PUBLISHED
        StructField("run_id", StringType(), True),  # the run that wrote it (null: published before this table)
        StructField("write_tag", StringType(), True),  # the commits' userMetadata, to put the night back
        StructField("model_version", StringType(), True),
        StructField("customers", LongType(), True),  # rows in `segments` for the night
        StructField("current_version", LongType(), True),  # segments_current's version once the night was applied
        # audience_members' version once the night was applied (null: no audiences, or a night before
        # this column): the next night applies its audience events to that table instead of replaying them all.
        StructField("members_version", LongType(), True),
        StructField("started_at", TimestampType(), True),
        StructField("published_at", TimestampType(), True),  # null while PUBLISHING
    ]
)


def ref(cfg: Config) -> tables.TableRef:
    return tables.table_ref(cfg.tables, cfg.tables.nights)


def _segments_dates(spark: SparkSession, cfg: Config) -> list[dt.date]:
    segments = tables.table_ref(cfg.tables, cfg.tables.segments)
    if not tables.exists(spark, segments):
        return []
    return sorted(r[0] for r in tables.read_delta(spark, segments).select(RUN_DATE).distinct().collect())


def _ensure(spark: SparkSession, cfg: Config) -> None:
    """Creates the table; a lake from before it existed gets every night in `segments` as PUBLISHED."""
    if tables.exists(spark, ref(cfg)):
        return
    seeded = [row(NIGHTS_SCHEMA, run_date=d, status=PUBLISHED, run_id=None, write_tag=None, model_version=None,
                  customers=None, current_version=None, members_version=None, started_at=None, published_at=None)
              for d in _segments_dates(spark, cfg)]
    try:
        tables.append(spark.createDataFrame(seeded, NIGHTS_SCHEMA), ref(cfg))
    except Exception:  # noqa: BLE001 - another run created it first: use theirs
        if not tables.exists(spark, ref(cfg)):
            raise


def all_nights(spark: SparkSession, cfg: Config) -> list[Row]:
    """Every row, oldest night first (one per night: a few hundred rows a year)."""
    if not tables.exists(spark, ref(cfg)):
        return [Row(**row(NIGHTS_SCHEMA, run_date=d, status=PUBLISHED, run_id=None, write_tag=None,
                          model_version=None, customers=None, current_version=None, members_version=None,
                          started_at=None, published_at=None))
                for d in _segments_dates(spark, cfg)]
    return sorted(tables.read_delta(spark, ref(cfg)).collect(), key=lambda r: r[RUN_DATE])


def published(spark: SparkSession, cfg: Config) -> list[dt.date]:
    """The published nights, oldest first."""
    return [r[RUN_DATE] for r in all_nights(spark, cfg) if r["status"] == PUBLISHED]


def get(spark: SparkSession, cfg: Config, run_date: dt.date) -> Row | None:
    return next((r for r in all_nights(spark, cfg) if r[RUN_DATE] == run_date), None)


def members_version(night: Row | None) -> int | None:
    """The night's `members_version`; None also for a row of a table from before the column."""
    return night.asDict().get("members_version") if night is not None else None


_ATTEMPTS = 8


def _retried(write) -> None:
    """Runs `write`, again when another night's run committed to the table first: every write
    here touches one night's row, so retrying it on the newer table is safe."""
    for attempt in range(1, _ATTEMPTS + 1):
        try:
            return write()
        except ConcurrentRunError:
            if attempt == _ATTEMPTS:
                raise
        except Exception as exc:
            if attempt == _ATTEMPTS or not tables.is_write_conflict(exc):
                raise
        time.sleep(0.2 * attempt)


def _write(spark: SparkSession, cfg: Config, record: dict) -> None:
    frame = spark.createDataFrame([record], NIGHTS_SCHEMA)
    # mergeSchema: a table from before members_version gains it (its old rows null there).
    _retried(lambda: tables.replace_key(frame, ref(cfg), RUN_DATE, record[RUN_DATE].isoformat(), merge_schema=True))


def begin(spark: SparkSession, cfg: Config, run_date: dt.date, run_id: str | None, tag: str,
          started_at: dt.datetime) -> None:
    """The night is being written: readers stop taking it until it is published again."""
    _ensure(spark, cfg)
    _write(spark, cfg, row(NIGHTS_SCHEMA, run_date=run_date, status=PUBLISHING, run_id=run_id, write_tag=tag,
                           model_version=None, customers=None, current_version=None, members_version=None,
                           started_at=started_at, published_at=None))


def publish(spark: SparkSession, cfg: Config, run_date: dt.date, model_version: str | None, customers: int,
            current_version: int | None, published_at: dt.datetime, run_id: str | None = None,
            tag: str | None = None, started_at: dt.datetime | None = None, members_version: int | None = None) -> None:
    """The night is whole: every table holds it."""
    _ensure(spark, cfg)
    _write(spark, cfg, row(NIGHTS_SCHEMA, run_date=run_date, status=PUBLISHED, run_id=run_id, write_tag=tag,
                           model_version=model_version, customers=customers, current_version=current_version,
                           members_version=members_version, started_at=started_at, published_at=published_at))


def remove(spark: SparkSession, cfg: Config, run_date: dt.date) -> None:
    """The night was set aside and had never been published: it is no night at all."""
    if tables.exists(spark, ref(cfg)):
        _retried(lambda: tables.delta_table(spark, ref(cfg)).delete(F.col(RUN_DATE) == F.lit(run_date)))


# The table whose version each night records, by the column that records it.
VERSION_COLUMNS = {"segments_current": "current_version", "audience_members": "members_version"}


def move_version(spark: SparkSession, cfg: Config, table: str, old: int, new: int) -> None:
    """`table` (a VERSION_COLUMNS key) went from `old` to `new` with the same rows as far as the
    nights are concerned (maintenance, or a customer forgotten everywhere): the night that held it
    at `old` holds it at `new`, so the next night still applies only its own changes."""
    column = VERSION_COLUMNS[table]
    if tables.exists(spark, ref(cfg)) and column in tables.read_delta(spark, ref(cfg)).columns:
        tables.update(spark, ref(cfg), F.col(column) == F.lit(old), {column: F.lit(new)})
