"""Profiles, personas and drivers on purpose-built samples (no Spark needed)."""

import numpy as np
import pandas as pd
import pytest

from segmentation.core.columns import FEATURE_COLUMNS, LOG_COLUMNS
from segmentation.train import drivers, personas, profiles
from segmentation.train.preprocessing import ClusteringSpace, LogScaler


def _population(n=2000, seed=0) -> pd.DataFrame:
    """Customers with every model feature, drawn around the bundled data's typical values."""
    rng = np.random.default_rng(seed)
    money = lambda scale: np.where(rng.random(n) < 0.4, 0.0, rng.lognormal(np.log(scale), 0.6, n))  # noqa: E731
    frame = pd.DataFrame({c: rng.uniform(0.0, 1.0, n) for c in FEATURE_COLUMNS})
    for c in ["BALANCE", "PURCHASES", "ONEOFF_PURCHASES", "INSTALLMENTS_PURCHASES", "CASH_ADVANCE", "PAYMENTS",
              "MINIMUM_PAYMENTS", "MONTHLY_AVG_PURCHASES", "MONTHLY_CASH_ADVANCE"]:
        frame[c] = money(800.0)
    frame["CREDIT_LIMIT"] = rng.lognormal(np.log(4000), 0.4, n)
    frame["CASH_ADVANCE_TRX"] = rng.poisson(2, n).astype(float)
    frame["PURCHASES_TRX"] = rng.poisson(8, n).astype(float)
    frame["TENURE"] = np.where(rng.random(n) < 0.9, 12.0, rng.integers(6, 12, n))
    frame["PRC_FULL_PAYMENT"] = np.where(rng.random(n) < 0.7, 0.0, rng.uniform(0, 1, n))
    frame["LIMIT_USAGE"] = frame["BALANCE"] / frame["CREDIT_LIMIT"]
    frame["PAYMENT_MINPAY_RATIO"] = frame["PAYMENTS"] / (frame["MINIMUM_PAYMENTS"] + 1e-6)
    return frame


# One trait per rule: how to push a quarter of the customers toward it, and the raw column that
# must then sit on the named side of the population.
SHIFTS = {
    "cash_advance_reliant": (lambda f: f.assign(CASH_ADVANCE=f.CASH_ADVANCE * 8 + 2000), "CASH_ADVANCE", "above"),
    "full_payer": (lambda f: f.assign(PRC_FULL_PAYMENT=1.0), "PRC_FULL_PAYMENT", "above"),
    "rarely_pays_in_full": (lambda f: f.assign(PRC_FULL_PAYMENT=0.0), "PRC_FULL_PAYMENT", "below"),
    "minimum_payer": (lambda f: f.assign(PAYMENT_MINPAY_RATIO=0.5), "PAYMENT_MINPAY_RATIO", "below"),
    "revolver": (lambda f: f.assign(LIMIT_USAGE=0.95, BALANCE=f.CREDIT_LIMIT * 0.95), "LIMIT_USAGE", "above"),
    "low_balance": (lambda f: f.assign(BALANCE=0.0), "BALANCE", "below"),
    "high_limit": (lambda f: f.assign(CREDIT_LIMIT=f.CREDIT_LIMIT * 6), "CREDIT_LIMIT", "above"),
    "low_limit": (lambda f: f.assign(CREDIT_LIMIT=300.0), "CREDIT_LIMIT", "below"),
    "big_spender": (lambda f: f.assign(PURCHASES=f.PURCHASES * 8 + 3000), "PURCHASES", "above"),
    "non_buyer": (lambda f: f.assign(PURCHASES=0.0), "PURCHASES", "below"),
    "light_spender": (lambda f: f.assign(PURCHASES=5.0), "PURCHASES", "below"),
    "instalment_buyer": (lambda f: f.assign(INSTALLMENTS_PURCHASES=f.INSTALLMENTS_PURCHASES * 5 + 2000, ONEOFF_PURCHASES=0.0),
                         "INSTALLMENTS_PURCHASES", "above"),
    "one_off_buyer": (lambda f: f.assign(ONEOFF_PURCHASES=f.ONEOFF_PURCHASES * 5 + 2000, INSTALLMENTS_PURCHASES=0.0),
                      "ONEOFF_PURCHASES", "above"),
    "new_customer": (lambda f: f.assign(TENURE=6.0), "TENURE", "below"),
}


def _profile(sample: pd.DataFrame, labels: np.ndarray) -> pd.DataFrame:
    scaled = LogScaler(FEATURE_COLUMNS, LOG_COLUMNS).fit(sample).transform(sample)
    return profiles.segment_profiles(sample, scaled, labels, FEATURE_COLUMNS)


def _shifted(key: str):
    frame = _population()
    labels = np.zeros(len(frame), dtype=int)
    labels[: len(frame) // 4] = 1
    shift, column, side = SHIFTS[key]
    head = shift(frame.iloc[: len(frame) // 4].copy())
    frame = pd.concat([head, frame.iloc[len(frame) // 4:]], ignore_index=True)
    return frame, labels, column, side


@pytest.mark.parametrize("key", sorted(SHIFTS))
def test_each_naming_rule_fires_on_its_behaviour_and_only_on_its_side(key):
    frame, labels, column, side = _shifted(key)
    profile = _profile(frame, labels)
    persona = personas.build(profile)[1]
    assert key in [t.key for t in persona.traits], (persona.name, [t.key for t in persona.traits])
    trait = next(t for t in persona.traits if t.key == key)
    seg_mean = frame.loc[labels == 1, column].mean()
    pop_mean = frame[column].mean()
    assert seg_mean > pop_mean if side == "above" else seg_mean < pop_mean
    # The description quotes raw figures, and the name is made of the traits' words.
    assert trait.clause in persona.description.lower() or trait.clause[1:] in persona.description
    assert any(w in persona.name.lower() for w in (trait.noun, trait.adjective))


def test_names_are_unique_deterministic_and_typical_when_nothing_stands_out():
    frame = _population()
    rng = np.random.default_rng(5)
    labels = rng.integers(0, 3, len(frame))  # random segments: no behaviour stands out
    profile = _profile(frame, labels)
    first = personas.build(profile)
    assert {p.name for p in first.values()} == {personas.TYPICAL + suffix for suffix in
                                                (" (segment 0)", " (segment 1)", " (segment 2)")}
    assert [p.name for p in personas.build(profile).values()] == [p.name for p in first.values()]


def test_profiles_have_a_population_row_and_sizes_sum_to_the_sample():
    frame, labels, _, _ = _shifted("cash_advance_reliant")
    profile = _profile(frame, labels)
    per_segment = profile.dropna(subset=["segment_id"]).drop_duplicates("segment_id")
    assert per_segment["size"].sum() == len(frame)
    assert per_segment["share"].sum() == pytest.approx(1.0)
    pop = profile[profile.segment_id.isna()]
    assert len(pop) == len(FEATURE_COLUMNS) and (pop["size"] == len(frame)).all() and (pop.std_diff == 0).all()
    balance = pop.set_index("feature").loc["BALANCE"]
    assert balance["median"] == pytest.approx(frame.BALANCE.median())
    assert balance["p25"] == pytest.approx(frame.BALANCE.quantile(0.25))
    cash = profile[(profile.segment_id == 1) & (profile.feature == "CASH_ADVANCE")].iloc[0]
    assert cash["mean"] == pytest.approx(frame.loc[labels == 1, "CASH_ADVANCE"].mean()) and cash.std_diff > 0.5
    rows = profiles.table_rows(profile, "v1")
    assert len(rows) == 3 * len(FEATURE_COLUMNS) and {r["segment_id"] for r in rows} == {None, 0, 1}


def test_driver_tables_are_complete():
    from sklearn.ensemble import RandomForestClassifier

    frame, labels, _, _ = _shifted("big_spender")
    profile = _profile(frame, labels)
    X = frame[FEATURE_COLUMNS].to_numpy()
    forest = RandomForestClassifier(10, random_state=0).fit(X[::2], labels[::2])
    glob = drivers.global_drivers(forest, X[1::2], labels[1::2], FEATURE_COLUMNS, repeats=2, random_state=0)
    assert sorted(glob.feature) == sorted(FEATURE_COLUMNS) and list(glob["rank"]) == list(range(1, 26))
    assert glob.iloc[0].feature in {"PURCHASES", "MONTHLY_AVG_PURCHASES"}
    assert glob.permutation_importance.is_monotonic_decreasing
    per = drivers.segment_drivers(profile)
    assert len(per) == 2 * len(FEATURE_COLUMNS)
    for _, group in per.groupby("segment_id"):
        assert sorted(group.feature) == sorted(FEATURE_COLUMNS) and list(group["rank"]) == list(range(1, 26))
        assert group.std_diff.abs().is_monotonic_decreasing
    assert per[per.segment_id == 1].iloc[0].feature == "PURCHASES"
    rows = drivers.table_rows(glob, per, "v1")
    assert len(rows) == 3 * len(FEATURE_COLUMNS)
    assert [r["scope"] for r in rows] == ["global"] * len(FEATURE_COLUMNS) + ["segment"] * 2 * len(FEATURE_COLUMNS)
    assert all(r["segment_id"] is None and r["std_diff"] is None for r in rows[: len(FEATURE_COLUMNS)])


def test_family_space_gives_each_family_equal_weight_and_leaves_indicators_out():
    families = {"a": ["BALANCE", "PURCHASES", "CASH_ADVANCE", "PAYMENTS"], "b": ["TENURE"]}
    space = ClusteringSpace(FEATURE_COLUMNS, families, "families").fit()
    X = np.ones((3, len(FEATURE_COLUMNS)))
    out = space.transform(X)
    assert space.space_columns_ == ["BALANCE", "PURCHASES", "CASH_ADVANCE", "PAYMENTS", "TENURE"]
    squared = dict(zip(space.space_columns_, out[0] ** 2))
    assert sum(squared[c] for c in families["a"]) == pytest.approx(squared["TENURE"]) == pytest.approx(1.0)
    assert ClusteringSpace(FEATURE_COLUMNS, families, "all").fit().transform(X).shape == X.shape
    with pytest.raises(ValueError, match="not model features"):
        ClusteringSpace(FEATURE_COLUMNS, {"x": ["NOPE"]}).fit()
