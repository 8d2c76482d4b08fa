"""The `maintain` job: storage kept in bounds over years of nights, nothing a reader or a restore needs lost.

Dead nights are set aside first (their restore needs the files VACUUM would delete), then each
table gets its retention properties, is compacted and vacuumed; then old model bundles and
what crashed saves left are removed.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from pyspark.sql import SparkSession

from segmentation.core import logs
from segmentation.core.config import TABLE_KEYS, Config
from segmentation.downstream import publish
from segmentation.io import maintenance, nights, tables
from segmentation.model import registry, store


def run_maintain(spark: SparkSession, cfg: Config, run_date: dt.date) -> dict[str, Any]:
    """Settle dead nights -> each table: properties, OPTIMIZE, VACUUM -> old bundles -> stale staging."""
    log = logs.get("maintain")
    m = cfg.maintain
    with logs.step(log, "set aside dead nights") as s:
        settled = publish.settle(spark, cfg)
        s.rows = len(settled)
        s.detail = "nights=" + (",".join(d.isoformat() for d in settled) or "none")
    done = []
    for key in m.tables or TABLE_KEYS:
        ref = tables.table_ref(cfg.tables, getattr(cfg.tables, key))
        if not tables.exists(spark, ref):
            continue
        with logs.step(log, f"maintain {key}") as s:
            figures = maintenance.maintain_table(spark, ref, m)
            s.detail = figures.line()
        if key in nights.VERSION_COLUMNS and not figures.skipped and figures.version_after != figures.version_before \
                and maintenance.only_maintenance_since(spark, ref, figures.version_before):
            nights.move_version(spark, cfg, key, figures.version_before, figures.version_after)
        done.append(figures)
    models = prune_models(cfg)
    staging = remove_stale_staging(cfg)
    log.info("maintain: tables=%d files_before=%d files_after=%d bytes_vacuumed=%d models_removed=%d "
             "staging_removed=%d", len(done), sum(f.files_before for f in done), sum(f.files_after for f in done),
             sum(f.bytes_vacuumed for f in done), len(models), len(staging))
    return {"tables": [f.table for f in done], "models_removed": models, "staging_removed": staging,
            "figures": done}


def prune_models(cfg: Config) -> list[str]:
    """Removes the bundle folders beyond the newest `maintain.keep_models`, keeping LATEST's, the
    pinned `score.model_version`'s and every registered version's (the champion's among them)."""
    log = logs.get("maintain")
    models_dir = cfg.tables.models_dir
    with logs.step(log, "remove old model bundles") as s:
        folders = store.bundle_folders(models_dir)
        keep = set(folders[len(folders) - cfg.maintain.keep_models:]) if cfg.maintain.keep_models else set()
        keep |= registry.referenced_bundles(cfg)
        keep.add(store.latest(models_dir) or "")
        pinned = cfg.score.model_version
        if pinned:
            keep.add(registry.bundle_folder(cfg, pinned))
        removed, freed = [], 0
        for version in folders:
            if version not in keep:
                freed += store.remove_bundle(models_dir, version)
                removed.append(version)
        s.rows = len(removed)
        s.detail = (f"bundles_before={len(folders)} bundles_after={len(folders) - len(removed)} bytes_removed={freed} "
                    f"removed={','.join(removed) or 'none'}")
    return removed


def remove_stale_staging(cfg: Config) -> list[str]:
    """Removes the `.tmp` staging entries older than `maintain.staging_max_age_hours`."""
    log = logs.get("maintain")
    with logs.step(log, "remove crashed staging folders") as s:
        stale = store.stale_staging(cfg.tables.models_dir, cfg.maintain.staging_max_age_hours * 3600, time.time())
        freed = sum(store.remove_staging(path) for path in stale)
        s.rows = len(stale)
        s.detail = f"bytes_removed={freed} removed={','.join(p.name for p in stale) or 'none'}"
    return [str(p) for p in stale]
