"""What every job shares: its arguments, the config, the Spark session and the exit status."""

from __future__ import annotations

import argparse
import datetime as dt
import inspect
import logging
import os
import signal
import sys
import threading
import time
from importlib import resources
from pathlib import Path
from typing import Any, Callable

from segmentation.core import logs, redact
from segmentation.core.config import Config, load_config, resolve_path
from segmentation.core.errors import UNEXPECTED_EXIT_CODE, ConfigError, RunCancelled, SegmentationError
from segmentation.io import maintenance, runs
from segmentation.io.tables import CSV_SUFFIXES, parse_run_date

DELTA_EXTENSION = "io.delta.sql.DeltaSparkSessionExtension"
DELTA_CATALOG = "org.apache.spark.sql.delta.catalog.DeltaCatalog"
# Timestamps are stored as instants; the session's zone decides how Spark reads and shows them.
SESSION_TIME_ZONE = "UTC"


def parser(job: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=f"segmentation-{job}", description=f"Run the {job} job.")
    p.add_argument("--profile", action="append", default=None,
                   help="named overlay from conf/ (repeatable, applied in order; default: local)")
    p.add_argument("--config", action="append", default=[], type=Path,
                   help="another YAML overlay file, applied after the profiles (repeatable)")
    p.add_argument("--set", action="append", default=[], dest="overrides", metavar="KEY=VALUE",
                   help="override one config value, e.g. --set train.sample.max_rows=50000 (repeatable)")
    p.add_argument("--input", help="raw customer table: CSV, Parquet or Delta path, or a table name")
    p.add_argument("--run-date", default=None, help="YYYY-MM-DD (default: today's date in UTC)")
    p.add_argument("--conf-dir", type=Path, default=None, help="folder holding base.yaml and the profiles")
    return p


def reshape(p: argparse.ArgumentParser) -> None:
    """--reshape, for the jobs that train."""
    p.add_argument("--reshape", action="store_true",
                   help="choose the best segmentation even if it changes the champion's structure "
                        "(train.clustering.selection.reshape=true)")


def accept_night(p: argparse.ArgumentParser) -> None:
    """--accept-night, for the jobs that run the features stage."""
    p.add_argument("--accept-night", action="store_true",
                   help="take tonight's input even past a night-to-night guard threshold (guard.accept=true)")


def find_conf_dir(explicit: Path | None) -> Path:
    """The folder named by --conf-dir or SEGMENTATION_CONF_DIR, which must hold base.yaml;
    else conf/ of this checkout, where --files put it, or the copy packaged in the wheel."""
    named = [(f"--conf-dir {explicit}", explicit)] if explicit else []
    if os.environ.get("SEGMENTATION_CONF_DIR"):
        named.append((f"SEGMENTATION_CONF_DIR={os.environ['SEGMENTATION_CONF_DIR']}",
                      Path(os.environ["SEGMENTATION_CONF_DIR"])))
    if named:
        # A folder asked for by name is used or refused, never silently replaced by another.
        what, folder = named[0]
        if not (folder / "base.yaml").is_file():
            state = "has no base.yaml" if folder.is_dir() else "does not exist"
            raise ConfigError(f"{what}: {folder} {state}")
        return folder
    candidates = [Path(__file__).resolve().parents[1] / "conf", Path.cwd() / "conf", Path.cwd()]
    for folder in candidates:
        if (folder / "base.yaml").is_file():
            return folder
    packaged = resources.files("segmentation") / "conf"
    if packaged.joinpath("base.yaml").is_file():
        return Path(str(packaged))
    raise ConfigError(f"no base.yaml found (looked in: {', '.join(str(c) for c in candidates)})")


def utc_today() -> dt.date:
    """The default run date: today's date in UTC, whatever the driver's time zone."""
    return dt.datetime.now(dt.timezone.utc).date()


def load(args: argparse.Namespace) -> tuple[Config, dt.date]:
    conf_dir = find_conf_dir(args.conf_dir)
    values: dict[str, Any] = {}
    if args.input:
        # Taken as it is, not as YAML text: a path such as "/data/a #1.csv" keeps its " #1".
        source = args.input if "://" in args.input or not Path(args.input).exists() else str(Path(args.input).resolve())
        values["input.source"] = source
    if getattr(args, "model_version", None):
        values["score.model_version"] = args.model_version
    if getattr(args, "monitor_nights", None) is not None:
        values["monitor.nights"] = args.monitor_nights
    if getattr(args, "retrain", False):
        values["train.retrain"] = True
    if getattr(args, "retrain_on_drift", False):
        values["drift.retrain_on_drift"] = True
    if getattr(args, "accept_night", False):
        values["guard.accept"] = True
    if getattr(args, "reshape", False):
        values["train.clustering.selection.reshape"] = True
    cfg = load_config(conf_dir, args.profile or ["local"], list(args.overrides), args.config, values)
    project = conf_dir.parent
    cfg = _with_paths(cfg, project)
    run_date = parse_run_date(args.run_date) if args.run_date else utc_today()
    return cfg, run_date


def _with_paths(cfg: Config, project: Path) -> Config:
    source = cfg.input.source
    if cfg.input.format != "table" and ("/" in source or source.lower().endswith((*CSV_SUFFIXES, ".parquet"))):
        source = resolve_path(source, project)
    tables = cfg.tables.model_copy(update={
        "root": resolve_path(cfg.tables.root, project),
        "models_dir": resolve_path(cfg.tables.models_dir, project),
    })
    audiences = [a.model_copy(update={"exclude": _resolved_source(a.exclude, project)}) for a in cfg.audiences]
    lift = cfg.lift.model_copy(update={"report": resolve_path(cfg.lift.report, project)})
    monitor = cfg.monitor.model_copy(update={"output": resolve_path(cfg.monitor.output, project)}) \
        if cfg.monitor.output else cfg.monitor
    return cfg.model_copy(update={"input": cfg.input.model_copy(update={"source": source}), "tables": tables,
                                  "audiences": audiences, "lift": lift, "monitor": monitor})


def _resolved_source(source: str, project: Path) -> str:
    """A path (not a table name) relative to the project."""
    return resolve_path(source, project) if "/" in source or source.lower().endswith((*CSV_SUFFIXES, ".parquet")) else source


def spark_session(cfg: Config):
    """Reuse the session a runtime or spark-submit provides; otherwise build a local Delta one.

    Either way the config's SQL settings (time zone, shuffle partitions, `spark.extra`) are
    applied to the session; those Spark only takes at startup are logged as not applied.
    """
    from pyspark.sql import SparkSession

    spark = SparkSession.getActiveSession()
    if spark is None and (os.environ.get("SPARK_ENV_LOADED") or os.environ.get("PYSPARK_GATEWAY_PORT")):
        # Launched by spark-submit: its --master/--conf/--packages already define the session.
        spark = SparkSession.builder.appName(cfg.spark.app_name).getOrCreate()
    elif spark is None:
        from delta import configure_spark_with_delta_pip

        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        builder = (
            SparkSession.builder.master(cfg.spark.master)
            .appName(cfg.spark.app_name)
            .config("spark.sql.extensions", DELTA_EXTENSION)
            .config("spark.sql.catalog.spark_catalog", DELTA_CATALOG)
            .config("spark.ui.enabled", "false")
            .config("spark.ui.showConsoleProgress", "false")
            .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        )
        for key, value in session_settings(cfg).items():
            builder = builder.config(key, value)
        spark = configure_spark_with_delta_pip(builder).getOrCreate()
    apply_settings(spark, session_settings(cfg))
    spark.sparkContext.setLogLevel(cfg.spark.log_level)
    return spark


def session_settings(cfg: Config) -> dict[str, str]:
    """What the config asks of the session, `spark.extra` last (it may override the others).

    The retention defaults give every table the jobs create its log and deleted-file retention
    (`maintain.*`) from its first commit, whichever write creates it.
    """
    return {
        "spark.sql.session.timeZone": SESSION_TIME_ZONE,
        "spark.sql.shuffle.partitions": str(cfg.spark.shuffle_partitions),
        "spark.sql.maxConcurrentOutputFileWriters": str(cfg.spark.concurrent_output_writers),
        **maintenance.default_properties(cfg.maintain),
        **cfg.spark.extra,
    }


def apply_settings(spark, settings: dict[str, str]) -> list[str]:
    """Sets each setting on the running session; returns (and logs) those it cannot take now."""
    log = logs.get("session")
    refused = []
    for key, value in settings.items():
        try:
            if spark.conf.get(key, None) == value:
                continue
            spark.conf.set(key, value)
        except Exception as exc:  # noqa: BLE001 - Spark refuses static and core settings at runtime
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            shown = redact.value(key, value)  # an object-store key's value stays out of the log
            log.warning("spark setting %s=%s not applied to the running session (%s); "
                        "pass it when the session starts, e.g. spark-submit --conf %s=%s", key, shown,
                        redact.text(reason), key, shown)
            refused.append(key)
    return refused


def main(job: str, run: Callable[..., dict[str, Any]],
         argv: list[str] | None = None, extra_args: Callable[[argparse.ArgumentParser], None] | None = None) -> int:
    """Runs one job and returns its exit status; every run, however it ends, leaves a `runs` row.

    A named error becomes one log line and its own exit code; any other exception (Spark,
    Py4J, an executor's Python error, scikit-learn, the OS) is logged with its traceback and
    exits with `UNEXPECTED_EXIT_CODE`. SIGTERM and SIGINT end the run as a `RunCancelled`
    does (exit 128 + the signal's number), whatever the signal interrupted. The final status
    is written in `finally`, with the counts the stages had reached (`progress`), so a failed
    run still says what it read; signals that arrive while it is written are ignored.
    """
    log = logs.configure()
    p = parser(job)
    if extra_args:
        extra_args(p)
    args = p.parse_args(argv)
    start = time.perf_counter()
    started_at = runs.utc_now()
    spark = cfg = run_date = None
    run_id = runs.new_run_id()
    # The stages read the run's id from it too: `nights` records which run is publishing a night.
    progress: dict[str, Any] = {"run_id": run_id, "started_at": started_at}
    started = False
    error: BaseException | None = None
    summary: dict[str, Any] | None = None
    code = 0
    stop = _Signals(job)
    try:
        stop.install()
        cfg, run_date = load(args)
        log.info("%s: run_id=%s run_date=%s profile=%s", job, run_id, run_date, ",".join(args.profile or ["local"]))
        spark = spark_session(cfg)
        stop.watch(spark, run_id)
        started = audit(job, runs.start, spark, cfg, run_id, run_date, job, started_at)
        stop.check()  # a signal during that write was caught by the audit's guard
        summary = _call(run, spark, cfg, run_date, progress)
        stop.check()  # a stage that catches broadly may have taken the cancel for its own failure
    except BaseException as exc:  # noqa: BLE001 - sorted below; what is not ours is passed on
        stop.hold()
        error = stop.cancelled(exc, {**progress, **(summary or {})}) or exc
        if isinstance(error, SegmentationError):
            log.error("%s FAILED (%s): %s", job, type(error).__name__, error)
            code = error.exit_code
        elif isinstance(error, Exception):
            log.exception("%s FAILED with an unexpected error (%s); exit %d", job, runs.describe(error),
                          UNEXPECTED_EXIT_CODE)
            code = UNEXPECTED_EXIT_CODE
        else:  # SystemExit and the like: recorded, then passed on
            raise
    finally:
        stop.hold()
        try:
            if spark is not None and cfg is not None and run_date is not None:
                counts = {**progress, **(summary or {})}
                audit(job, runs.finish, spark, cfg, run_id, run_date, job, started_at, counts, error, started)
        finally:
            stop.restore()
    if error is not None:
        return code
    elapsed = time.perf_counter() - start
    log.info("%s OK: %s elapsed=%.1fs", job, _summary_line(summary), elapsed)
    return 0


class _Signals:
    """SIGTERM and SIGINT as a `RunCancelled` raised in the main thread, with Spark's jobs cancelled.

    Python runs a handler in the main thread between bytecodes. While the driver waits on a
    Spark action, that thread is blocked reading Py4J's socket: the read is interrupted, the
    handler raises, and Py4J passes the error on wrapped in a `Py4JNetworkError`; the run's Spark
    jobs (its job group) are cancelled from another thread (a Py4J call from the handler would share the blocked
    thread's connection). Whatever exception then reaches `main` counts as the cancel.
    """

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self, job: str):
        self.job = job
        self.spark = None
        self.received: int | None = None
        self.holding = False
        self.previous: dict[int, Any] = {}
        self.canceller: threading.Thread | None = None
        self.group: str | None = None
        self.own_group = False

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return  # only the main thread may set handlers; a job run from a thread keeps its caller's
        for signum in self.SIGNALS:
            previous = signal.signal(signum, self._handle)
            self.previous.setdefault(signum, previous)

    def watch(self, spark, run_id: str) -> None:
        """Handlers again (a new SparkContext sets its own SIGINT one), and the job group to cancel.

        The run's Spark jobs (those its main thread starts) carry a job group: the caller's if it
        has one (a Databricks notebook command runs under its own, which its Cancel button
        cancels), else `segmentation-<run_id>`. Only that group is cancelled, never another
        user's jobs on a shared driver.
        """
        self.spark = spark
        if not self.previous:
            return
        self.install()
        sc = spark.sparkContext
        self.group = sc.getLocalProperty("spark.jobGroup.id")
        if not self.group:
            self.group = f"segmentation-{run_id}"
            self.own_group = True
            sc.setJobGroup(self.group, f"segmentation {self.job} run {run_id}")

    def check(self) -> None:
        if self.received is not None:
            raise RunCancelled(f"{signal.Signals(self.received).name} received", self.received)

    def hold(self) -> None:
        """From here on, while the end is recorded, a signal is logged and otherwise ignored."""
        self.holding = True
        if self.canceller is not None:
            # Done before the end is written, so the cancel cannot catch the runs table's own write.
            self.canceller.join(timeout=60)

    def restore(self) -> None:
        if self.own_group and self.spark is not None:
            try:
                sc = self.spark.sparkContext
                for key in ("spark.jobGroup.id", "spark.job.description", "spark.job.interruptOnCancel"):
                    sc.setLocalProperty(key, None)
            except Exception:  # noqa: BLE001 - the JVM may be gone; nothing left to label
                pass
            self.own_group = False
        for signum, previous in self.previous.items():
            signal.signal(signum, previous if previous is not None else signal.SIG_DFL)
        self.previous = {}

    def cancelled(self, exc: BaseException, counts: dict[str, Any]) -> RunCancelled | None:
        """The cancel a signal caused, however it surfaced (our error, Py4J's, Spark's "job cancelled")."""
        if self.received is None:
            return None
        name = signal.Signals(self.received).name
        reached = " ".join(f"{k}={counts[k]}" for k in ("rows_read", "rows_quarantined", "rows_written",
                                                       "model_version") if counts.get(k) is not None)
        surfaced = "" if isinstance(exc, RunCancelled) else f"; it surfaced as {runs.describe(exc)}"
        return RunCancelled(f"{name} received: the run was stopped before it finished "
                            f"(counts reached: {reached or 'none'}){surfaced}", self.received)

    def _handle(self, signum: int, frame: Any) -> None:
        name = signal.Signals(signum).name
        if self.holding or self.received is not None:
            logs.get(self.job).warning("%s received while the run is ending: ignored", name)
            return
        self.received = signum
        logs.get(self.job).warning("%s received: stopping the run (cancelling its running Spark jobs)", name)
        if self.spark is not None:
            self.canceller = threading.Thread(target=self._cancel_spark_jobs, name="cancel-spark-jobs", daemon=True)
            self.canceller.start()
        raise RunCancelled(f"{name} received", signum)

    def _cancel_spark_jobs(self) -> None:
        try:
            # The interrupted Py4J call goes on in the JVM and may submit its job just after a
            # cancel: cancelled again until the group has had no running job for half a second.
            sc = self.spark.sparkContext
            tracker = sc.statusTracker()
            quiet_since, deadline = None, time.monotonic() + 30
            while time.monotonic() < deadline:
                sc.cancelJobGroup(self.group)
                running = [j for j in tracker.getJobIdsForGroup(self.group)
                           if (info := tracker.getJobInfo(j)) is not None and info.status == "RUNNING"]
                if running:
                    quiet_since = None
                elif quiet_since is None:
                    quiet_since = time.monotonic()
                elif time.monotonic() - quiet_since >= 0.5:
                    return
                time.sleep(0.1)
        except Exception as exc:  # noqa: BLE001 - the JVM may be going too; the cancel still ends the run
            logs.get(self.job).warning("could not cancel the running Spark jobs: %s", runs.describe(exc))


def _call(run: Callable[..., dict[str, Any]], spark, cfg: Config, run_date: dt.date,
          progress: dict[str, Any]) -> dict[str, Any]:
    """Stages that take `progress` fill it in as they go; others report only at the end."""
    if "progress" in inspect.signature(run).parameters:
        return run(spark, cfg, run_date, progress=progress)
    return run(spark, cfg, run_date)


def audit(job: str, write: Callable[..., None], *args: Any) -> bool:
    """A write to the runs table; a failure is logged, never allowed to mask the job's own result."""
    try:
        write(*args)
        return True
    except Exception as exc:  # noqa: BLE001 - the audit must not turn a result into a crash
        logs.get(job).warning("could not write to the runs table: %s", runs.describe(exc))
        return False


def _summary_line(summary: dict[str, Any]) -> str:
    parts = []
    if summary.get("tables"):
        parts.append("tables=" + ",".join(summary["tables"]))
    for key in ("rows_read", "rows_written", "rows_quarantined", "sample_rows", "membership_changes", "audiences",
                "responses"):
        if key in summary:
            parts.append(f"{key}={summary[key]}")
    for key in ("model_version", "registry_version"):
        if summary.get(key):
            parts.append(f"{key}={summary[key]}")
    return " ".join(parts)


def exit_with(code: int) -> None:
    logging.shutdown()
    sys.exit(code)
