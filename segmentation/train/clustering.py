"""Clustering candidates: fit each one, score all on the same rows, keep those a team can use.

Every candidate sees the same scaled sample and the same metrics; guardrails from config
reject labelings that are no use as campaign segments; `selection` chooses among the rest.
`choose` is the one-sample rule: the best silhouette, near-ties going to the more stable.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.cluster import DBSCAN, KMeans
from sklearn.metrics import (
    adjusted_rand_score,
    calinski_harabasz_score,
    davies_bouldin_score,
    silhouette_score,
)
from sklearn.mixture import GaussianMixture
from sklearn.neighbors import NearestNeighbors
from sklearn.tree import DecisionTreeClassifier

from segmentation.core.columns import NOISE
from segmentation.core.config import ClusteringConfig, GuardrailsConfig
from segmentation.core.errors import TrainingError


@dataclass
class Candidate:
    algorithm: str
    params: dict[str, Any]
    labels: np.ndarray = field(repr=False)
    fit_seconds: float
    n_segments: int = 0
    noise_share: float = 0.0
    smallest_share: float = 0.0
    largest_share: float = 0.0
    silhouette: float | None = None
    calinski_harabasz: float | None = None
    davies_bouldin: float | None = None
    stability: float | None = None
    bic: float | None = None
    rule_agreement: float | None = None
    purchase_type_ari: float | None = None
    passed: bool = True
    reason: str = ""
    chosen: bool = False
    # The selection's figures (None when it did not resample, or the candidate failed a guardrail).
    resample_silhouette: float | None = None
    resample_sd: float | None = None
    resample_wins: int | None = None
    within_noise: bool | None = None

    @property
    def name(self) -> str:
        return f"{self.algorithm}({', '.join(f'{k}={v}' for k, v in self.params.items())})"

    def record(self) -> dict[str, Any]:
        """A row of the candidate table (bundle metrics and the Delta table)."""
        return {
            "algorithm": self.algorithm,
            "params": json.dumps(self.params, sort_keys=True),
            "n_segments": self.n_segments,
            "silhouette": self.silhouette,
            "calinski_harabasz": self.calinski_harabasz,
            "davies_bouldin": self.davies_bouldin,
            "noise_share": self.noise_share,
            "smallest_share": self.smallest_share,
            "largest_share": self.largest_share,
            "stability": self.stability,
            "bic": self.bic,
            "rule_agreement": self.rule_agreement,
            "purchase_type_ari": self.purchase_type_ari,
            "passed": self.passed,
            "reason": self.reason,
            "chosen": self.chosen,
            "fit_seconds": round(self.fit_seconds, 3),
            "resample_silhouette": self.resample_silhouette,
            "resample_sd": self.resample_sd,
            "resample_wins": self.resample_wins,
            "within_noise": self.within_noise,
        }


def k_distance_eps(X: np.ndarray, min_samples: int, quantiles: list[float]) -> list[float]:
    """eps values at quantiles of the distance to each row's min_samples-th neighbour."""
    distances, _ = NearestNeighbors(n_neighbors=min_samples).fit(X).kneighbors(X)
    kth = distances[:, -1]
    return sorted({round(float(np.quantile(kth, q)), 3) for q in quantiles})


def candidate_specs(X: np.ndarray, cfg: ClusteringConfig) -> list[tuple[str, dict[str, Any]]]:
    specs: list[tuple[str, dict[str, Any]]] = []
    for algorithm in cfg.algorithms:
        if algorithm == "kmeans":
            specs += [("kmeans", {"n_clusters": k, "n_init": cfg.kmeans.n_init}) for k in cfg.kmeans.k]
        elif algorithm == "gmm":
            specs += [("gmm", {"n_components": k, "n_init": cfg.gmm.n_init}) for k in cfg.gmm.k]
        elif algorithm == "dbscan":
            for m in cfg.dbscan.min_samples:
                eps_values = cfg.dbscan.eps or k_distance_eps(X, m, cfg.dbscan.eps_quantiles)
                specs += [("dbscan", {"eps": eps, "min_samples": m}) for eps in eps_values]
        else:
            raise TrainingError(f"unknown clustering algorithm {algorithm!r} (known: kmeans, gmm, dbscan)")
    return specs


def fit_labels(algorithm: str, params: dict[str, Any], X: np.ndarray, random_state: int) -> tuple[np.ndarray, Any]:
    if algorithm == "kmeans":
        model = KMeans(init="k-means++", random_state=random_state, **params)
        return model.fit_predict(X), model
    if algorithm == "gmm":
        model = GaussianMixture(random_state=random_state, **params).fit(X)
        return model.predict(X), model
    if algorithm == "dbscan":
        model = DBSCAN(**params)
        return model.fit_predict(X), model
    raise TrainingError(f"unknown clustering algorithm {algorithm!r}")


def _scored_rows(X: np.ndarray, labels: np.ndarray, noise: str) -> tuple[np.ndarray, np.ndarray]:
    """The rows and labels the quality metrics see: noise dropped, or kept as one more group."""
    if noise == "drop":
        keep = labels != NOISE
        return X[keep], labels[keep]
    return X, labels


def quality(X: np.ndarray, labels: np.ndarray, noise: str) -> tuple[float | None, float | None, float | None]:
    """(silhouette, Calinski-Harabasz, Davies-Bouldin); None when fewer than two groups."""
    X, labels = _scored_rows(X, labels, noise)
    groups = len(np.unique(labels))
    if groups < 2 or groups >= len(labels):
        return None, None, None
    return (
        float(silhouette_score(X, labels)),
        float(calinski_harabasz_score(X, labels)),
        float(davies_bouldin_score(X, labels)),
    )


def silhouette_of(X: np.ndarray, labels: np.ndarray, noise: str) -> float | None:
    """The silhouette alone (what the selection resamples); None when fewer than two groups."""
    X, labels = _scored_rows(X, labels, noise)
    groups = len(np.unique(labels))
    if groups < 2 or groups >= len(labels):
        return None
    return float(silhouette_score(X, labels))


def stability(
    algorithm: str, params: dict[str, Any], X: np.ndarray, labels: np.ndarray,
    resamples: int, fraction: float, random_state: int,
) -> float | None:
    """Mean adjusted Rand index between the labels and refits on random subsamples of the rows."""
    if resamples <= 0:
        return None
    rng = np.random.default_rng(random_state)
    size = max(2, int(round(fraction * len(X))))
    scores = []
    for b in range(resamples):
        idx = np.sort(rng.choice(len(X), size=size, replace=False))
        refit, _ = fit_labels(algorithm, params, X[idx], random_state + b + 1)
        scores.append(adjusted_rand_score(labels[idx], refit))
    return float(np.mean(scores))


def metric_rows(n: int, max_rows: int, random_state: int) -> np.ndarray:
    """Indices of the bounded subsample every candidate is measured on (all rows if few)."""
    if n <= max_rows:
        return np.arange(n)
    return np.sort(np.random.default_rng(random_state).choice(n, size=max_rows, replace=False))


def rule_agreement(raw: np.ndarray, labels: np.ndarray, depth: int, random_state: int) -> float:
    """Share of rows a `depth`-level decision tree on the raw columns labels as the clusterer did.

    Fitted and measured on the same rows on purpose: the question is whether such a rule can
    describe the labelling at all, not whether it generalises.
    """
    if len(np.unique(labels)) < 2:
        return 1.0
    tree = DecisionTreeClassifier(max_depth=depth, random_state=random_state).fit(raw, labels)
    return float(tree.score(raw, labels))


def evaluate(
    X: np.ndarray, cfg: ClusteringConfig, raw: np.ndarray | None = None, purchase_type: np.ndarray | None = None,
) -> list[Candidate]:
    """Fits every candidate on X and measures all of them on the same seeded subsample.

    `raw` (the unscaled input columns) and `purchase_type` add the rule-agreement figures.
    """
    candidates = []
    rows = metric_rows(len(X), cfg.metric_max_rows, cfg.random_state)
    X_metric = X[rows]
    for algorithm, params in candidate_specs(X, cfg):
        start = time.perf_counter()
        labels, model = fit_labels(algorithm, params, X, cfg.random_state)
        seconds = time.perf_counter() - start
        segments, counts = np.unique(labels[labels != NOISE], return_counts=True)
        noise = cfg.dbscan_noise_in_silhouette if algorithm == "dbscan" else "cluster"
        sil, ch, db = quality(X_metric, labels[rows], noise)
        candidates.append(
            Candidate(
                algorithm=algorithm,
                params=params,
                labels=labels,
                fit_seconds=seconds,
                n_segments=int(len(segments)),
                noise_share=float(np.mean(labels == NOISE)),
                smallest_share=float(counts.min() / len(labels)) if len(counts) else 0.0,
                largest_share=float(counts.max() / len(labels)) if len(counts) else 0.0,
                silhouette=sil,
                calinski_harabasz=ch,
                davies_bouldin=db,
                stability=stability(
                    algorithm, params, X_metric, labels[rows], cfg.stability.resamples, cfg.stability.fraction,
                    cfg.random_state,
                ),
                bic=float(model.bic(X)) if algorithm == "gmm" else None,
                rule_agreement=(
                    rule_agreement(raw[rows], labels[rows], cfg.rule_depth, cfg.random_state) if raw is not None else None
                ),
                purchase_type_ari=(
                    float(adjusted_rand_score(purchase_type[rows], labels[rows])) if purchase_type is not None else None
                ),
            )
        )
    return candidates


def apply_guardrails(candidates: list[Candidate], rails: GuardrailsConfig) -> None:
    """Marks each candidate passed or failed, with every reason it failed."""
    for c in candidates:
        reasons = []
        if c.silhouette is None:
            reasons.append("fewer than two groups to compare")
        if rails.enabled:
            if not rails.min_segments <= c.n_segments <= rails.max_segments:
                reasons.append(f"{c.n_segments} segments outside [{rails.min_segments}, {rails.max_segments}]")
            if c.n_segments and c.smallest_share < rails.min_segment_share:
                reasons.append(f"smallest segment {c.smallest_share:.2%} < {rails.min_segment_share:.2%}")
            if c.noise_share > rails.max_noise_share:
                reasons.append(f"noise {c.noise_share:.2%} > {rails.max_noise_share:.2%}")
            if c.n_segments and c.largest_share > rails.max_segment_share:
                reasons.append(f"largest segment {c.largest_share:.2%} > {rails.max_segment_share:.2%}")
            if c.rule_agreement is not None and c.rule_agreement > rails.max_rule_agreement:
                reasons.append(
                    f"a shallow rule on the raw columns reproduces {c.rule_agreement:.2%} of its labels > "
                    f"{rails.max_rule_agreement:.2%}"
                )
        c.passed = not reasons
        c.reason = "; ".join(reasons)


def choose(candidates: list[Candidate], tie_tolerance: float = 0.0) -> Candidate:
    """Best silhouette among passing candidates; within `tie_tolerance` of it, the most stable."""
    passing = [c for c in candidates if c.passed]
    if not passing:
        closest = sorted(candidates, key=lambda c: (c.reason.count(";"), -(c.silhouette or -1.0)))[:3]
        detail = " | ".join(f"{c.name}: {c.reason}" for c in closest)
        raise TrainingError(
            f"no clustering candidate passed the guardrails ({len(candidates)} tried); closest: {detail}"
        )
    best = max(c.silhouette for c in passing)
    tied = [c for c in passing if c.silhouette >= best - tie_tolerance]
    winner = max(tied, key=lambda c: (c.stability if c.stability is not None else -1.0, c.silhouette))
    winner.chosen = True
    return winner
