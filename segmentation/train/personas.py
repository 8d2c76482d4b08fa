"""Personas: a short name and a one-sentence description per segment, from documented rules.

Each rule reads one behaviour family in the segment's profile and fires when the segment sits at
least `threshold` population standard deviations (in the log-scaled space) away from everyone,
on the same side in raw units. A segment's name combines its two strongest traits (one per
family); its description quotes the raw figures behind up to three. Nothing maps segment
numbers to names, so a retrain that reorders segments cannot mislabel them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import pandas as pd

from segmentation.core.columns import NOISE
from segmentation.core.config import ExplainConfig

# Standardized difference a trait needs, in population standard deviations: the config's default.
TRAIT_THRESHOLD = ExplainConfig().trait_threshold
TYPICAL = "Typical customers"
NOISE_NAME = "Unassigned (noise)"


@dataclass(frozen=True)
class Trait:
    key: str
    family: str
    strength: float
    adjective: str
    noun: str
    clause: str


@dataclass
class Persona:
    segment_id: int
    name: str
    description: str
    traits: list[Trait] = field(default_factory=list)

    @property
    def families(self) -> list[str]:
        return [t.family for t in self.traits]


def _money(x: float) -> str:
    return f"${x:,.0f}"


class _View:
    """One segment's figures beside the population's, by feature."""

    def __init__(self, seg: pd.DataFrame, pop: pd.DataFrame):
        self.seg, self.pop = seg, pop

    def d(self, feature: str) -> float:
        return float(self.seg.at[feature, "std_diff"])

    def above(self, feature: str, threshold: float) -> bool:
        return self.d(feature) >= threshold and self.seg.at[feature, "mean"] > self.pop.at[feature, "mean"]

    def below(self, feature: str, threshold: float) -> bool:
        return self.d(feature) <= -threshold and self.seg.at[feature, "mean"] < self.pop.at[feature, "mean"]

    def s(self, feature: str, stat: str = "median") -> float:
        return float(self.seg.at[feature, stat])

    def p(self, feature: str, stat: str = "median") -> float:
        return float(self.pop.at[feature, stat])


def _cash(v: _View, t: float) -> list[Trait]:
    if not v.above("CASH_ADVANCE", t):
        return []
    clause = (f"draws a median {_money(v.s('CASH_ADVANCE'))} of cash advances over the period against "
              f"{_money(v.p('CASH_ADVANCE'))} for the population")
    return [Trait("cash_advance_reliant", "cash_advance", v.d("CASH_ADVANCE"), "cash-advance", "cash-advance users", clause)]


def _payments(v: _View, t: float) -> list[Trait]:
    out = []
    full = (f"pays in full in {v.s('PRC_FULL_PAYMENT', 'mean'):.0%} of months on average against "
            f"{v.p('PRC_FULL_PAYMENT', 'mean'):.0%} for the population")
    if v.above("PRC_FULL_PAYMENT", t):
        out.append(Trait("full_payer", "payment_discipline", v.d("PRC_FULL_PAYMENT"), "full-paying", "transactors", full))
    elif v.below("PRC_FULL_PAYMENT", t):
        out.append(Trait("rarely_pays_in_full", "payment_discipline", -v.d("PRC_FULL_PAYMENT"), "part-paying",
                         "part payers", full))
    if v.below("PAYMENT_MINPAY_RATIO", t):
        clause = (f"pays a median {v.s('PAYMENT_MINPAY_RATIO'):.1f} times its minimum payment against "
                  f"{v.p('PAYMENT_MINPAY_RATIO'):.1f} for the population")
        out.append(Trait("minimum_payer", "payment_discipline", -v.d("PAYMENT_MINPAY_RATIO"), "minimum-paying",
                         "minimum payers", clause))
    return out


def _revolving(v: _View, t: float) -> list[Trait]:
    out = []
    if v.above("LIMIT_USAGE", t):
        clause = (f"carries a median balance of {_money(v.s('BALANCE'))}, {v.s('LIMIT_USAGE'):.0%} of its credit limit, "
                  f"against {_money(v.p('BALANCE'))} and {v.p('LIMIT_USAGE'):.0%} for the population")
        out.append(Trait("revolver", "revolving", v.d("LIMIT_USAGE"), "revolving", "revolvers", clause))
    elif v.below("BALANCE", t):
        clause = (f"keeps a median balance of {_money(v.s('BALANCE'))} against {_money(v.p('BALANCE'))} "
                  f"for the population")
        out.append(Trait("low_balance", "revolving", -v.d("BALANCE"), "low-balance", "low-balance accounts", clause))
    clause = (f"has a median credit limit of {_money(v.s('CREDIT_LIMIT'))} against "
              f"{_money(v.p('CREDIT_LIMIT'))} for the population")
    if v.above("CREDIT_LIMIT", t):
        out.append(Trait("high_limit", "revolving", v.d("CREDIT_LIMIT"), "high-limit", "prime customers", clause))
    elif v.below("CREDIT_LIMIT", t):
        out.append(Trait("low_limit", "revolving", -v.d("CREDIT_LIMIT"), "low-limit", "low-limit accounts", clause))
    return out


def _spending(v: _View, t: float) -> list[Trait]:
    clause = (f"spends a median {_money(v.s('PURCHASES'))} over the period in {v.s('PURCHASES_TRX'):.0f} purchases "
              f"against {_money(v.p('PURCHASES'))} and {v.p('PURCHASES_TRX'):.0f} for the population")
    if v.above("PURCHASES", t):
        return [Trait("big_spender", "spending", v.d("PURCHASES"), "big-spending", "big spenders", clause)]
    if v.below("PURCHASES", t):
        if v.s("PURCHASES") == 0:
            return [Trait("non_buyer", "spending", -v.d("PURCHASES"), "non-buying", "non-buyers", clause)]
        return [Trait("light_spender", "spending", -v.d("PURCHASES"), "light-spending", "light spenders", clause)]
    return []


def _mix(v: _View, t: float) -> list[Trait]:
    inst, one = v.d("INSTALLMENTS_PURCHASES"), v.d("ONEOFF_PURCHASES")
    clause = (f"buys a median {_money(v.s('INSTALLMENTS_PURCHASES'))} in instalments and "
              f"{_money(v.s('ONEOFF_PURCHASES'))} one-off, against {_money(v.p('INSTALLMENTS_PURCHASES'))} and "
              f"{_money(v.p('ONEOFF_PURCHASES'))} for the population")
    if v.above("INSTALLMENTS_PURCHASES", t) and inst - one >= t:
        return [Trait("instalment_buyer", "purchase_mix", inst - one, "instalment", "instalment buyers", clause)]
    if v.above("ONEOFF_PURCHASES", t) and one - inst >= t:
        return [Trait("one_off_buyer", "purchase_mix", one - inst, "one-off", "one-off buyers", clause)]
    return []


def _tenure(v: _View, t: float) -> list[Trait]:
    if not v.below("TENURE", t):
        return []
    clause = (f"has held the card for a median {v.s('TENURE'):.0f} months against {v.p('TENURE'):.0f} "
              f"for the population")
    return [Trait("new_customer", "tenure", -v.d("TENURE"), "new", "new customers", clause)]


# In this order when strengths tie, so names are deterministic.
RULES: list[Callable[[_View, float], list[Trait]]] = [_cash, _payments, _revolving, _spending, _mix, _tenure]


def traits(seg: pd.DataFrame, pop: pd.DataFrame, threshold: float = TRAIT_THRESHOLD) -> list[Trait]:
    """The segment's traits, strongest first, at most one per family."""
    view = _View(seg, pop)
    found = [(i, t) for i, rule in enumerate(RULES) for t in rule(view, threshold)]
    found.sort(key=lambda it: (-round(it[1].strength, 9), it[0], it[1].key))
    chosen, families = [], set()
    for _, trait in found:
        if trait.family not in families:
            families.add(trait.family)
            chosen.append(trait)
    return chosen


def _name(found: list[Trait]) -> str:
    if not found:
        return TYPICAL
    if len(found) == 1:
        text = found[0].noun
    else:
        text = f"{found[1].adjective} {found[0].noun}"
    return text[:1].upper() + text[1:]


def _description(found: list[Trait], seg: pd.DataFrame, pop: pd.DataFrame) -> str:
    if not found:
        return (f"Close to the population on every behaviour: a median balance of {_money(seg.at['BALANCE', 'median'])} "
                f"and purchases of {_money(seg.at['PURCHASES', 'median'])} over the period.")
    text = "; ".join(t.clause for t in found[:3])
    return text[:1].upper() + text[1:] + "."


def build(profiles: pd.DataFrame, threshold: float = TRAIT_THRESHOLD) -> dict[int, Persona]:
    """A persona per segment of a long profile frame (see `profiles.segment_profiles`)."""
    pop = profiles[profiles["segment_id"].isna()].set_index("feature")
    personas: dict[int, Persona] = {}
    for segment, rows in profiles.dropna(subset=["segment_id"]).groupby("segment_id", sort=True):
        segment = int(segment)
        seg = rows.set_index("feature")
        if segment == NOISE:
            personas[segment] = Persona(segment, NOISE_NAME, "Rows the density clustering left in no segment.")
            continue
        found = traits(seg, pop, threshold)
        personas[segment] = Persona(segment, _name(found), _description(found, seg, pop), found)
    _make_unique(personas)
    return personas


def _make_unique(personas: dict[int, Persona]) -> None:
    """Two segments with the same top traits: the next trait, else the id, tells them apart."""
    by_name: dict[str, list[Persona]] = {}
    for p in personas.values():
        by_name.setdefault(p.name, []).append(p)
    for same in by_name.values():
        if len(same) < 2:
            continue
        for p in same:
            extra = p.traits[2].adjective if len(p.traits) > 2 else ""
            p.name = f"{p.name} ({extra})" if extra else f"{p.name} (segment {p.segment_id})"
    taken: set[str] = set()
    for segment in sorted(personas):
        p = personas[segment]
        if p.name in taken:
            p.name = f"{p.name} (segment {segment})"
        taken.add(p.name)
