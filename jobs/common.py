"""What every job shares: its arguments, the config, the Spark session and the exit status."""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import sys
import time
from importlib import resources
from pathlib import Path
from typing import Any, Callable

from segmentation import logs, runs
from segmentation.config import Config, load_config, resolve_path
from segmentation.errors import ArgumentError, ConfigError, SegmentationError
from segmentation.tables import parse_run_date

DELTA_EXTENSION = "io.delta.sql.DeltaSparkSessionExtension"
DELTA_CATALOG = "org.apache.spark.sql.delta.catalog.DeltaCatalog"


def parser(job: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=f"segmentation-{job}", description=f"Run the {job} job.")
    p.add_argument("--profile", action="append", default=None,
                   help="named overlay from conf/ (repeatable, applied in order; default: local)")
    p.add_argument("--config", action="append", default=[], type=Path,
                   help="another YAML overlay file, applied after the profiles (repeatable)")
    p.add_argument("--set", action="append", default=[], dest="overrides", metavar="KEY=VALUE",
                   help="override one config value, e.g. --set train.sample.max_rows=50000 (repeatable)")
    p.add_argument("--input", help="raw customer table: CSV, Parquet or Delta path, or a table name")
    p.add_argument("--run-date", default=None, help="YYYY-MM-DD (default: today)")
    p.add_argument("--conf-dir", type=Path, default=None, help="folder holding base.yaml and the profiles")
    return p


def find_conf_dir(explicit: Path | None) -> Path:
    """conf/ of this checkout, else where --files put it, else the copy packaged in the wheel."""
    candidates = [explicit] if explicit else []
    if os.environ.get("SEGMENTATION_CONF_DIR"):
        candidates.append(Path(os.environ["SEGMENTATION_CONF_DIR"]))
    candidates += [Path(__file__).resolve().parents[1] / "conf", Path.cwd() / "conf", Path.cwd()]
    for folder in candidates:
        if (folder / "base.yaml").is_file():
            return folder
    packaged = resources.files("segmentation") / "conf"
    if packaged.joinpath("base.yaml").is_file():
        return Path(str(packaged))
    raise ConfigError(f"no base.yaml found (looked in: {', '.join(str(c) for c in candidates)})")


def load(args: argparse.Namespace) -> tuple[Config, dt.date]:
    conf_dir = find_conf_dir(args.conf_dir)
    overrides = list(args.overrides)
    if args.input:
        source = args.input if "://" in args.input or not Path(args.input).exists() else str(Path(args.input).resolve())
        overrides.append(f"input.source={source}")
    if getattr(args, "model_version", None):
        overrides.append(f"score.model_version={args.model_version}")
    if getattr(args, "retrain", False):
        overrides.append("train.retrain=true")
    if getattr(args, "retrain_on_drift", False):
        overrides.append("drift.retrain_on_drift=true")
    cfg = load_config(conf_dir, args.profile or ["local"], overrides, args.config)
    project = conf_dir.parent
    cfg = _with_paths(cfg, project)
    run_date = parse_run_date(args.run_date) if args.run_date else dt.date.today()
    return cfg, run_date


def _with_paths(cfg: Config, project: Path) -> Config:
    from dataclasses import replace

    source = cfg.input.source
    if cfg.input.format != "table" and ("/" in source or source.lower().endswith((".csv", ".parquet"))):
        source = resolve_path(source, project)
    tables = replace(
        cfg.tables,
        root=resolve_path(cfg.tables.root, project),
        models_dir=resolve_path(cfg.tables.models_dir, project),
    )
    return replace(cfg, input=replace(cfg.input, source=source), tables=tables)


def spark_session(cfg: Config):
    """Reuse the session a runtime or spark-submit provides; otherwise build a local Delta one."""
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    if os.environ.get("SPARK_ENV_LOADED") or os.environ.get("PYSPARK_GATEWAY_PORT"):
        # Launched by spark-submit: its --master/--conf/--packages already define the session.
        spark = SparkSession.builder.appName(cfg.spark.app_name).getOrCreate()
    else:
        from delta import configure_spark_with_delta_pip

        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        builder = (
            SparkSession.builder.master(cfg.spark.master)
            .appName(cfg.spark.app_name)
            .config("spark.sql.extensions", DELTA_EXTENSION)
            .config("spark.sql.catalog.spark_catalog", DELTA_CATALOG)
            .config("spark.sql.shuffle.partitions", str(cfg.spark.shuffle_partitions))
            .config("spark.ui.enabled", "false")
            .config("spark.ui.showConsoleProgress", "false")
            .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        )
        for key, value in cfg.spark.extra.items():
            builder = builder.config(key, value)
        spark = configure_spark_with_delta_pip(builder).getOrCreate()
    spark.sparkContext.setLogLevel(cfg.spark.log_level)
    return spark


def main(job: str, run: Callable[[Any, Config, dt.date], dict[str, Any]],
         argv: list[str] | None = None, extra_args: Callable[[argparse.ArgumentParser], None] | None = None) -> int:
    """Runs one job and returns its exit status; every named error becomes one log line."""
    log = logs.configure()
    p = parser(job)
    if extra_args:
        extra_args(p)
    args = p.parse_args(argv)
    start = time.perf_counter()
    started_at = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    spark = cfg = run_date = None
    run_id = runs.new_run_id()
    try:
        cfg, run_date = load(args)
        log.info("%s: run_id=%s run_date=%s profile=%s", job, run_id, run_date, ",".join(args.profile or ["local"]))
        spark = spark_session(cfg)
        summary = run(spark, cfg, run_date)
    except SegmentationError as exc:
        log.error("%s FAILED (%s): %s", job, type(exc).__name__, exc)
        _record(spark, cfg, run_id, run_date, job, started_at, None, exc)
        return exc.exit_code
    _record(spark, cfg, run_id, run_date, job, started_at, summary, None)
    elapsed = time.perf_counter() - start
    log.info("%s OK: %s elapsed=%.1fs", job, _summary_line(summary), elapsed)
    return 0


def _record(spark, cfg, run_id, run_date, job, started_at, summary, error) -> None:
    """The audit row; a failure to write it is logged, never allowed to mask the job's own result."""
    if spark is None or cfg is None:
        return
    try:
        runs.record(spark, cfg, run_id, run_date, job, started_at, summary, error)
    except Exception as exc:  # noqa: BLE001 - the audit must not turn a result into a crash
        logs.get(job).warning("could not append to the runs table: %s: %s", type(exc).__name__, exc)


def _summary_line(summary: dict[str, Any]) -> str:
    parts = []
    if summary.get("tables"):
        parts.append("tables=" + ",".join(summary["tables"]))
    for key in ("rows_read", "rows_written", "rows_quarantined", "sample_rows"):
        if key in summary:
            parts.append(f"{key}={summary[key]}")
    version = summary.get("model_version")
    if version:
        parts.append(f"model_version={version}")
    return " ".join(parts)


def exit_with(code: int) -> None:
    logging.shutdown()
    sys.exit(code)
