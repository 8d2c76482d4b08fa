"""Candidate metrics, guardrails and the choice, on purpose-built data (no Spark needed)."""

import numpy as np
import pytest

from segmentation.core.config import (
    ClusteringConfig,
    DBSCANConfig,
    GMMConfig,
    GuardrailsConfig,
    KMeansConfig,
    StabilityConfig,
)
from segmentation.core.errors import TrainingError
from segmentation.train import clustering

RAILS = GuardrailsConfig(enabled=True, min_segments=3, max_segments=8, min_segment_share=0.02, max_noise_share=0.10)


def _blobs(sizes, centers, spread=0.3, seed=0):
    rng = np.random.default_rng(seed)
    return np.vstack([rng.normal(c, spread, size=(n, len(c))) for n, c in zip(sizes, centers)])


def _cfg(**kw):
    base = dict(
        algorithms=["kmeans"], kmeans=KMeansConfig(k=[3], n_init=2), gmm=GMMConfig(k=[3], n_init=1),
        dbscan=DBSCANConfig(eps=[0.5], min_samples=[5]), stability=StabilityConfig(resamples=0),
        guardrails=RAILS, metric_max_rows=5000,
    )
    base.update(kw)
    return ClusteringConfig(**base)


def _run(X, cfg):
    candidates = clustering.evaluate(X, cfg)
    clustering.apply_guardrails(candidates, cfg.guardrails)
    return candidates


def test_a_tiny_far_away_group_fails_the_smallest_segment_rule():
    # three customer groups plus 5 customers far away: k=4 isolates them (0.6% of rows)
    X = _blobs([300, 300, 200, 5], [(0, 0), (4, 0), (0, 4), (40, 40)])
    (c,) = _run(X, _cfg(kmeans=KMeansConfig(k=[4], n_init=2)))
    assert c.n_segments == 4 and c.smallest_share < 0.02
    assert not c.passed and "smallest segment" in c.reason


def test_segment_count_outside_the_range_fails():
    X = _blobs([200] * 10, [(3 * i, 3 * (i % 2)) for i in range(10)])
    two, nine = _run(X, _cfg(kmeans=KMeansConfig(k=[2, 9], n_init=2)))
    assert not two.passed and "2 segments outside [3, 8]" in two.reason
    assert not nine.passed and "9 segments outside [3, 8]" in nine.reason


def test_too_much_noise_fails_and_noise_counts_in_the_silhouette():
    rng = np.random.default_rng(1)
    X = np.vstack([_blobs([200, 200, 200], [(0, 0), (5, 0), (0, 5)], spread=0.2), rng.uniform(-10, 15, size=(150, 2))])
    cfg = _cfg(algorithms=["dbscan"], dbscan=DBSCANConfig(eps=[0.3], min_samples=[5]))
    (kept,) = _run(X, cfg)
    assert kept.noise_share > 0.10 and not kept.passed and "noise" in kept.reason
    (dropped,) = _run(X, _cfg(algorithms=["dbscan"], dbscan=DBSCANConfig(eps=[0.3], min_samples=[5]),
                              dbscan_noise_in_silhouette="drop"))
    assert dropped.silhouette > kept.silhouette  # dropping noise flatters DBSCAN


def test_no_candidate_passing_is_an_error_naming_the_closest():
    X = _blobs([300, 300, 200, 5], [(0, 0), (4, 0), (0, 4), (40, 40)])
    candidates = _run(X, _cfg(kmeans=KMeansConfig(k=[2, 4], n_init=2)))
    with pytest.raises(TrainingError, match=r"no clustering candidate passed.*kmeans\(n_clusters=") as err:
        clustering.choose(candidates)
    assert "segments outside" in str(err.value) and "smallest segment" in str(err.value)


def test_best_silhouette_wins_and_near_ties_go_to_the_more_stable():
    X = _blobs([300, 300, 300], [(0, 0), (5, 0), (0, 5)])
    candidates = _run(X, _cfg(algorithms=["kmeans", "gmm"], kmeans=KMeansConfig(k=[3, 5], n_init=2),
                              gmm=GMMConfig(k=[3], n_init=1), stability=StabilityConfig(resamples=2, fraction=0.8)))
    assert all(c.stability is not None and 0.0 <= c.stability <= 1.0 + 1e-9 for c in candidates)
    assert next(c for c in candidates if c.algorithm == "gmm").bic is not None
    winner = clustering.choose(candidates, tie_tolerance=0.0)
    assert winner.n_segments == 3 and winner.chosen
    a, b = (clustering.Candidate("kmeans", {"n_clusters": k}, np.zeros(1), 0.0, silhouette=s, stability=st)
            for k, s, st in [(3, 0.500, 0.70), (4, 0.498, 0.95)])
    assert clustering.choose([a, b], tie_tolerance=0.005) is b
    assert clustering.choose([a, b], tie_tolerance=0.0) is a


def test_dbscan_eps_grid_comes_from_the_k_distance_distribution():
    X = _blobs([200, 200, 200], [(0, 0), (5, 0), (0, 5)])
    eps = clustering.k_distance_eps(X, 10, [0.5, 0.9])
    assert len(eps) == 2 and 0 < eps[0] < eps[1] < 1.5
    specs = clustering.candidate_specs(X, _cfg(algorithms=["dbscan"], dbscan=DBSCANConfig(eps=[], eps_quantiles=[0.5, 0.9], min_samples=[10])))
    assert [p["eps"] for _, p in specs] == eps


def test_a_candidate_equal_to_the_purchase_type_fails_the_rule_agreement_guardrail():
    # Purchase type is a two-column rule: ONEOFF_PURCHASES > 0, INSTALLMENTS_PURCHASES > 0.
    rng = np.random.default_rng(3)
    n = 800
    oneoff = np.where(rng.random(n) < 0.5, 0.0, rng.lognormal(5, 1, n))
    instal = np.where(rng.random(n) < 0.5, 0.0, rng.lognormal(5, 1, n))
    balance = rng.lognormal(6, 1, n)
    raw = np.column_stack([balance, oneoff, instal])
    kind = (oneoff > 0).astype(int) * 2 + (instal > 0).astype(int)
    names = np.array(["none", "installments", "one_off", "both"])[kind]
    X = np.column_stack([np.log1p(raw), rng.normal(size=n)])
    rails = GuardrailsConfig(max_rule_agreement=0.90)
    rule_like = clustering.Candidate("kmeans", {"n_clusters": 4}, kind, 0.0, n_segments=4, smallest_share=0.2,
                                     largest_share=0.3, silhouette=0.5)
    rule_like.rule_agreement = clustering.rule_agreement(raw, kind, depth=2, random_state=0)
    # A labelling a 2-level tree cannot draw: balance deciles folded into 4 interleaved groups.
    folded = (np.argsort(np.argsort(balance)) * 10 // n) % 4
    other = clustering.Candidate("kmeans", {"n_clusters": 4}, folded, 0.0, n_segments=4, smallest_share=0.2,
                                 largest_share=0.3, silhouette=0.4)
    other.rule_agreement = clustering.rule_agreement(raw, folded, depth=2, random_state=0)
    clustering.apply_guardrails([rule_like, other], rails)
    assert rule_like.rule_agreement == 1.0
    assert not rule_like.passed and "shallow rule on the raw columns reproduces 100.00%" in rule_like.reason
    assert other.rule_agreement < 0.9 and other.passed
    assert clustering.choose([rule_like, other]) is other

    # evaluate() records both figures for every candidate, on the metric rows.
    cfg = _cfg(kmeans=KMeansConfig(k=[3, 4], n_init=2))
    for c in clustering.evaluate(X, cfg, raw=raw, purchase_type=names):
        assert 0.0 <= c.rule_agreement <= 1.0 and -1.0 <= c.purchase_type_ari <= 1.0
        assert {"rule_agreement", "purchase_type_ari", "largest_share"} <= set(c.record())


def test_a_segment_holding_most_customers_fails():
    X = _blobs([700, 150, 150], [(0, 0), (6, 0), (0, 6)])
    (c,) = _run(X, _cfg(kmeans=KMeansConfig(k=[3], n_init=2)))
    assert c.largest_share > 0.5 and not c.passed and "largest segment" in c.reason
