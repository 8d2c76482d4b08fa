"""The train stage: sample -> clustering comparison -> forest -> personas, drivers, report -> bundle.

Everything after the sample runs on the driver in pandas and scikit-learn; Spark is used only to
draw the bounded sample, read the night's counts and write the small per-model tables.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, NamedTuple

import numpy as np
import pandas as pd
from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StructType
from sklearn.decomposition import PCA
from sklearn.metrics import silhouette_samples
from threadpoolctl import threadpool_limits

from segmentation.core import logs, redact
from segmentation.core.columns import (
    FEATURE_COLUMNS,
    INDICATOR_COLUMNS,
    LOG_COLUMNS,
    PURCHASE_TYPES,
    RAW_NUMERIC_COLUMNS,
)
from segmentation.core.config import Config
from segmentation.core.errors import ModelError, RegistryMissingError, TrainingError
from segmentation.downstream import drift
from segmentation.features.stage import applied_imputation, run_features
from segmentation.io import runs, tables
from segmentation.model import registry, store
from segmentation.serving import pyfunc
from segmentation.train import candidates as candidates_table
from segmentation.train import classifier, clustering, drivers, eda, lineage, personas, profiles, selection
from segmentation.train.preprocessing import ClusteringSpace, LogScaler
from segmentation.train.sampling import driver_sample

# The raw columns whose distributions the report draws, and the figures on persona cards.
DISTRIBUTION_COLUMNS = ["BALANCE", "PURCHASES", "CASH_ADVANCE", "CREDIT_LIMIT", "PAYMENTS", "MINIMUM_PAYMENTS"]
KEY_FEATURES = ["BALANCE", "PURCHASES", "CASH_ADVANCE", "CREDIT_LIMIT", "PRC_FULL_PAYMENT", "LIMIT_USAGE", "TENURE"]


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def purchase_type(sample: pd.DataFrame) -> np.ndarray:
    """The notebook's purchase type, recovered from the one-hot indicator columns."""
    return np.array(PURCHASE_TYPES)[sample[INDICATOR_COLUMNS].to_numpy().argmax(axis=1)]


# ---------------------------------------------------------------------------------------------
# What each step of the train hands to the next.


class Pinned(NamedTuple):
    """What the train read, taken once before it reads: the features table's Delta version, and
    the input those features were built from (`delta:<version>` or `files:sha256:<hex>`)."""

    features_version: int
    input_version: str | None


class NightCounts(NamedTuple):
    """The night's figures from its small tables: no customer row reaches the driver."""

    imputed_with: dict[str, float]  # the value each imputed column's gaps were filled with
    missing: dict[str, int]  # missing values per column: imputed + quarantined for a missing value
    rows_read: int  # feature rows + quarantined rows


@dataclass(frozen=True)
class Prepared:
    """The sample in the fitted transform's units, and in the clustering space."""

    prep: LogScaler
    scaled: np.ndarray
    space: ClusteringSpace
    X: np.ndarray


@dataclass(frozen=True)
class Matched:
    """The winner's labels as stable segment ids, matched to the current model's."""

    current: store.ModelBundle | None  # the model tonight's scoring would use, None if none or unloadable
    matching: lineage.Matching
    labels: np.ndarray  # stable ids, row for row with the sample


@dataclass(frozen=True)
class Fitted:
    """The forest that scores the segments, its held-out figures and whether it may be used."""

    forest: Any
    report: classifier.ForestReport
    usable: bool
    failure: str | None  # why it may not be used (None when usable)


@dataclass(frozen=True)
class Explained:
    """What the segments mean: profiles (with the personas' names), personas and drivers."""

    profile: pd.DataFrame
    people: dict[int, personas.Persona]
    global_drivers: pd.DataFrame
    segment_drivers: pd.DataFrame


# ---------------------------------------------------------------------------------------------
# The train


def run_train(
    spark: SparkSession, cfg: Config, run_date: dt.date, ensure_features: Callable | None = None,
    hold: str | None = None,
) -> dict[str, Any]:
    """Sample -> scale -> compare clusterings -> forest -> personas, drivers, report -> saved bundle.

    `ensure_features(spark, cfg, run_date)` builds the date's features when they are missing
    (default: the features stage).
    The driver-side fits run with `train.blas_threads` BLAS/OpenMP threads: where the driver shares
    its cores with Spark, more threads spin against each other (measured in the README).
    `hold`: register the version without making it champion, for this reason.
    """
    with threadpool_limits(limits=cfg.train.blas_threads or None):
        return _run_train(spark, cfg, run_date, ensure_features or run_features, hold)


def _run_train(spark: SparkSession, cfg: Config, run_date: dt.date, ensure_features: Callable,
               hold: str | None = None) -> dict[str, Any]:
    log = logs.get("train")
    version = store.new_version()
    sample, pinned = _sample(spark, cfg, run_date, ensure_features, log)
    prepared = _transform(sample, cfg, log)
    candidates = _compare(sample, prepared.X, cfg, log)
    current = _current_model(cfg, log)
    chosen = _choose(spark, cfg, run_date, version, prepared.X, candidates, current[0], log)
    winner = chosen.winner
    matched = _match(winner, sample, current, cfg, log)
    fitted = _fit_forest(sample, matched.labels, cfg, log)
    explained = _explain(sample, prepared.scaled, matched, fitted, cfg, log)
    night = _night_counts(spark, cfg, run_date, pinned.features_version)
    bundle = _bundle(cfg, run_date, version, sample, prepared, candidates, chosen, matched, fitted, explained, night,
                     pinned)
    report = _report(cfg, run_date, bundle, sample, prepared, matched, candidates, explained, night, chosen, log)
    path = _save_model(spark, cfg, run_date, bundle, candidates, len(prepared.X), fitted, explained, matched, report,
                       log)
    registered = _register(cfg, run_date, bundle, path, fitted.failure, night.rows_read, pinned, log, hold)
    if fitted.failure is not None:
        where = f"registered as {cfg.registry.model_name} version {registered}, " if registered else ""
        raise TrainingError(f"{fitted.failure}; model {version} kept at {path} ({where}never "
                            f"{cfg.registry.alias}) but not used")
    return {
        "model_version": version,
        "registry_version": registered,
        "held": hold,
        "model_path": str(path),
        "metrics": bundle.metrics,
        "sample_rows": len(sample),
        "features_version": pinned.features_version,
        "input_version": pinned.input_version,
        "tables": [
            str(tables.table_ref(cfg.tables, name))
            for name in (cfg.tables.clustering_candidates, cfg.tables.segment_profiles, cfg.tables.segment_drivers,
                         cfg.tables.segment_lineage)
        ],
    }


# ---------------------------------------------------------------------------------------------
# The steps, in order


def _sample(spark: SparkSession, cfg: Config, run_date: dt.date, ensure_features: Callable,
            log) -> tuple[pd.DataFrame, Pinned]:
    """The bounded driver sample of the date's features, building the features first if absent.

    The features are read at the Delta version taken here, once: everything the train reads of
    them and records (the night's counts, the registry's lineage tags) is of that version, even
    if the features are written again while it trains.
    """
    scfg = cfg.train.sample
    with logs.step(log, "sample features") as s:
        features_ref = tables.table_ref(cfg.tables, cfg.tables.features)
        built = None
        if not tables.exists(spark, features_ref) or tables.read_run(spark, features_ref, run_date).isEmpty():
            log.info("no features for %s yet: running the features stage first", run_date)
            built = ensure_features(spark, cfg, run_date)
        features_version = tables.latest_version(spark, features_ref)
        input_version = built.get("input_version") if isinstance(built, dict) else None
        pinned = Pinned(features_version, input_version or runs.last_input_version(spark, cfg, run_date))
        features = tables.read_run(spark, features_ref, run_date, features_version)
        sample = driver_sample(features, FEATURE_COLUMNS, scfg.max_rows, scfg.seed)
        s.rows = len(sample)
        s.detail = (f"cap={scfg.max_rows} seed={scfg.seed} features_version={features_version} "
                    f"input_version={pinned.input_version}")
    return sample, pinned


def _transform(sample: pd.DataFrame, cfg: Config, log) -> Prepared:
    """The log transform and scaling fitted on the sample, then the clustering space."""
    tcfg = cfg.train
    with logs.step(log, "transform") as s:
        prep = LogScaler(FEATURE_COLUMNS, LOG_COLUMNS, tcfg.transform.kind, tcfg.transform.offset).fit(sample)
        scaled = prep.transform(sample)
        space = ClusteringSpace(FEATURE_COLUMNS, tcfg.space.families, tcfg.space.kind).fit()
        X = space.transform(scaled)
        s.rows = len(X)
        s.detail = f"kind={tcfg.transform.kind} space={tcfg.space.kind} columns={len(space.space_columns_)}"
    return Prepared(prep, scaled, space, X)


def _compare(sample: pd.DataFrame, X: np.ndarray, cfg: Config, log) -> list[clustering.Candidate]:
    """Every configured clustering fitted on `X`, measured and held to the guardrails."""
    tcfg, ccfg = cfg.train, cfg.train.clustering
    raw = sample[RAW_NUMERIC_COLUMNS].to_numpy(dtype=float)
    with logs.step(log, "compare clusterings") as s:
        candidates = clustering.evaluate(X, ccfg, raw=raw, purchase_type=purchase_type(sample))
        clustering.apply_guardrails(candidates, ccfg.guardrails)
        s.rows = len(X)
        s.detail = (
            f"candidates={len(candidates)} passed={sum(c.passed for c in candidates)} "
            f"(fits and DBSCAN on {len(X)} rows, cap train.sample.max_rows={tcfg.sample.max_rows}; "
            f"metrics on {min(len(X), ccfg.metric_max_rows)} rows, cap clustering.metric_max_rows={ccfg.metric_max_rows})"
        )
    for c in candidates:
        log.info(
            "candidate %s: segments=%d silhouette=%s calinski_harabasz=%s davies_bouldin=%s noise=%.3f "
            "smallest=%.3f largest=%.3f stability=%s rule_agreement=%s purchase_type_ari=%s %s",
            c.name, c.n_segments, _fmt(c.silhouette), _fmt(c.calinski_harabasz), _fmt(c.davies_bouldin),
            c.noise_share, c.smallest_share, c.largest_share, _fmt(c.stability), _fmt(c.rule_agreement),
            _fmt(c.purchase_type_ari), "passed" if c.passed else f"failed: {c.reason}",
        )
    return candidates


def _choose(
    spark: SparkSession, cfg: Config, run_date: dt.date, version: str, X: np.ndarray,
    candidates: list[clustering.Candidate], current: store.ModelBundle | None, log,
) -> selection.Selection:
    """The winning candidate, kept to the current model's structure unless another clears the
    margin. With none passing, the candidates (and the MLflow run) are put on record before the
    TrainingError goes up: no model is made."""
    rows = len(X)
    champion = selection.Structure.of_metrics(current.metrics) if current is not None else None
    try:
        with logs.step(log, "choose segmentation") as s:
            chosen = selection.select(X, candidates, cfg.train.clustering, champion)
            s.rows = rows
            s.detail = f"{chosen.decision}: {chosen.sentence()}"
    except TrainingError as exc:
        _write_candidates(spark, cfg, version, run_date, candidates, rows, usable=False)
        if cfg.registry.enabled:  # no model to register, but the run and its candidates are on record
            registry.log_training(cfg, run_date, {"candidates": [c.record() for c in candidates], "sample_rows": rows},
                                  None, {"bundle_version": version}, str(exc))
        raise
    winner = chosen.winner
    for c in candidates:
        if c.resample_silhouette is not None:
            log.info("resampled %s: mean silhouette=%.4f sd=%.4f wins=%d/%d%s", c.name, c.resample_silhouette,
                     c.resample_sd, c.resample_wins, chosen.resamples, " within noise" if c.within_noise else "")
    log.info(
        "winner: %s silhouette=%s segments=%d stability=%s rule_agreement=%s purchase_type_ari=%s decision=%s",
        winner.name, _fmt(winner.silhouette), winner.n_segments, _fmt(winner.stability),
        _fmt(winner.rule_agreement), _fmt(winner.purchase_type_ari), chosen.decision,
    )
    return chosen


def _match(winner: clustering.Candidate, sample: pd.DataFrame, current: tuple[store.ModelBundle | None, int],
           cfg: Config, log) -> Matched:
    """The winner's labels as stable ids: the current model's where a segment is found again.
    `current`: the current model (None if none or unloadable) and the first unused id."""
    with logs.step(log, "match segment ids") as s:
        current, floor = current
        matching = _match_ids(winner.labels, sample, current, floor, cfg.train)
        labels = matching.relabel(winner.labels)
        s.rows = len(labels)
        s.detail = (f"previous={matching.previous_version or 'none'} " + " ".join(
            f"{e['relation']}:{e['previous_segment_ids']}->{e['segment_ids']}" for e in matching.events))
    return Matched(current, matching, labels)


def _fit_forest(sample: pd.DataFrame, labels: np.ndarray, cfg: Config, log) -> Fitted:
    """The forest that learns the segments from the features, and its gate on held-out rows."""
    fcfg = cfg.train.forest
    with logs.step(log, "train forest") as s:
        forest, report = classifier.train_forest(sample[FEATURE_COLUMNS].to_numpy(dtype=float), labels, fcfg)
        s.rows = report.train_rows
        s.detail = f"test_rows={report.test_rows} accuracy={report.accuracy:.4f} macro_f1={report.macro_f1:.4f} " + (
            "per_segment_f1=" + ",".join(f"{k}:{v:.3f}" for k, v in report.per_segment_f1.items())
        )
    usable = report.macro_f1 >= fcfg.min_macro_f1
    failure = None if usable else (
        f"the forest agrees with the clusterer at macro-F1 {report.macro_f1:.4f} on held-out rows, below "
        f"train.forest.min_macro_f1={fcfg.min_macro_f1}"
    )
    return Fitted(forest, report, usable, failure)


def _explain(sample: pd.DataFrame, scaled: np.ndarray, matched: Matched, fitted: Fitted, cfg: Config, log) -> Explained:
    """Profiles, personas (kept segments keep their names) and the global and per-segment drivers."""
    tcfg, labels = cfg.train, matched.labels
    with logs.step(log, "profiles, personas and drivers") as s:
        profile = profiles.segment_profiles(sample, scaled, labels, FEATURE_COLUMNS)
        people = personas.build(profile, tcfg.explain.trait_threshold)
        _keep_names(people, matched.matching, matched.current)
        profile = profiles.with_names(profile, {k: p.name for k, p in people.items()})
        global_drivers = drivers.global_drivers(
            fitted.forest, fitted.report.X_test, fitted.report.y_test, FEATURE_COLUMNS,
            tcfg.explain.permutation_repeats, tcfg.forest.random_state,
        )
        segment_drivers = drivers.segment_drivers(profile)
        s.rows = len(sample)
        s.detail = " | ".join(f"{k}: {p.name}" for k, p in sorted(people.items()))
    for k, p in sorted(people.items()):
        log.info("segment %d %r (%d%%): %s", k, p.name, round(100 * float(np.mean(labels == k))), p.description)
    return Explained(profile, people, global_drivers, segment_drivers)


def _night_counts(spark: SparkSession, cfg: Config, run_date: dt.date, features_version: int) -> NightCounts:
    """(values the gaps were filled with, missing values per column, rows read) of the night.

    The values are those the features stage applied (the scoring model's, or the night's own
    medians), read back from the imputation table: a model records what its training features
    were filled with, so real-time serving fills gaps as its training night did.

    Missing = rows imputed (imputation table) + rows quarantined for a missing value; rows read =
    feature rows + quarantined rows. Aggregates only: no customer row reaches the driver.
    """
    applied, missing = applied_imputation(spark, cfg, run_date)
    features_rows = tables.read_run(spark, tables.table_ref(cfg.tables, cfg.tables.features), run_date,
                                    features_version).count()
    quarantined = 0
    ref = tables.table_ref(cfg.tables, cfg.tables.quarantine)
    if tables.exists(spark, ref):
        night = tables.read_run(spark, ref, run_date)
        quarantined = night.count()
        reasons = (
            night.select(F.explode("reasons").alias("reason"))
            .where(F.col("reason").startswith("missing_value:"))
            .groupBy("reason").count().collect()  # one row per column at most
        )
        for r in reasons:
            column = r["reason"].split(":", 1)[1]
            missing[column] = missing.get(column, 0) + int(r["count"])
    return NightCounts(applied, missing, features_rows + quarantined)


def _bundle(
    cfg: Config, run_date: dt.date, version: str, sample: pd.DataFrame, prepared: Prepared,
    candidates: list[clustering.Candidate], chosen: selection.Selection, matched: Matched, fitted: Fitted,
    explained: Explained, night: NightCounts, pinned: Pinned,
) -> store.ModelBundle:
    """Everything scoring, serving and the report need, with the train's metrics."""
    people = explained.people
    classes = [int(c) for c in fitted.forest.classes_]
    metrics = _metrics(cfg, run_date, sample, prepared, candidates, chosen, matched, fitted, explained)
    return store.ModelBundle(
        version=version,
        feature_columns=list(FEATURE_COLUMNS),
        preprocessor=prepared.prep,
        forest=fitted.forest,
        segment_names={k: people[k].name for k in classes},
        imputation=night.imputed_with,
        metrics=metrics,
        library_versions=store.library_versions(),
        trained_on=f"{tables.table_ref(cfg.tables, cfg.tables.features)} run_date={run_date} "
                   f"version={pinned.features_version}",
        clustering_space=prepared.space,
        segment_descriptions={k: people[k].description for k in classes},
        profiles=explained.profile,
        drivers_global=explained.global_drivers,
        drivers_segment=explained.segment_drivers,
        next_segment_id=matched.matching.next_id,
        lineage=matched.matching.events,
        drift_reference=drift.reference(sample, FEATURE_COLUMNS, cfg.drift.bins),
    )


def _metrics(
    cfg: Config, run_date: dt.date, sample: pd.DataFrame, prepared: Prepared, candidates: list[clustering.Candidate],
    chosen: selection.Selection, matched: Matched, fitted: Fitted, explained: Explained,
) -> dict[str, Any]:
    """The train's figures: the bundle's metrics.json and the MLflow run's metrics."""
    tcfg, labels, people = cfg.train, matched.labels, explained.people
    classes = [int(c) for c in fitted.forest.classes_]
    segments, sizes = np.unique(labels[labels != clustering.NOISE], return_counts=True)
    return {
        "run_date": run_date.isoformat(),
        "sample_rows": len(sample),
        "transform": tcfg.transform.kind,
        "clustering_space": {"kind": tcfg.space.kind, "weights": prepared.space.weights_},
        "candidates": [c.record() for c in candidates],
        "winner": chosen.winner.record(),
        "selection": chosen.record(),
        "forest": fitted.report.record(),
        "usable": fitted.usable,
        "segment_sizes": {str(k): int(v) for k, v in zip(segments, sizes)},
        "segment_names": {str(k): people[k].name for k in classes},
        "segment_descriptions": {str(k): people[k].description for k in classes},
        "persona_families": {str(k): people[k].families for k in classes},
        "lineage": {"previous_model_version": matched.matching.previous_version, "events": matched.matching.events},
    }


def _report(
    cfg: Config, run_date: dt.date, bundle: store.ModelBundle, sample: pd.DataFrame, prepared: Prepared,
    matched: Matched, candidates: list[clustering.Candidate], explained: Explained, night: NightCounts,
    chosen: selection.Selection, log,
) -> Callable | None:
    """What writes the report into the bundle's folder as it is saved (None: `train.explain.report` off)."""
    if not cfg.train.explain.report:
        return None
    column_profile = eda.column_profile(sample, FEATURE_COLUMNS, night.missing, night.rows_read)
    inputs = report_inputs(bundle, run_date, sample, prepared.X, matched.labels, candidates, explained.people,
                           column_profile, cfg.train.clustering, chosen.sentence(), sample_mode=cfg.report.sample)
    return _report_writer(inputs, log)


def _save_model(
    spark: SparkSession, cfg: Config, run_date: dt.date, bundle: store.ModelBundle,
    candidates: list[clustering.Candidate], rows: int, fitted: Fitted, explained: Explained, matched: Matched,
    report: Callable | None, log,
) -> Path:
    """The bundle (and its report) saved, then its four tables written; the bundle's folder."""
    with logs.step(log, "save model") as s:
        path = store.save(bundle, cfg.tables.models_dir, usable=fitted.usable, extras=report)
        _write_tables(spark, cfg, run_date, bundle.version, candidates, rows, fitted.usable, explained,
                      matched.matching)
        s.detail = f"version={bundle.version} usable={fitted.usable} path={path}"
    return path


def _register(
    cfg: Config, run_date: dt.date, bundle: store.ModelBundle, path: Path,
    failure: str | None, rows_read: int, pinned: Pinned, log, hold: str | None = None,
) -> int | None:
    """The MLflow run and registered version (None with the registry off); champion only without
    `failure` and without `hold` (a held version passed its gates and can be promoted by hand)."""
    if not cfg.registry.enabled:
        return None
    with logs.step(log, "register model") as s:
        registered = registry.log_training(
            cfg, run_date, bundle.metrics, path, _lineage_tags(cfg, run_date, bundle, rows_read, pinned), failure,
            save_pyfunc=pyfunc.save_model, hold=hold,
        )
        s.detail = f"{cfg.registry.model_name} version={registered} " + (
            f"{cfg.registry.alias}=no (failed its gates)" if failure is not None
            else f"{cfg.registry.alias}=no ({hold})" if hold else f"{cfg.registry.alias}=yes")
    return registered


# ---------------------------------------------------------------------------------------------
# What the steps use


def _lineage_tags(cfg: Config, run_date: dt.date, bundle, rows: int, pinned: Pinned) -> dict[str, Any]:
    """Where the version came from, as registry tags another tool can read: the features at the
    version the train read, and the state of the input they were built from."""
    features_ref = tables.table_ref(cfg.tables, cfg.tables.features)
    return {
        "source_table": redact.text(cfg.input.source),
        "run_date": run_date.isoformat(),
        "features_table": str(features_ref),
        "features_delta_version": pinned.features_version,
        "input_version": pinned.input_version,
        "rows": rows,
        "sample_rows": bundle.metrics["sample_rows"],
        "code_version": registry.code_version(),
        "bundle_version": bundle.version,
        **{f"selection.{k}": v for k, v in bundle.metrics["selection"].items() if v is not None},
        **{f"library.{k}": v for k, v in bundle.library_versions.items()},
    }


def _current_model(cfg: Config, log) -> tuple[store.ModelBundle | None, int]:
    """The model tonight's scoring would use, whose ids a retrain keeps, and the first unused id.

    A current model that cannot be loaded (another scikit-learn, say) cannot be matched: the new
    ids then start above every id its manifest lists, so none is reused with another meaning.
    A registry whose versions all failed their gates has no current model: no id was published.
    """
    try:
        version = cfg.score.model_version or registry.current(cfg)
    except RegistryMissingError:
        raise
    except ModelError as exc:
        log.info("no current model to keep segment ids from (%s)", exc)
        return None, 0
    if not version:
        return None, 0
    try:
        return registry.load(cfg, version).bundle, 0
    except ModelError as exc:
        classes = store.manifest_classes(cfg.tables.models_dir, registry.bundle_folder(cfg, version))
        log.warning("cannot match segment ids to the current model %s (%s): new ids start at %d",
                    version, exc, max(classes, default=-1) + 1)
        return None, max(classes, default=-1) + 1


def _match_ids(labels: np.ndarray, sample: pd.DataFrame, current, floor: int, tcfg) -> lineage.Matching:
    if current is None:
        return lineage.first_ids(labels, floor)
    previous, _ = current.predict(sample)
    next_id = current.next_segment_id if current.next_segment_id is not None else max(current.classes) + 1
    return lineage.match(labels, previous, current.version, next_id, tcfg.lineage.min_overlap, tcfg.lineage.part)


def _keep_names(people: dict, matching: lineage.Matching, current) -> None:
    """Kept segments keep the name campaigns know; new ones take their persona's, made unique."""
    if current is None:
        return
    for segment, previous in matching.kept.items():
        if segment in people and previous in current.segment_names:
            people[segment].name = current.segment_names[previous]
    taken = {people[k].name for k in matching.kept if k in people}
    for segment in sorted(people):
        if segment not in matching.kept and people[segment].name in taken:
            people[segment].name = f"{people[segment].name} (segment {segment})"
        taken.add(people[segment].name)


def report_inputs(bundle, run_date, sample, X, labels, candidates, people, column_profile, ccfg, chosen="",
                  sample_mode="full"):
    """Everything the report draws, computed once from the training sample (`labels`: stable ids);
    the customer rows it keeps as `report.sample` (`sample_mode`) allows."""
    from segmentation.report.inputs import ReportInputs, shared_sample

    rows = clustering.metric_rows(len(X), ccfg.metric_max_rows, ccfg.random_state)
    per_row = np.full(len(X), np.nan)
    if len(np.unique(labels[rows])) > 1:
        per_row[rows] = silhouette_samples(X[rows], labels[rows])
    pca = PCA(n_components=2, random_state=ccfg.random_state).fit(X)
    coords = pca.transform(X)
    plot_sample = sample[DISTRIBUTION_COLUMNS].astype(float).assign(
        segment_id=labels.astype(int), pc1=coords[:, 0], pc2=coords[:, 1], silhouette=per_row
    )
    segment_ids, sizes = np.unique(labels, return_counts=True)
    segments = pd.DataFrame(
        {
            "segment_id": segment_ids.astype(int),
            "name": [people[int(k)].name for k in segment_ids],
            "description": [people[int(k)].description for k in segment_ids],
            "size": sizes.astype(int),
            "share": sizes / len(labels),
        }
    )
    frame = pd.DataFrame([c.record() for c in candidates])
    return ReportInputs(
        model_version=bundle.version,
        run_date=run_date.isoformat(),
        trained_on=bundle.trained_on,
        created_at=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        forest=bundle.metrics["forest"],
        candidates=frame[
            ["algorithm", "params", "n_segments", "silhouette", "stability", "rule_agreement", "purchase_type_ari",
             "passed", "reason", "chosen", "resample_silhouette", "resample_wins", "within_noise"]
        ].astype({"silhouette": float, "stability": float, "rule_agreement": float, "purchase_type_ari": float,
                  "resample_silhouette": float, "resample_wins": float}),
        segments=segments,
        sample=shared_sample(plot_sample, sample_mode, ccfg.random_state),
        distribution_columns=list(DISTRIBUTION_COLUMNS),
        pca_explained=[float(v) for v in pca.explained_variance_ratio_],
        profiles=bundle.profiles,
        drivers_global=bundle.drivers_global,
        drivers_segment=bundle.drivers_segment,
        eda=column_profile,
        correlation=eda.correlation(sample, FEATURE_COLUMNS),
        key_features=list(KEY_FEATURES),
        rule_threshold=ccfg.guardrails.max_rule_agreement,
        selection=chosen,
    )


def _report_writer(inputs, log) -> Callable:
    def write(folder) -> None:
        from segmentation.report.inputs import FOLDER, save
        from segmentation.report.render import write_report

        with logs.step(log, "write report") as s:
            save(inputs, folder / FOLDER)
            html, md = write_report(inputs, folder)
            s.detail = f"{html.name} ({html.stat().st_size // 1024} KiB), {md.name}"

    return write


def _write_tables(
    spark: SparkSession, cfg: Config, run_date: dt.date, version: str, candidates: list[clustering.Candidate],
    rows: int, usable: bool, explained: Explained, matching: lineage.Matching,
) -> None:
    """The model's rows of clustering_candidates, segment_profiles, segment_drivers and segment_lineage."""
    _write_candidates(spark, cfg, version, run_date, candidates, rows, usable=usable)
    _replace_model_rows(spark, cfg, cfg.tables.segment_profiles, version,
                        profiles.table_rows(explained.profile, version), profiles.PROFILES_SCHEMA)
    _replace_model_rows(spark, cfg, cfg.tables.segment_drivers, version,
                        drivers.table_rows(explained.global_drivers, explained.segment_drivers, version),
                        drivers.DRIVERS_SCHEMA)
    _replace_model_rows(spark, cfg, cfg.tables.segment_lineage, version, lineage.table_rows(matching, version),
                        lineage.LINEAGE_SCHEMA)


def _write_candidates(
    spark: SparkSession, cfg: Config, version: str, run_date: dt.date, candidates: list[clustering.Candidate],
    rows: int, usable: bool,
) -> None:
    # mergeSchema: a candidates table from before a figure was added gains its column.
    _replace_model_rows(spark, cfg, cfg.tables.clustering_candidates, version,
                        candidates_table.table_rows(candidates, version, run_date, rows, usable),
                        candidates_table.CANDIDATES_SCHEMA, merge_schema=True)


def _replace_model_rows(
    spark: SparkSession, cfg: Config, table: str, version: str, rows: list[dict[str, Any]], schema: StructType,
    merge_schema: bool = False,
) -> None:
    """Replaces the model version's rows of `table` with `rows` (built by the table's owner)."""
    tables.replace_key(spark.createDataFrame(rows, schema), tables.table_ref(cfg.tables, table), "model_version",
                       version, merge_schema=merge_schema)
