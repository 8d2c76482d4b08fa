"""The `runs` audit table: one row per job run, whatever ends it, with its row accounting.

A run writes its row twice: `RUNNING` when it starts, its final status when it ends
(`SUCCEEDED` or `FAILED`, from the job's `finally`). A row still `RUNNING` when the next run of
the same job and date starts belongs to a run that was killed outright; that next run marks it
`ABANDONED`, as the next run of any job does for a `RUNNING` row of any job and date started more
than `runs.stale_after_hours` ago. Statuses are upper case, as they always were in this table.
"""

from __future__ import annotations

import datetime as dt
import getpass
import hashlib
import json
import uuid
from typing import Any

from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import DateType, LongType, StringType, StructField, StructType, TimestampType

from segmentation.core import build, logs, redact
from segmentation.core.config import Config
from segmentation.io import tables
from segmentation.io.rows import row

RUNNING, SUCCEEDED, FAILED, ABANDONED = "RUNNING", "SUCCEEDED", "FAILED", "ABANDONED"
STATUSES = (RUNNING, SUCCEEDED, FAILED, ABANDONED)

RUNS_SCHEMA = StructType(
    [
        StructField("run_id", StringType(), False),
        StructField("run_date", DateType(), False),
        StructField("job", StringType(), False),
        StructField("started_at", TimestampType(), False),
        StructField("ended_at", TimestampType(), True),  # null while RUNNING, and for ABANDONED
        StructField("status", StringType(), False),
        StructField("rows_read", LongType(), True),
        StructField("rows_written", LongType(), True),
        StructField("rows_quarantined", LongType(), True),
        StructField("model_version", StringType(), True),
        StructField("error", StringType(), True),
        StructField("drift_status", StringType(), True),  # score and nightly: ok | drift
        StructField("registry_version", LongType(), True),  # the registered version scored, trained or promoted
        # Who ran what code with which settings on which input: written when the run starts, the
        # input's version when its stage has read it (`delta:<version>` or `files:sha256:<hex>`).
        StructField("user", StringType(), True),
        StructField("code_version", StringType(), True),
        StructField("config_digest", StringType(), True),  # sha256 of the resolved config, canonical JSON
        StructField("input_version", StringType(), True),
    ]
)


_MAX_ERROR_CHARS = 1000


def new_run_id() -> str:
    return uuid.uuid4().hex


def utc_now() -> dt.datetime:
    """An aware UTC instant: Spark stores it as this instant whatever the driver's time zone."""
    return dt.datetime.now(dt.timezone.utc)


def describe(error: BaseException) -> str:
    """`<class>: <first line>`; for an executor's error, the line naming the worker's exception."""
    text = str(error)
    detail = ""
    java = getattr(error, "java_exception", None)
    if java is not None:  # Py4JJavaError: its own first line is only "An error occurred while calling o12.save."
        try:
            detail = str(java.toString())
        except Exception:  # noqa: BLE001 - the JVM may be gone; fall back to the text
            detail = ""
    if not detail and "Traceback (most recent call last):" in text:
        # An executor's PythonException: the exception line after the last traceback.
        after = text.rsplit("Traceback (most recent call last):", 1)[1].splitlines()
        detail = next((line for line in after if line.strip() and not line.startswith(" ")), "")
    if not detail:
        detail = next((line.strip() for line in text.splitlines() if line.strip()), "")
    first = detail.strip().splitlines()[0] if detail.strip() else ""
    described = f"{type(error).__name__}: {first}" if first else type(error).__name__
    return redact.text(described)[:_MAX_ERROR_CHARS]  # a URI in an error may carry a password


def run_user(spark: SparkSession) -> str:
    """The user Spark runs as (`SPARK_USER`, else the OS user); the OS user if Spark cannot say."""
    try:
        return str(spark.sparkContext.sparkUser())
    except Exception:  # noqa: BLE001 - a shared cluster may not expose the SparkContext
        try:
            return getpass.getuser()
        except Exception:  # noqa: BLE001 - no login name (a container without a passwd entry)
            return "unknown"


def config_digest(cfg: Config) -> str:
    """sha256 of the resolved config as canonical JSON (sorted keys, no spaces), secrets' values
    left out: two runs with one digest ran with the same settings."""
    canonical = json.dumps(redact.tree(cfg.model_dump(mode="json")), sort_keys=True, separators=(",", ":"),
                           ensure_ascii=True, default=str)
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


def _audit_fields(spark: SparkSession, cfg: Config) -> dict[str, str]:
    return {"user": run_user(spark), "code_version": build.code_version(), "config_digest": config_digest(cfg)}


def start(spark: SparkSession, cfg: Config, run_id: str, run_date: dt.date, job: str, started_at: dt.datetime) -> None:
    """Marks runs that never finished as ABANDONED, then appends RUNNING: earlier runs of this job
    and date, and any run started more than `runs.stale_after_hours` before `started_at`."""
    ref = tables.table_ref(cfg.tables, cfg.tables.runs)
    if tables.exists(spark, ref):
        stale_before = started_at - dt.timedelta(hours=cfg.runs.stale_after_hours)
        _abandon_leftovers(spark, ref, run_id, run_date, job, stale_before)
    record = row(
        RUNS_SCHEMA, run_id=run_id, run_date=run_date, job=job, started_at=started_at, ended_at=None, status=RUNNING,
        rows_read=None, rows_written=None, rows_quarantined=None, model_version=None, error=None, drift_status=None,
        registry_version=None, input_version=None, **_audit_fields(spark, cfg),
    )
    # mergeSchema: a runs table from before drift_status, registry_version or the audit fields gains them.
    tables.append(spark.createDataFrame([record], RUNS_SCHEMA), ref, merge_schema=True)


def finish(
    spark: SparkSession, cfg: Config, run_id: str, run_date: dt.date, job: str, started_at: dt.datetime,
    counts: dict[str, Any] | None, error: BaseException | None, started: bool = True,
) -> None:
    """Writes the run's final status and the counts it got to over its RUNNING row.

    Without a RUNNING row (`started` false: writing it failed) the final row is appended.
    The final status replaces whatever the row says, ABANDONED included: a run that was
    still alive when another marked it has the last word.
    """
    counts = counts or {}
    values = {
        "ended_at": utc_now(),
        "status": FAILED if error else SUCCEEDED,
        "rows_read": counts.get("rows_read"),
        "rows_written": counts.get("rows_written"),
        "rows_quarantined": counts.get("rows_quarantined"),
        "model_version": counts.get("model_version") or None,
        "error": describe(error) if error else None,
        "drift_status": counts.get("drift_status"),
        "registry_version": counts.get("registry_version"),
        "input_version": counts.get("input_version"),
    }
    ref = tables.table_ref(cfg.tables, cfg.tables.runs)
    if not started:
        record = row(RUNS_SCHEMA, run_id=run_id, run_date=run_date, job=job, started_at=started_at, **values,
                     **_audit_fields(spark, cfg))
        tables.append(spark.createDataFrame([record], RUNS_SCHEMA), ref, merge_schema=True)
        return
    types = {f.name: f.dataType for f in RUNS_SCHEMA.fields}
    # An update, not a merge: measured at about half a merge's time on this one-row change.
    tables.update(spark, ref, F.col("run_id") == run_id,
                  {name: F.lit(value).cast(types[name]) for name, value in values.items()})


def _abandon_leftovers(spark: SparkSession, ref: tables.TableRef, run_id: str, run_date: dt.date, job: str,
                       stale_before: dt.datetime) -> None:
    log = logs.get(job)
    same_night = (F.col("job") == job) & (F.col("run_date") == F.lit(run_date))
    stale = F.col("started_at") < F.lit(stale_before).cast(TimestampType())
    leftover = (
        tables.read_delta(spark, ref)
        .where((F.col("status") == RUNNING) & (F.col("run_id") != run_id) & (same_night | stale))
        .select("run_id", "job", "run_date", "started_at")
        .collect()  # the unfinished runs: a handful at most
    )
    if not leftover:
        return
    for r in leftover:
        log.warning(
            "run %s of %s for %s, started at %s, never recorded an end (killed?): marking it %s",
            r["run_id"], r["job"], r["run_date"], r["started_at"], ABANDONED,
        )
    ids = [r["run_id"] for r in leftover]
    note = f"no final status: the run was killed or lost its driver; found by run {run_id} at {utc_now():%Y-%m-%dT%H:%M:%SZ}"
    # Only a row still RUNNING changes: a run that finishes meanwhile keeps its own status.
    tables.update(spark, ref, F.col("run_id").isin(ids) & (F.col("status") == RUNNING),
                  {"status": F.lit(ABANDONED), "error": F.lit(note)})


def status(spark: SparkSession, cfg: Config, run_id: str) -> str | None:
    """The run's status in the runs table; None if it has no row."""
    ref = tables.table_ref(cfg.tables, cfg.tables.runs)
    if not tables.exists(spark, ref):
        return None
    found = tables.read_delta(spark, ref).where(F.col("run_id") == run_id).select("status").first()
    return found["status"] if found else None


# The jobs that write a night's features (and record the input they read).
FEATURE_JOBS = ("features", "nightly", "train")


def last_input_version(spark: SparkSession, cfg: Config, run_date: dt.date) -> str | None:
    """The input version recorded by the latest successful run that wrote `run_date`'s features;
    None before any did (or in a runs table from before `input_version`)."""
    ref = tables.table_ref(cfg.tables, cfg.tables.runs)
    if not tables.exists(spark, ref):
        return None
    table = tables.read_delta(spark, ref)
    if "input_version" not in table.columns:
        return None
    found = (
        table.where((F.col("run_date") == F.lit(run_date)) & (F.col("status") == SUCCEEDED)
                    & F.col("job").isin(*FEATURE_JOBS) & F.col("input_version").isNotNull())
        .orderBy(F.col("ended_at").desc()).select("input_version").first()
    )
    return found["input_version"] if found else None
