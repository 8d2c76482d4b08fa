"""The report stage: rebuild a model's report.html and report.md from its saved inputs."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pyspark.sql import SparkSession

from segmentation import bundle as model_store
from segmentation import logs, registry, report, report_data
from segmentation.config import Config


def run_report(spark: SparkSession, cfg: Config, run_date: dt.date) -> dict[str, Any]:
    """Rewrites the report of `score.model_version` (a registered version or a bundle folder;
    default: the champion); reads no table."""
    log = logs.get("report")
    version = cfg.score.model_version or registry.current(cfg) or ""
    folder = model_store.folder(cfg.tables.models_dir, registry.bundle_folder(cfg, version) if version else "")
    with logs.step(log, "write report") as s:
        inputs = report_data.load(folder / report_data.FOLDER)
        html, md = report.write_report(inputs, folder)
        s.detail = f"{html} ({html.stat().st_size // 1024} KiB), {md}"
    return {"model_version": folder.name, "report": str(html), "tables": []}
