"""The RandomForest surrogate: learns the chosen clustering so every customer can be scored."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import accuracy_score, f1_score
from sklearn.model_selection import train_test_split

from segmentation.core.columns import NOISE
from segmentation.core.config import ForestConfig


@dataclass
class ForestReport:
    accuracy: float
    macro_f1: float
    per_segment_f1: dict[int, float]
    train_rows: int
    test_rows: int
    stratified: bool
    # The held-out rows themselves, for permutation importance; not part of the record.
    X_test: np.ndarray | None = field(default=None, repr=False)
    y_test: np.ndarray | None = field(default=None, repr=False)

    def record(self) -> dict[str, Any]:
        return {
            "accuracy": self.accuracy,
            "macro_f1": self.macro_f1,
            "per_segment_f1": {str(k): v for k, v in self.per_segment_f1.items()},
            "train_rows": self.train_rows,
            "test_rows": self.test_rows,
            "stratified": self.stratified,
        }


def build_forest(cfg: ForestConfig, n_jobs: int = -1) -> RandomForestClassifier:
    return RandomForestClassifier(
        n_estimators=cfg.n_estimators,
        max_depth=cfg.max_depth,
        min_samples_leaf=cfg.min_samples_leaf,
        class_weight=cfg.class_weight,
        random_state=cfg.random_state,
        n_jobs=n_jobs,
    )


def train_forest(X: np.ndarray, labels: np.ndarray, cfg: ForestConfig) -> tuple[RandomForestClassifier, ForestReport]:
    """Fits on a stratified split of the non-noise rows and reports held-out agreement."""
    keep = labels != NOISE
    X, y = X[keep], labels[keep]
    _, counts = np.unique(y, return_counts=True)
    # Stratifying needs two members per class on each side; a tiny class falls back to random.
    stratified = bool(counts.min() >= 2)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=cfg.test_size, random_state=cfg.random_state, stratify=y if stratified else None
    )
    forest = build_forest(cfg).fit(X_train, y_train)
    predicted = forest.predict(X_test)
    classes = np.unique(y)
    per_segment = f1_score(y_test, predicted, labels=classes, average=None, zero_division=0)
    report = ForestReport(
        accuracy=float(accuracy_score(y_test, predicted)),
        macro_f1=float(f1_score(y_test, predicted, average="macro", zero_division=0)),
        per_segment_f1={int(c): float(s) for c, s in zip(classes, per_segment)},
        train_rows=int(len(y_train)),
        test_rows=int(len(y_test)),
        stratified=stratified,
        X_test=X_test,
        y_test=y_test,
    )
    forest.n_jobs = 1  # scoring runs one forest per Spark task; Spark supplies the parallelism
    return forest, report
