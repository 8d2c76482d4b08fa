"""Choosing among candidates: resampled scores, ties to the fewest segments, and the champion's
structure kept unless the choice clears the margin (no Spark needed)."""

import numpy as np
import pytest

from segmentation.core.config import ClusteringConfig, GuardrailsConfig, KMeansConfig, SelectionConfig, StabilityConfig
from segmentation.core.errors import TrainingError
from segmentation.train import clustering, selection
from segmentation.train.selection import Structure

RAILS = GuardrailsConfig(enabled=True, min_segments=2, max_segments=8, min_segment_share=0.02, max_noise_share=0.10,
                         max_segment_share=0.9)


def _blobs(sizes, centers, spread=0.4, seed=0):
    rng = np.random.default_rng(seed)
    return np.vstack([rng.normal(c, spread, size=(n, len(c))) for n, c in zip(sizes, centers)])


def _cfg(k=(2, 4), **selection_kw):
    return ClusteringConfig(
        algorithms=["kmeans"], kmeans=KMeansConfig(k=list(k), n_init=2), stability=StabilityConfig(resamples=0),
        guardrails=RAILS, metric_max_rows=5000, selection=SelectionConfig(**selection_kw),
    )


def _candidates(X, cfg):
    candidates = clustering.evaluate(X, cfg)
    clustering.apply_guardrails(candidates, cfg.guardrails)
    return candidates


# Four separated blobs: k=4 is clearly the best, by far more than the noise.
FOUR = _blobs([200, 200, 200, 200], [(0, 0), (6, 0), (0, 6), (6, 6)])


def _by_k(candidates, k):
    return next(c for c in candidates if c.n_segments == k)


def test_every_passing_candidate_is_scored_on_the_same_resamples_and_the_clear_best_wins():
    cfg = _cfg(k=(2, 3, 4), resamples=10)
    candidates = _candidates(FOUR, cfg)
    chosen = selection.select(FOUR, candidates, cfg)
    four = _by_k(candidates, 4)
    assert chosen.winner is four and four.chosen and sum(c.chosen for c in candidates) == 1
    assert chosen.decision == selection.FIRST and chosen.resamples == 10
    assert four.resample_wins == 10 and chosen.tied == 1  # won every resample, nothing within its noise
    assert sum(c.resample_wins for c in candidates) == 10
    for c in candidates:
        # Scored on half the rows: near the full-sample silhouette, with a spread.
        assert abs(c.resample_silhouette - c.silhouette) < 0.02 and c.resample_sd > 0
        assert c.within_noise is (c is four)
    rec = chosen.record()
    assert rec["winner_wins"] == 10 and rec["winner_win_share"] == 1.0 and rec["structure"] == "kmeans with 4 segments"
    assert "won 10 of 10 resamples" in chosen.sentence()


def test_candidates_within_the_noise_are_tied_and_the_tie_goes_to_the_fewest_segments():
    X = FOUR
    cfg = _cfg(k=(4,), resamples=8)
    (base,) = _candidates(X, cfg)
    # The same labels under two structures: equal scores on every resample, so a tie; listed
    # more-segments-first so that order cannot be what decides.
    seven = clustering.Candidate("gmm", {"n_components": 7}, base.labels, 0.0, n_segments=7, silhouette=base.silhouette)
    four = clustering.Candidate("kmeans", {"n_clusters": 4}, base.labels, 0.0, n_segments=4, silhouette=base.silhouette)
    chosen = selection.select(X, [seven, four], cfg)
    assert chosen.winner is four and chosen.tied == 2 and seven.within_noise and four.within_noise
    assert "tied with 1 other(s) within the noise: fewest segments" in chosen.sentence()


def test_without_resamples_the_one_sample_rule_decides():
    cfg = _cfg(k=(2, 3, 4), resamples=0)
    candidates = _candidates(FOUR, cfg)
    chosen = selection.select(FOUR, candidates, cfg)
    assert chosen.winner is _by_k(candidates, 4) and chosen.resamples == 0
    assert all(c.resample_silhouette is None and c.resample_wins is None for c in candidates)


def test_no_passing_candidate_is_the_named_error():
    cfg = _cfg(k=(2,), resamples=5)
    candidates = _candidates(FOUR, cfg.model_copy(update={"guardrails": RAILS.model_copy(update={"min_segments": 3})}))
    with pytest.raises(TrainingError, match="no clustering candidate passed"):
        selection.select(FOUR, candidates, cfg)


def test_a_retrain_keeps_the_champions_structure_when_the_choice_does_not_clear_the_margin():
    cfg = _cfg(k=(3, 4), resamples=10, reshape_margin=1.0)  # a margin no silhouette gain can clear
    candidates = _candidates(FOUR, cfg)
    three, four = _by_k(candidates, 3), _by_k(candidates, 4)
    chosen = selection.select(FOUR, candidates, cfg, champion=Structure("kmeans", 3))
    assert chosen.decision == selection.KEPT and chosen.winner is three and three.chosen and not four.chosen
    assert chosen.best is four and chosen.incumbent is three
    assert chosen.gain == pytest.approx(four.resample_silhouette - three.resample_silhouette) and chosen.gain > 0
    assert "champion's structure kept" in chosen.sentence() and "< margin 1.0" in chosen.sentence()
    assert chosen.record()["decision"] == "kept" and chosen.record()["champion_structure"] == "kmeans with 3 segments"


def test_a_retrain_reshapes_when_the_choice_clears_the_margin():
    cfg = _cfg(k=(3, 4), resamples=10, reshape_margin=0.01)
    candidates = _candidates(FOUR, cfg)
    chosen = selection.select(FOUR, candidates, cfg, champion=Structure("kmeans", 3))
    assert chosen.gain >= 0.01  # four separated blobs: k=4 beats k=3 by far more than the margin
    assert chosen.decision == selection.RESHAPED and chosen.winner is _by_k(candidates, 4)
    assert "reshaped from the champion's kmeans with 3 segments" in chosen.sentence()


def test_reshape_takes_the_best_choice_and_a_missing_structure_cannot_be_kept():
    cfg = _cfg(k=(3, 4), resamples=6, reshape_margin=1.0, reshape=True)
    candidates = _candidates(FOUR, cfg)
    chosen = selection.select(FOUR, candidates, cfg, champion=Structure("kmeans", 3))
    assert chosen.decision == selection.REQUESTED and chosen.winner is _by_k(candidates, 4)
    cfg = _cfg(k=(3, 4), resamples=6, reshape_margin=1.0)
    candidates = _candidates(FOUR, cfg)
    chosen = selection.select(FOUR, candidates, cfg, champion=Structure("gmm", 6))
    assert chosen.decision == selection.UNAVAILABLE and chosen.winner is _by_k(candidates, 4)
    # The champion's structure also passes when it is the best choice.
    chosen = selection.select(FOUR, candidates, cfg, champion=Structure("kmeans", 4))
    assert chosen.decision == selection.KEPT and chosen.winner is _by_k(candidates, 4)
    assert "also the best choice" in chosen.sentence()


def test_a_models_structure_comes_from_its_metrics():
    assert Structure.of_metrics({"winner": {"algorithm": "kmeans", "n_segments": 4}}) == Structure("kmeans", 4)
    assert Structure.of_metrics({}) is None and Structure.of_metrics(None) is None
