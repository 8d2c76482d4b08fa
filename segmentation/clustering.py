"""Compare K-Means, DBSCAN and a Gaussian mixture on the scaled sample by silhouette."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.cluster import DBSCAN, KMeans
from sklearn.metrics import silhouette_score
from sklearn.mixture import GaussianMixture

from segmentation.config import ClusteringConfig
from segmentation.errors import TrainingError

NOISE = -1


@dataclass
class Candidate:
    algorithm: str
    params: dict[str, Any]
    labels: np.ndarray = field(repr=False)
    fit_seconds: float
    silhouette: float | None = None
    n_segments: int = 0
    noise_share: float = 0.0
    smallest_share: float = 0.0

    def record(self) -> dict[str, Any]:
        """The JSON-ready row of the candidate table."""
        return {
            "algorithm": self.algorithm,
            "params": self.params,
            "n_segments": self.n_segments,
            "silhouette": self.silhouette,
            "noise_share": self.noise_share,
            "smallest_share": self.smallest_share,
            "fit_seconds": round(self.fit_seconds, 3),
        }


def _specs(cfg: ClusteringConfig) -> list[tuple[str, dict[str, Any]]]:
    specs: list[tuple[str, dict[str, Any]]] = []
    for algorithm in cfg.algorithms:
        if algorithm == "kmeans":
            specs += [("kmeans", {"n_clusters": k, "n_init": cfg.kmeans.n_init}) for k in cfg.kmeans.k]
        elif algorithm == "gmm":
            specs += [("gmm", {"n_components": k, "n_init": cfg.gmm.n_init}) for k in cfg.gmm.k]
        elif algorithm == "dbscan":
            specs += [
                ("dbscan", {"eps": eps, "min_samples": m})
                for eps in cfg.dbscan.eps
                for m in cfg.dbscan.min_samples
            ]
        else:
            raise ValueError(f"unknown clustering algorithm {algorithm!r}")
    return specs


def fit_labels(algorithm: str, params: dict[str, Any], X: np.ndarray, random_state: int) -> np.ndarray:
    if algorithm == "kmeans":
        model = KMeans(init="k-means++", random_state=random_state, **params)
        return model.fit_predict(X)
    if algorithm == "gmm":
        return GaussianMixture(random_state=random_state, **params).fit(X).predict(X)
    if algorithm == "dbscan":
        return DBSCAN(**params).fit_predict(X)
    raise ValueError(f"unknown clustering algorithm {algorithm!r}")


def silhouette(X: np.ndarray, labels: np.ndarray, noise: str) -> float | None:
    """None when the labelling has fewer than two groups to compare."""
    if noise == "drop":
        keep = labels != NOISE
        X, labels = X[keep], labels[keep]
    groups = np.unique(labels)
    if len(groups) < 2 or len(groups) >= len(labels):
        return None
    return float(silhouette_score(X, labels))


def evaluate(X: np.ndarray, cfg: ClusteringConfig) -> list[Candidate]:
    candidates = []
    for algorithm, params in _specs(cfg):
        start = time.perf_counter()
        labels = fit_labels(algorithm, params, X, cfg.random_state)
        seconds = time.perf_counter() - start
        segments, counts = np.unique(labels[labels != NOISE], return_counts=True)
        noise = cfg.dbscan_noise_in_silhouette if algorithm == "dbscan" else "cluster"
        candidates.append(
            Candidate(
                algorithm=algorithm,
                params=params,
                labels=labels,
                fit_seconds=seconds,
                silhouette=silhouette(X, labels, noise),
                n_segments=int(len(segments)),
                noise_share=float(np.mean(labels == NOISE)),
                smallest_share=float(counts.min() / len(labels)) if len(counts) else 0.0,
            )
        )
    return candidates


def choose(candidates: list[Candidate]) -> Candidate:
    scored = [c for c in candidates if c.silhouette is not None]
    if not scored:
        raise TrainingError("no clustering candidate produced two or more segments")
    return max(scored, key=lambda c: c.silhouette)
