"""What the report says, as plain values: formatting of figures and the views both renderings share."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd

from segmentation.core.columns import NOISE
from segmentation.report import plots
from segmentation.report.inputs import ReportInputs

_MONEY = {
    "BALANCE", "PURCHASES", "ONEOFF_PURCHASES", "INSTALLMENTS_PURCHASES", "CASH_ADVANCE", "CREDIT_LIMIT",
    "PAYMENTS", "MINIMUM_PAYMENTS", "MONTHLY_AVG_PURCHASES", "MONTHLY_CASH_ADVANCE",
}


_SHARES = {"PRC_FULL_PAYMENT", "LIMIT_USAGE"}  # fractions shown as percent (LIMIT_USAGE may pass 100%)


_ALGORITHM_ORDER = {"kmeans": 0, "gmm": 1, "dbscan": 2}


def _missing(value: object) -> bool:
    try:
        return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))
    except TypeError:
        return False


def num(value: object, digits: int = 3) -> str:
    if _missing(value):
        return "–"
    return f"{float(value):.{digits}f}"


def pct(value: object, digits: int = 1) -> str:
    return "–" if _missing(value) else f"{float(value):.{digits}%}"


def _plain(value: object) -> str:
    """A quantile or other raw figure: thousands separators, few decimals."""
    if _missing(value):
        return "–"
    value = float(value)
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 1:
        return f"{value:,.2f}"
    return f"{value:.3g}"


def format_value(feature: str, value: object) -> str:
    """A profile figure in the unit an analyst reads it in: dollars, percent, months, counts."""
    if _missing(value):
        return "–"
    value = float(value)
    if feature in _MONEY:
        return f"${value:,.0f}"
    if feature.endswith("_FREQUENCY") or feature.startswith("PURCHASE_") or feature in _SHARES:
        return f"{value:.0%}"
    if feature == "TENURE":
        return f"{value:.0f} months"
    if feature.endswith("_TRX"):
        return f"{value:,.0f}"
    if feature.endswith("RATIO"):
        return f"{value:,.1f}x"
    return _plain(value)


def _params(text: object) -> str:
    """Candidate parameters as `k=4, n_init=4` rather than raw JSON."""
    try:
        params = text if isinstance(text, dict) else json.loads(str(text))
    except (TypeError, ValueError):
        return str(text)
    if isinstance(params, dict):
        return ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items())
    return str(params)


def signed(value: float) -> str:
    return f"{value:+.1f}".replace("-", "−")


def segment_names(inputs: ReportInputs) -> dict[int, str]:
    names = {int(r.segment_id): str(r.name) for r in inputs.segments.itertuples(index=False)}
    if "segment_name" in inputs.profiles.columns:
        for r in inputs.profiles.dropna(subset=["segment_id"]).itertuples(index=False):
            names.setdefault(int(r.segment_id), str(r.segment_name))
    return names


def colors(inputs: ReportInputs) -> dict[int, str]:
    """One palette for the whole report, from every segment id any input mentions."""
    ids: set[int] = set(inputs.segments["segment_id"].astype(int))
    ids |= set(inputs.sample["segment_id"].astype(int))
    ids |= set(inputs.drivers_segment["segment_id"].astype(int))
    ids |= set(inputs.profiles["segment_id"].dropna().astype(int))
    return plots.segment_colors(ids)


def segment_order(inputs: ReportInputs) -> list[int]:
    ids = sorted(set(inputs.segments["segment_id"].astype(int)))
    return [i for i in ids if i != NOISE] + ([NOISE] if NOISE in ids else [])


def segment_count(inputs: ReportInputs) -> str:
    ids = set(inputs.segments["segment_id"].astype(int))
    count = len(ids - {NOISE})
    return f"{count}, plus DBSCAN noise" if NOISE in ids else str(count)


def _sorted_candidates(candidates: pd.DataFrame) -> pd.DataFrame:
    frame = candidates.copy()
    frame["_order"] = frame["algorithm"].map(_ALGORITHM_ORDER).fillna(len(_ALGORITHM_ORDER))
    return frame.sort_values(["_order", "n_segments", "params"], kind="stable").drop(columns="_order")


def chosen_candidate(inputs: ReportInputs) -> pd.Series | None:
    chosen = inputs.candidates[inputs.candidates["chosen"].astype(bool)]
    return None if chosen.empty else chosen.iloc[0]


def chosen_text(inputs: ReportInputs) -> str:
    row = chosen_candidate(inputs)
    if row is None:
        return "none (no candidate was chosen)"
    return (f"{row['algorithm']} ({_params(row['params'])}) with {int(row['n_segments'])} segments: "
            f"silhouette {num(row['silhouette'])}, stability {num(row['stability'])}, "
            f"rule agreement {pct(row['rule_agreement'])}, ARI against PURCHASE_TYPE {num(row['purchase_type_ari'])}")


def key_figures(inputs: ReportInputs, segment: int) -> list[tuple[str, str, str]]:
    """(feature, segment median, population median) in raw units, for the persona card."""
    profiles = inputs.profiles
    population = profiles[profiles["segment_id"].isna()].drop_duplicates("feature").set_index("feature")
    own = profiles[profiles["segment_id"].notna()]
    own = own[own["segment_id"].astype(int) == segment].drop_duplicates("feature").set_index("feature")
    rows = []
    for feature in inputs.key_features:
        if feature in own.index:
            pop = population.at[feature, "median"] if feature in population.index else None
            rows.append((feature, format_value(feature, own.at[feature, "median"]), format_value(feature, pop)))
    return rows


def silhouette_medians(inputs: ReportInputs) -> dict[int, float]:
    sample = inputs.sample
    measured = sample[pd.to_numeric(sample["silhouette"], errors="coerce").notna()]
    return {int(k): float(v) for k, v in measured.groupby("segment_id")["silhouette"].median().items()}


def candidate_rows(inputs: ReportInputs) -> tuple[list[str], list[list[str]], list[str]]:
    resampled = "resample_wins" in inputs.candidates.columns  # absent from reports saved before selection
    header = ["verdict", "algorithm", "parameters", "segments", "silhouette", "stability", "rule agreement",
              "ARI vs PURCHASE_TYPE"] + (["resample mean", "resample wins"] if resampled else []) + ["reason"]
    rows, classes = [], []
    for _, c in _sorted_candidates(inputs.candidates).iterrows():
        chosen, ok = bool(c["chosen"]), bool(c["passed"])
        verdict = "chosen" if chosen else ("passed" if ok else "failed")
        extra = [num(c["resample_silhouette"]), _wins(c)] if resampled else []
        rows.append([verdict, str(c["algorithm"]), _params(c["params"]), str(int(c["n_segments"])),
                     num(c["silhouette"]), num(c["stability"]), pct(c["rule_agreement"]),
                     num(c["purchase_type_ari"]), *extra, "" if _missing(c["reason"]) else str(c["reason"])])
        classes.append("chosen" if chosen else ("" if ok else "failed"))
    return header, rows, classes


def _wins(c: pd.Series) -> str:
    if _missing(c["resample_wins"]):
        return ""
    tied = "" if _missing(c.get("within_noise")) or not bool(c["within_noise"]) else " (within noise)"
    return f"{int(c['resample_wins'])}{tied}"


def eda_rows(inputs: ReportInputs) -> tuple[list[str], list[list[str]]]:
    header = ["column", "missing", "zero", "p01", "p25", "median", "p75", "p99", "skew"]
    rows = [[str(r.column), pct(r.missing_share), pct(r.zero_share), _plain(r.p01), _plain(r.p25), _plain(r.p50),
             _plain(r.p75), _plain(r.p99), num(r.skew, 2)] for r in inputs.eda.itertuples(index=False)]
    return header, rows


def forest_extras(inputs: ReportInputs) -> list[tuple[str, str]]:
    """Scalar forest figures beyond the three the summary names (nested ones stay in metrics.json)."""
    return [
        (str(key), num(value) if isinstance(value, float) else str(value))
        for key, value in inputs.forest.items()
        if key not in {"accuracy", "macro_f1", "test_rows"} and isinstance(value, (bool, int, float, str))
    ]


def forest_text(inputs: ReportInputs) -> str:
    forest = inputs.forest
    rows = forest.get("test_rows")
    on = f" on {int(rows):,} held-out rows" if isinstance(rows, (int, np.integer)) else ""
    return f"accuracy {pct(forest.get('accuracy'))}, macro-F1 {num(forest.get('macro_f1'))}{on}"
