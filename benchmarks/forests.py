"""Forest measurements shared by the benchmarks: same sample, same labels, same rows."""

from __future__ import annotations

import json
import pickle
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd

from segmentation.core.columns import FEATURE_COLUMNS, LOG_COLUMNS
from segmentation.core.config import Config, ForestConfig
from segmentation.train import classifier, clustering
from segmentation.train.preprocessing import ClusteringSpace, LogScaler

# The notebook's forest: 150 trees grown to full depth.
NOTEBOOK = ForestConfig(n_estimators=150, max_depth=None, min_samples_leaf=1)


@dataclass
class ForestFigures:
    n_estimators: int
    max_depth: int | None
    min_samples_leaf: int
    kib: float
    rows_per_s: float
    macro_f1: float
    predicted: np.ndarray

    def label(self) -> str:
        return f"{self.n_estimators} trees, depth {self.max_depth or 'full'}, leaf {self.min_samples_leaf}"


def winner_labeller(sample: pd.DataFrame, cfg: Config, winner: dict) -> tuple[np.ndarray, Callable | None]:
    """Refits the trained model's winning clusterer on the sample in the space training clusters
    in (scaled, then family-weighted), so every forest learns the model's own labels.

    Also returns a function labelling other customers the same way (None for DBSCAN, which
    labels only the rows it was fitted on).
    """
    tcfg = cfg.train
    scaler = LogScaler(FEATURE_COLUMNS, LOG_COLUMNS, tcfg.transform.kind, tcfg.transform.offset).fit(sample)
    space = ClusteringSpace(FEATURE_COLUMNS, tcfg.space.families, tcfg.space.kind).fit()
    X = space.transform(scaler.transform(sample))
    params = json.loads(winner["params"])
    labels, model = clustering.fit_labels(winner["algorithm"], params, X, tcfg.clustering.random_state)
    if not hasattr(model, "predict"):
        return labels, None
    return labels, lambda other: model.predict(space.transform(scaler.transform(other)))


def winner_labels(sample: pd.DataFrame, cfg: Config, winner: dict) -> np.ndarray:
    return winner_labeller(sample, cfg, winner)[0]


def single_thread_rows_per_s(forest, X: np.ndarray, repeats: int = 3) -> float:
    """Best of `repeats` one-thread predict_proba passes: the least disturbed by a shared machine."""
    forest.n_jobs = 1
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        forest.predict_proba(X)
        best = min(best, time.perf_counter() - start)
    return len(X) / best


def measure(sizing: ForestConfig, base: ForestConfig, X: np.ndarray, labels: np.ndarray,
            X_eval: np.ndarray, repeats: int = 3) -> ForestFigures:
    """Trains one forest shape with the product's split and class weights; times it on X_eval."""
    cfg = base.model_copy(update={"n_estimators": sizing.n_estimators, "max_depth": sizing.max_depth,
                                  "min_samples_leaf": sizing.min_samples_leaf})
    forest, report = classifier.train_forest(X, labels, cfg)
    return ForestFigures(
        n_estimators=cfg.n_estimators,
        max_depth=cfg.max_depth,
        min_samples_leaf=cfg.min_samples_leaf,
        kib=len(pickle.dumps(forest, protocol=pickle.HIGHEST_PROTOCOL)) / 1024,
        rows_per_s=single_thread_rows_per_s(forest, X_eval, repeats),
        macro_f1=report.macro_f1,
        predicted=forest.predict(X_eval),
    )


@dataclass
class Hardness:
    """How hard a table's customers are to segment: the notebook forest on the model's labels."""

    rows: int
    segments: int
    macro_f1: float
    kib: float


# Targets of issue 15: generated customers within these of the real file's figures.
F1_TOLERANCE = 0.01
KIB_TOLERANCE = 0.15


def hardness(spark, cfg: Config, run_date, labeller: Callable | None = None) -> tuple[Hardness, Callable | None]:
    """The notebook's forest (150 full-depth trees) on the labels of `cfg`'s input: its held-out
    macro-F1 and its bundle size, with the function that made the labels.

    Runs features on the input; then, without `labeller`, the default train, and the labels are
    the trained model's (each data's own model); with it, `labeller`'s (another data's model).
    """
    from segmentation.features.stage import run_features
    from segmentation.train.stage import run_train
    from segmentation.io import tables
    from segmentation.train.sampling import driver_sample

    features_ref = tables.table_ref(cfg.tables, cfg.tables.features)
    if not tables.exists(spark, features_ref) or tables.read_run(spark, features_ref, run_date).isEmpty():
        run_features(spark, cfg, run_date)
    features = tables.read_run(spark, features_ref, run_date)
    sample = driver_sample(features, FEATURE_COLUMNS, cfg.train.sample.max_rows, cfg.train.sample.seed)
    if labeller is None:
        trained = run_train(spark, cfg, run_date)
        labels, labeller = winner_labeller(sample, cfg, trained["metrics"]["winner"])
    else:
        labels = labeller(sample)
    X = sample[FEATURE_COLUMNS].to_numpy(dtype=np.float64)
    figures = measure(NOTEBOOK, cfg.train.forest, X, labels, X[:1000], repeats=1)
    return Hardness(rows=len(X), segments=len(np.unique(labels)), macro_f1=figures.macro_f1, kib=figures.kib), labeller


def within_targets(real: Hardness, generated: Hardness) -> tuple[bool, bool]:
    """(macro-F1 within F1_TOLERANCE, bundle size within KIB_TOLERANCE) of the real file's."""
    return (abs(generated.macro_f1 - real.macro_f1) <= F1_TOLERANCE,
            abs(generated.kib - real.kib) <= KIB_TOLERANCE * real.kib)
