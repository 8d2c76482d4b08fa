"""The report stage: rebuild a model's report.html and report.md from its saved inputs, or draw the monitoring page over the last published nights."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pyspark.sql import SparkSession

from segmentation.core import logs
from segmentation.core.config import Config
from segmentation.model import registry, store
from segmentation.io import runs
from segmentation.report import inputs as report_inputs
from segmentation.report import monitor_inputs, render


def run_report(spark: SparkSession, cfg: Config, run_date: dt.date) -> dict[str, Any]:
    """Rewrites the report of `score.model_version` (a registered version or a bundle folder;
    default: the champion); reads no table."""
    log = logs.get("report")
    version = cfg.score.model_version or registry.current(cfg) or ""
    folder = store.folder(cfg.tables.models_dir, registry.bundle_folder(cfg, version) if version else "")
    with logs.step(log, "write report") as s:
        inputs = report_inputs.load(folder / report_inputs.FOLDER)
        html, md = render.write_report(inputs, folder)
        s.detail = f"{html} ({html.stat().st_size // 1024} KiB), {md}"
    return {"model_version": folder.name, "report": str(html), "tables": []}


def run_monitor(spark: SparkSession, cfg: Config, run_date: dt.date) -> dict[str, Any]:
    """Writes the monitoring page over the last `monitor.nights` published nights (`report --nights N`);
    only per-night aggregates leave Spark."""
    log = logs.get("report")
    with logs.step(log, "read the nights") as s:
        inputs = monitor_inputs.read(spark, cfg, runs.utc_now())
        s.rows = len(inputs.nights)
        s.detail = f"nights={s.rows} asked={cfg.monitor.nights}"
    with logs.step(log, "write monitoring page") as s:
        path = render.write_monitor(inputs, monitor_inputs.default_output(cfg))
        s.detail = f"{path} ({path.stat().st_size // 1024} KiB)"
    return {"report": str(path), "nights": len(inputs.nights), "tables": []}
