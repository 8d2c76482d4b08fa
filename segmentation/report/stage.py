"""The report stage: rebuild a model's report.html and report.md from its saved inputs."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pyspark.sql import SparkSession

from segmentation.core import logs
from segmentation.core.config import Config
from segmentation.model import registry, store
from segmentation.report import inputs as report_inputs
from segmentation.report import render


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
