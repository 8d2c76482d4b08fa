"""The train stage: sample -> clustering comparison -> forest -> personas, drivers, report -> bundle.

Everything after the sample runs on the driver in pandas and scikit-learn; Spark is used only to
draw the bounded sample, read the night's counts and write the small per-model tables.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Callable

import numpy as np
import pandas as pd
from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import (
    BooleanType,
    DateType,
    DoubleType,
    IntegerType,
    StringType,
    StructField,
    StructType,
)
from sklearn.decomposition import PCA
from sklearn.metrics import silhouette_samples
from threadpoolctl import threadpool_limits

from segmentation.core import logs
from segmentation.core.columns import (
    FEATURE_COLUMNS,
    INDICATOR_COLUMNS,
    LOG_COLUMNS,
    PURCHASE_TYPES,
    RAW_NUMERIC_COLUMNS,
    RUN_DATE,
)
from segmentation.core.config import Config
from segmentation.core.errors import ModelError, TrainingError
from segmentation.downstream import drift
from segmentation.features.stage import run_features
from segmentation.io import tables
from segmentation.model import registry, store
from segmentation.serving import pyfunc
from segmentation.train import classifier, clustering, drivers, eda, lineage, personas, profiles
from segmentation.train.preprocessing import ClusteringSpace, LogScaler
from segmentation.train.sampling import driver_sample

# The raw columns whose distributions the report draws, and the figures on persona cards.
DISTRIBUTION_COLUMNS = ["BALANCE", "PURCHASES", "CASH_ADVANCE", "CREDIT_LIMIT", "PAYMENTS", "MINIMUM_PAYMENTS"]
KEY_FEATURES = ["BALANCE", "PURCHASES", "CASH_ADVANCE", "CREDIT_LIMIT", "PRC_FULL_PAYMENT", "LIMIT_USAGE", "TENURE"]

CANDIDATES_SCHEMA = StructType(
    [
        StructField("model_version", StringType(), False),
        StructField(RUN_DATE, DateType(), False),
        StructField("algorithm", StringType(), False),
        StructField("params", StringType(), False),
        StructField("n_segments", IntegerType(), False),
        StructField("silhouette", DoubleType(), True),
        StructField("calinski_harabasz", DoubleType(), True),
        StructField("davies_bouldin", DoubleType(), True),
        StructField("noise_share", DoubleType(), False),
        StructField("smallest_share", DoubleType(), False),
        StructField("stability", DoubleType(), True),
        StructField("bic", DoubleType(), True),
        StructField("passed", BooleanType(), False),
        StructField("reason", StringType(), False),
        StructField("chosen", BooleanType(), False),
        StructField("fit_seconds", DoubleType(), False),
        StructField("sample_rows", IntegerType(), False),
        StructField("model_usable", BooleanType(), False),
        StructField("largest_share", DoubleType(), True),
        StructField("rule_agreement", DoubleType(), True),
        StructField("purchase_type_ari", DoubleType(), True),
    ]
)


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def purchase_type(sample: pd.DataFrame) -> np.ndarray:
    """The notebook's purchase type, recovered from the one-hot indicator columns."""
    return np.array(PURCHASE_TYPES)[sample[INDICATOR_COLUMNS].to_numpy().argmax(axis=1)]


def _train_sample(spark: SparkSession, cfg: Config, run_date: dt.date, ensure_features: Callable) -> pd.DataFrame:
    """The bounded driver sample of the date's features, building the features first if absent."""
    features_ref = tables.table_ref(cfg.tables, cfg.tables.features)
    scfg = cfg.train.sample
    if not tables.exists(spark, features_ref) or tables.read_run(spark, features_ref, run_date).isEmpty():
        logs.get("train").info("no features for %s yet: running the features stage first", run_date)
        ensure_features(spark, cfg, run_date)
    features = tables.read_run(spark, features_ref, run_date)
    return driver_sample(features, FEATURE_COLUMNS, scfg.max_rows, scfg.seed)


def _night_counts(spark: SparkSession, cfg: Config, run_date: dt.date) -> tuple[dict[str, float], dict[str, int], int]:
    """(medians used, missing values per column, rows read) of the night, from its small tables.

    Missing = rows imputed (imputation table) + rows quarantined for a missing value; rows read =
    feature rows + quarantined rows. Aggregates only: no customer row reaches the driver.
    """
    medians: dict[str, float] = {}
    missing: dict[str, int] = {}
    ref = tables.table_ref(cfg.tables, cfg.tables.imputation)
    if tables.exists(spark, ref):
        imputation = tables.read_run(spark, ref, run_date)
        has_counts = "rows_imputed" in imputation.columns
        for r in imputation.collect():  # one row per imputed column
            medians[r["column"]] = float(r["value"])
            missing[r["column"]] = int(r["rows_imputed"] or 0) if has_counts else 0
    features_rows = tables.read_run(spark, tables.table_ref(cfg.tables, cfg.tables.features), run_date).count()
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
    return medians, missing, features_rows + quarantined


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
    tcfg, ccfg = cfg.train, cfg.train.clustering
    version = store.new_version()
    with logs.step(log, "sample features") as s:
        sample = _train_sample(spark, cfg, run_date, ensure_features)
        s.rows = len(sample)
        s.detail = f"cap={tcfg.sample.max_rows} seed={tcfg.sample.seed}"
    with logs.step(log, "transform") as s:
        prep = LogScaler(FEATURE_COLUMNS, LOG_COLUMNS, tcfg.transform.kind, tcfg.transform.offset).fit(sample)
        scaled = prep.transform(sample)
        space = ClusteringSpace(FEATURE_COLUMNS, tcfg.space.families, tcfg.space.kind).fit()
        X = space.transform(scaled)
        s.rows = len(X)
        s.detail = f"kind={tcfg.transform.kind} space={tcfg.space.kind} columns={len(space.space_columns_)}"
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
    try:
        winner = clustering.choose(candidates, ccfg.tie_tolerance)
    except TrainingError as exc:
        _write_candidates(spark, cfg, version, run_date, candidates, len(X), usable=False)
        if cfg.registry.enabled:  # no model to register, but the run and its candidates are on record
            registry.log_training(cfg, run_date, {"candidates": [c.record() for c in candidates], "sample_rows": len(X)},
                                  None, {"bundle_version": version}, str(exc))
        raise
    log.info(
        "winner: %s silhouette=%s segments=%d stability=%s rule_agreement=%s purchase_type_ari=%s",
        winner.name, _fmt(winner.silhouette), winner.n_segments, _fmt(winner.stability),
        _fmt(winner.rule_agreement), _fmt(winner.purchase_type_ari),
    )
    with logs.step(log, "match segment ids") as s:
        current, floor = _current_model(cfg, log)
        matching = _match_ids(winner.labels, sample, current, floor, tcfg)
        labels = matching.relabel(winner.labels)
        s.rows = len(labels)
        s.detail = (f"previous={matching.previous_version or 'none'} " + " ".join(
            f"{e['relation']}:{e['previous_segment_ids']}->{e['segment_ids']}" for e in matching.events))
    with logs.step(log, "train forest") as s:
        forest, report = classifier.train_forest(sample[FEATURE_COLUMNS].to_numpy(dtype=float), labels, tcfg.forest)
        s.rows = report.train_rows
        s.detail = f"test_rows={report.test_rows} accuracy={report.accuracy:.4f} macro_f1={report.macro_f1:.4f} " + (
            "per_segment_f1=" + ",".join(f"{k}:{v:.3f}" for k, v in report.per_segment_f1.items())
        )
    usable = report.macro_f1 >= tcfg.forest.min_macro_f1
    with logs.step(log, "profiles, personas and drivers") as s:
        profile = profiles.segment_profiles(sample, scaled, labels, FEATURE_COLUMNS)
        people = personas.build(profile, tcfg.explain.trait_threshold)
        _keep_names(people, matching, current)
        profile = profiles.with_names(profile, {k: p.name for k, p in people.items()})
        global_drivers = drivers.global_drivers(
            forest, report.X_test, report.y_test, FEATURE_COLUMNS, tcfg.explain.permutation_repeats,
            tcfg.forest.random_state,
        )
        segment_drivers = drivers.segment_drivers(profile)
        s.rows = len(sample)
        s.detail = " | ".join(f"{k}: {p.name}" for k, p in sorted(people.items()))
    for k, p in sorted(people.items()):
        log.info("segment %d %r (%d%%): %s", k, p.name, round(100 * float(np.mean(labels == k))), p.description)
    classes = [int(c) for c in forest.classes_]
    names = {k: people[k].name for k in classes}
    segments, sizes = np.unique(labels[labels != clustering.NOISE], return_counts=True)
    metrics = {
        "run_date": run_date.isoformat(),
        "sample_rows": len(sample),
        "transform": tcfg.transform.kind,
        "clustering_space": {"kind": tcfg.space.kind, "weights": space.weights_},
        "candidates": [c.record() for c in candidates],
        "winner": winner.record(),
        "forest": report.record(),
        "usable": usable,
        "segment_sizes": {str(k): int(v) for k, v in zip(segments, sizes)},
        "segment_names": {str(k): v for k, v in names.items()},
        "segment_descriptions": {str(k): people[k].description for k in classes},
        "persona_families": {str(k): people[k].families for k in classes},
        "lineage": {"previous_model_version": matching.previous_version, "events": matching.events},
    }
    medians, missing, rows_read = _night_counts(spark, cfg, run_date)
    bundle = store.ModelBundle(
        version=version,
        feature_columns=list(FEATURE_COLUMNS),
        preprocessor=prep,
        forest=forest,
        segment_names=names,
        imputation=medians,
        metrics=metrics,
        library_versions=store.library_versions(),
        trained_on=f"{tables.table_ref(cfg.tables, cfg.tables.features)} run_date={run_date}",
        clustering_space=space,
        segment_descriptions={k: people[k].description for k in classes},
        profiles=profile,
        drivers_global=global_drivers,
        drivers_segment=segment_drivers,
        next_segment_id=matching.next_id,
        lineage=matching.events,
        drift_reference=drift.reference(sample, FEATURE_COLUMNS, cfg.drift.bins),
    )
    extras = None
    if tcfg.explain.report:
        inputs = report_inputs(
            bundle, run_date, sample, X, labels, candidates, people, eda.column_profile(
                sample, FEATURE_COLUMNS, missing, rows_read
            ), ccfg,
        )
        extras = _report_writer(inputs, log)
    with logs.step(log, "save model") as s:
        path = store.save(bundle, cfg.tables.models_dir, usable=usable, extras=extras)
        _write_candidates(spark, cfg, version, run_date, candidates, len(X), usable=usable)
        _write_explanations(spark, cfg, version, profile, global_drivers, segment_drivers)
        tables.replace_key(
            spark.createDataFrame(lineage.table_rows(matching, version), lineage.LINEAGE_SCHEMA),
            tables.table_ref(cfg.tables, cfg.tables.segment_lineage), "model_version", version,
        )
        s.detail = f"version={version} usable={usable} path={path}"
    failure = None if usable else (
        f"the forest agrees with the clusterer at macro-F1 {report.macro_f1:.4f} on held-out rows, below "
        f"train.forest.min_macro_f1={tcfg.forest.min_macro_f1}"
    )
    registered = None
    if cfg.registry.enabled:
        with logs.step(log, "register model") as s:
            registered = registry.log_training(
                cfg, run_date, metrics, path, _lineage_tags(spark, cfg, run_date, bundle, rows_read), failure,
                save_pyfunc=pyfunc.save_model, hold=hold,
            )
            s.detail = f"{cfg.registry.model_name} version={registered} " + (
                f"{cfg.registry.alias}=no (failed its gates)" if failure is not None
                else f"{cfg.registry.alias}=no ({hold})" if hold else f"{cfg.registry.alias}=yes")
    if failure is not None:
        where = f"registered as {cfg.registry.model_name} version {registered}, " if registered else ""
        raise TrainingError(f"{failure}; model {version} kept at {path} ({where}never {cfg.registry.alias}) but not used")
    return {
        "model_version": version,
        "registry_version": registered,
        "held": hold,
        "model_path": str(path),
        "metrics": metrics,
        "sample_rows": len(sample),
        "tables": [
            str(tables.table_ref(cfg.tables, name))
            for name in (cfg.tables.clustering_candidates, cfg.tables.segment_profiles, cfg.tables.segment_drivers,
                         cfg.tables.segment_lineage)
        ],
    }


def _lineage_tags(spark: SparkSession, cfg: Config, run_date: dt.date, bundle, rows: int) -> dict[str, Any]:
    """Where the version came from, as registry tags another tool can read."""
    features_ref = tables.table_ref(cfg.tables, cfg.tables.features)
    return {
        "source_table": cfg.input.source,
        "run_date": run_date.isoformat(),
        "features_table": str(features_ref),
        "features_delta_version": tables.latest_version(spark, features_ref),
        "rows": rows,
        "sample_rows": bundle.metrics["sample_rows"],
        "code_version": registry.code_version(),
        "bundle_version": bundle.version,
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


def report_inputs(bundle, run_date, sample, X, labels, candidates, people, column_profile, ccfg):
    """Everything the report draws, computed once from the training sample (`labels`: stable ids)."""
    from segmentation.report.inputs import ReportInputs

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
             "passed", "reason", "chosen"]
        ].astype({"silhouette": float, "stability": float, "rule_agreement": float, "purchase_type_ari": float}),
        segments=segments,
        sample=plot_sample,
        distribution_columns=list(DISTRIBUTION_COLUMNS),
        pca_explained=[float(v) for v in pca.explained_variance_ratio_],
        profiles=bundle.profiles,
        drivers_global=bundle.drivers_global,
        drivers_segment=bundle.drivers_segment,
        eda=column_profile,
        correlation=eda.correlation(sample, FEATURE_COLUMNS),
        key_features=list(KEY_FEATURES),
        rule_threshold=ccfg.guardrails.max_rule_agreement,
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


def _write_candidates(spark, cfg: Config, version: str, run_date: dt.date, candidates, rows: int, usable: bool) -> None:
    ref = tables.table_ref(cfg.tables, cfg.tables.clustering_candidates)
    records = []
    for c in candidates:
        r = c.record()
        records.append(
            (version, run_date, r["algorithm"], r["params"], r["n_segments"], r["silhouette"], r["calinski_harabasz"],
             r["davies_bouldin"], r["noise_share"], r["smallest_share"], r["stability"], r["bic"], r["passed"],
             r["reason"], r["chosen"], float(r["fit_seconds"]), rows, usable, r["largest_share"], r["rule_agreement"],
             r["purchase_type_ari"])
        )
    frame = spark.createDataFrame(records, CANDIDATES_SCHEMA)
    tables.replace_key(frame, ref, "model_version", version, merge_schema=True)


def _write_explanations(spark, cfg: Config, version: str, profile, global_drivers, segment_drivers) -> None:
    tables.replace_key(
        spark.createDataFrame(profiles.table_rows(profile, version), profiles.PROFILES_SCHEMA),
        tables.table_ref(cfg.tables, cfg.tables.segment_profiles), "model_version", version,
    )
    tables.replace_key(
        spark.createDataFrame(drivers.table_rows(global_drivers, segment_drivers, version), drivers.DRIVERS_SCHEMA),
        tables.table_ref(cfg.tables, cfg.tables.segment_drivers), "model_version", version,
    )
