"""Choosing the segmentation: a winner that does not flip with the sample, and retrains that
reshape the segments only for a clear gain.

Every passing candidate's labels are scored again on the same random subsets of the metric
rows, so each candidate has a mean silhouette, a spread and a count of subsets it won. Those
whose mean is within the noise of the best are tied, and the tie goes to the fewest segments:
a simpler segmentation that scores as well is the one another sample would also find (the
one-standard-error rule). A retrain then keeps the champion's structure unless that choice
beats it by a configured margin on the same subsets.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from segmentation.core.config import ClusteringConfig
from segmentation.train.clustering import Candidate, choose, metric_rows, silhouette_of

# What `Selection.decision` says, in the train log, the metrics and the registry tags.
FIRST = "first"  # no champion to keep: the best choice
KEPT = "kept"  # the champion's structure kept (also when the best choice has it)
RESHAPED = "reshaped"  # the best choice beat the champion's structure by the margin
REQUESTED = "reshape_requested"  # --reshape: the best choice, whatever the champion
UNAVAILABLE = "champion_structure_unavailable"  # no passing candidate has the champion's structure


@dataclass(frozen=True)
class Structure:
    """What a campaign sees change: the algorithm and the number of segments."""

    algorithm: str
    n_segments: int

    def __str__(self) -> str:
        return f"{self.algorithm} with {self.n_segments} segments"

    @classmethod
    def of(cls, c: Candidate) -> "Structure":
        return cls(c.algorithm, c.n_segments)

    @classmethod
    def of_metrics(cls, metrics: dict[str, Any] | None) -> "Structure | None":
        """A trained model's structure, from its metrics (None for a bundle that lacks them)."""
        winner = (metrics or {}).get("winner") or {}
        if "algorithm" not in winner or "n_segments" not in winner:
            return None
        return cls(str(winner["algorithm"]), int(winner["n_segments"]))


@dataclass(frozen=True)
class Selection:
    """The winner and how clearly it won."""

    winner: Candidate
    best: Candidate  # the choice without a champion (the stable rule's)
    decision: str
    resamples: int
    tied: int  # passing candidates within the noise of the highest mean, the best one included
    champion: Structure | None
    incumbent: Candidate | None  # the passing candidate with the champion's structure
    gain: float | None  # the best choice's mean silhouette minus the incumbent's
    margin: float

    def record(self) -> dict[str, Any]:
        """The metrics' `selection` entry and, flattened, the registry's tags."""
        w = self.winner
        return {
            "decision": self.decision,
            "winner": w.name,
            "structure": str(Structure.of(w)),
            "best": self.best.name,
            "resamples": self.resamples,
            "winner_wins": w.resample_wins,
            "winner_win_share": (w.resample_wins / self.resamples) if self.resamples and w.resample_wins is not None
            else None,
            "tied": self.tied,
            "champion_structure": str(self.champion) if self.champion else None,
            "incumbent": self.incumbent.name if self.incumbent else None,
            "gain": self.gain,
            "reshape_margin": self.margin,
        }

    def sentence(self) -> str:
        """One line for the train log and the report: which happened, with the figures."""
        w = self.winner
        wins = (f", won {w.resample_wins} of {self.resamples} resamples" if self.resamples and w.resample_wins
                is not None else "")
        tie = f", tied with {self.tied - 1} other(s) within the noise: fewest segments" if self.tied > 1 else ""
        head = f"{w.name}{wins}{tie}"
        gain = f"{self.gain:+.4f}" if self.gain is not None else "n/a"
        if self.decision == FIRST:
            return f"{head}; no champion to keep"
        if self.decision == REQUESTED:
            return f"{head}; reshape requested (champion: {self.champion}, gain {gain})"
        if self.decision == UNAVAILABLE:
            return f"{head}; no passing candidate has the champion's structure ({self.champion})"
        if self.decision == RESHAPED:
            return (f"{head}; reshaped from the champion's {self.champion}: {self.best.name} gains {gain} "
                    f"mean silhouette >= margin {self.margin}")
        if self.best is w:
            return f"{head}; the champion's structure ({self.champion}) is also the best choice"
        return (f"{head}; champion's structure kept: {self.best.name} would gain {gain} mean silhouette "
                f"< margin {self.margin}")


def resample_silhouettes(X: np.ndarray, candidates: list[Candidate], ccfg: ClusteringConfig) -> np.ndarray:
    """(candidates x resamples) silhouettes of each candidate's labels on the same random subsets
    of the metric rows. Labels are not refitted: the spread is that of the score, the stability
    column already measures the fit's."""
    scfg = ccfg.selection
    rows = metric_rows(len(X), ccfg.metric_max_rows, ccfg.random_state)
    rng = np.random.default_rng(ccfg.random_state)
    size = max(2, int(round(scfg.fraction * len(rows))))
    scores = np.full((len(candidates), scfg.resamples), np.nan)
    for b in range(scfg.resamples):
        subset = rows[np.sort(rng.choice(len(rows), size=size, replace=False))]
        for i, c in enumerate(candidates):
            noise = ccfg.dbscan_noise_in_silhouette if c.algorithm == "dbscan" else "cluster"
            value = silhouette_of(X[subset], c.labels[subset], noise)
            scores[i, b] = np.nan if value is None else value
    return scores


def select(
    X: np.ndarray, candidates: list[Candidate], ccfg: ClusteringConfig, champion: Structure | None = None,
) -> Selection:
    """The winner among the passing candidates, marked `chosen`, and how it was chosen.

    With `selection.resamples` 0 the rule is the one-sample rule (`clustering.choose`), which
    the notebook profile keeps.
    """
    scfg = ccfg.selection
    passing = [c for c in candidates if c.passed]
    if not passing or scfg.resamples == 0:
        best = choose(candidates, ccfg.tie_tolerance)  # raises the named error when none passed
        best.chosen = False
        score = {id(c): c.silhouette for c in passing}
        tied = sum(c.silhouette >= best.silhouette - ccfg.tie_tolerance for c in passing)
        return _with_champion(best, passing, score, 0, tied, champion, scfg)
    S = resample_silhouettes(X, passing, ccfg)
    means = np.nanmean(np.where(np.isnan(S), -1.0, S), axis=1)
    winners = np.argmax(np.where(np.isnan(S), -np.inf, S), axis=0)
    top = int(np.argmax(means))
    for i, c in enumerate(passing):
        diff = S[top] - S[i]
        spread = float(np.nanstd(diff, ddof=1)) if np.sum(~np.isnan(diff)) > 1 else 0.0
        c.resample_silhouette = float(means[i])
        c.resample_sd = float(np.nanstd(S[i], ddof=1)) if scfg.resamples > 1 else 0.0
        c.resample_wins = int(np.sum(winners == i))
        c.within_noise = bool(means[top] - means[i] <= max(ccfg.tie_tolerance, scfg.noise_sd * spread))
    tied = [c for c in passing if c.within_noise]
    best = min(tied, key=lambda c: (c.n_segments, -c.resample_wins, -c.resample_silhouette))
    score = {id(c): c.resample_silhouette for c in passing}
    return _with_champion(best, passing, score, scfg.resamples, len(tied), champion, scfg)


def _with_champion(
    best: Candidate, passing: list[Candidate], score: dict[int, float], resamples: int, tied: int,
    champion: Structure | None, scfg,
) -> Selection:
    """The best choice, or the champion's structure when the best choice does not clear the margin."""
    incumbents = [c for c in passing if champion is not None and Structure.of(c) == champion]
    incumbent = max(incumbents, key=lambda c: score[id(c)]) if incumbents else None
    gain = score[id(best)] - score[id(incumbent)] if incumbent is not None else None
    if champion is None:
        decision, winner = FIRST, best
    elif scfg.reshape:
        decision, winner = REQUESTED, best
    elif incumbent is None:
        decision, winner = UNAVAILABLE, best
    elif Structure.of(best) == champion:
        decision, winner = KEPT, best
    elif gain >= scfg.reshape_margin:
        decision, winner = RESHAPED, best
    else:
        decision, winner = KEPT, incumbent
    winner.chosen = True
    return Selection(winner, best, decision, resamples, tied, champion, incumbent, gain, scfg.reshape_margin)
