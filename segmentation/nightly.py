"""The night: features -> train (when asked or when no model exists) -> score -> publish, put back whole on a failed count."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pyspark.sql import SparkSession

from segmentation.core import logs
from segmentation.core.config import Config
from segmentation.core.errors import AccountingError, ModelError, RegistryMissingError
from segmentation.downstream import audiences, publish
from segmentation.features.stage import run_features, run_features_for_scoring
from segmentation.io import tables
from segmentation.model import registry
from segmentation.score.stage import score_night
from segmentation.train.stage import run_train


def _features_drifted(spark: SparkSession, cfg: Config, run_date: dt.date, model_version: str) -> bool:
    """--retrain-on-drift: tonight's features against the current model's training sample."""
    model = registry.load(cfg, model_version).bundle
    features = tables.read_run(spark, tables.table_ref(cfg.tables, cfg.tables.features), run_date)
    psis = publish.features_drift(spark, cfg, model, features)
    drifted = {c: v for c, v in psis.items() if v > cfg.drift.psi_threshold}
    log = logs.get("nightly")
    if drifted:
        log.warning("features drifted from model %s (%s): retraining before scoring", model.version,
                    ", ".join(f"{c} PSI {v:.2f}" for c, v in sorted(drifted.items())))
    else:
        log.info("no feature drift against model %s (max PSI %.3f): no retrain", model.version,
                 max(psis.values(), default=0.0))
    return bool(drifted)


def _guard_hold(verdict: dict[str, Any]) -> str | None:
    """Why a model trained tonight must not become champion by itself: the night's guard fired."""
    if not verdict.get("fired"):
        return None
    return ("guard fired on this night (accepted by --accept-night: " + "; ".join(verdict.get("failures", []))
            + "): promote by hand")


def run_nightly(
    spark: SparkSession, cfg: Config, run_date: dt.date, progress: dict[str, Any] | None = None
) -> dict[str, Any]:
    """features -> train (when no model exists or retraining is asked) -> score -> publish.

    The model is fixed once: `score.model_version` if set, else the one this run trains, else
    the champion when the run started, so a concurrent `train` or `promote` cannot swap it. A
    registry with no champion (every version failed its gates) trains. If any accounting check
    fails, every table of the night is put back as it was; the night is published (`nights`)
    only after the counts add up. Nights a dead run left unpublished are set aside first.
    """
    log = logs.get("nightly")
    progress = {} if progress is None else progress
    pinned = cfg.score.model_version
    try:
        model_version = pinned or registry.current(cfg)
    except RegistryMissingError:
        raise  # a lake that has had a registry: a new model would hide the missing one
    except ModelError as exc:
        log.warning("%s: training a new model", exc)
        model_version = None
    tag = tables.new_write_tag("nightly")
    publish.settle(spark, cfg)
    summary: dict[str, Any] = {"tables": []}

    def features(fill_from: str | None) -> dict[str, Any]:
        stage: dict[str, Any] = {}
        try:
            feats = run_features(spark, cfg, run_date, stage, tag=tag, fill_from=fill_from)
        finally:  # rows_written of features is not the night's: the night writes segments
            progress.update({k: stage[k] for k in ("rows_read", "rows_quarantined", "input_version") if k in stage})
        summary["rows_read"] = feats["rows_read"]
        summary["rows_quarantined"] = feats["rows_quarantined"]
        summary["tables"] = feats["tables"]
        return feats

    # Gaps are filled with the imputation values of the model that will score the night (None:
    # the night's own medians, which a model trained tonight records). A forced retrain fills
    # with the night's own; a retrain decided later, or a model held back, fills the night again.
    filled_with = pinned or (None if cfg.train.retrain else model_version)
    feats = features(filled_with)
    retrain = cfg.train.retrain or not model_version
    if not retrain and cfg.drift.retrain_on_drift:
        retrain = _features_drifted(spark, cfg, run_date, model_version)
    hold = _guard_hold(feats.get("guard") or {})
    scores_with = model_version  # the model to score with, None: the one trained tonight
    if retrain and hold and model_version and not cfg.registry.enabled:
        # Without a registry a saved model is the current one at once: nothing could hold it back.
        log.warning("train: skipped: the night's guard fired, and with registry.enabled=false a model trained "
                    "tonight would be current at once; scoring with %s", model_version)
    elif retrain:
        if filled_with is not None:
            log.info("train: filling the night's gaps with its own medians for the new model")
            filled_with = None
            features(None)
        trained = run_train(spark, cfg, run_date, hold=hold)
        summary["trained"] = trained["model_version"]
        if hold and model_version:
            log.warning("train: version %s registered but not %s (%s); scoring with %s", trained["registry_version"],
                        cfg.registry.alias, hold, model_version)
        else:
            model_version = pinned or str(trained.get("registry_version") or trained["model_version"])
            scores_with = pinned or None
    else:
        log.info("train: skipped (model %s exists; pass --retrain to train anew)", model_version)
    if scores_with != filled_with:
        log.info("features: filling the night's gaps again with model %s's imputation values", scores_with)
        features(scores_with)
    progress["model_version"] = model_version
    stage = {k: progress[k] for k in ("run_id", "started_at") if k in progress}
    try:
        scored = score_night(spark, cfg, run_date, stage, model_version, tag)
    finally:
        progress.update({k: stage[k] for k in ("rows_written", "model_version", "registry_version") if k in stage})
    summary["tables"].append(scored["table"])
    summary["rows_written"] = summary["segments_rows"] = scored["segments_rows"]
    summary["model_version"] = scored["model_version"]
    summary["registry_version"] = scored["registry_version"]
    if summary["segments_rows"] + summary["rows_quarantined"] != summary["rows_read"]:
        publish.set_aside(spark, cfg, run_date, tag)
        raise AccountingError(
            f"nightly: read {summary['rows_read']} rows but scored {summary['segments_rows']} "
            f"and quarantined {summary['rows_quarantined']}; {run_date}'s tables were put back as they were "
            "before this run"
        )
    after = publish.publish_night(spark, cfg, run_date, scored["model"], scored["features"], scored["psis"], tag,
                                  progress.get("run_id"), progress.get("started_at"))
    summary["tables"] += after["tables"]
    summary["drift_status"] = progress["drift_status"] = after["drift_status"]
    summary["membership_changes"] = after["changes"]
    if after["audiences"]:
        summary["audiences"] = audiences.summary_text(after["audiences"])
    return summary


def run_features_job(
    spark: SparkSession, cfg: Config, run_date: dt.date, progress: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The features job: nights a dead run left unpublished set aside first, so putting one back
    never undoes tonight's features."""
    publish.settle(spark, cfg)
    return run_features_for_scoring(spark, cfg, run_date, progress)
