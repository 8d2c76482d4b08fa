"""What the report shows (`ReportInputs`), checked, and saved beside the model, so any version's report can be rebuilt later.

Frames go to Parquet and scalars to JSON (no pickle: rebuilding a report runs no stored code).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from segmentation.core.errors import ModelError


@dataclass(eq=False)  # frames do not compare to a single bool
class ReportInputs:
    """What the report shows, as training computed it (plain pandas/numpy/python values)."""

    model_version: str
    run_date: str
    trained_on: str
    created_at: str  # ISO 8601, UTC
    forest: dict  # accuracy, macro_f1, test_rows, possibly more
    candidates: pd.DataFrame  # algorithm, params (JSON), n_segments, silhouette, stability, rule_agreement,
    #                           purchase_type_ari, passed, reason, chosen
    segments: pd.DataFrame  # segment_id (-1 = noise), name, description, size, share
    sample: pd.DataFrame  # segment_id, pc1, pc2, silhouette (NaN = not measured), distribution_columns
    distribution_columns: list[str]
    pca_explained: list[float]  # variance ratios of pc1 and pc2
    profiles: pd.DataFrame  # long: segment_id (<NA> = population), segment_name, size, share, feature,
    #                         mean, median, p25, p75, std_diff
    drivers_global: pd.DataFrame  # feature, permutation_importance, permutation_std, impurity_importance
    drivers_segment: pd.DataFrame  # segment_id, feature, std_diff, rank (1 = strongest)
    eda: pd.DataFrame  # column, missing_share, zero_share, p01, p25, p50, p75, p99, skew
    correlation: pd.DataFrame  # square, index == columns == feature names
    key_features: list[str]  # shown on persona cards: segment median against population median
    # The training's train.clustering.guardrails.max_rule_agreement: above it a shallow rule on the
    # raw columns reproduces a candidate's labels, which the candidate plot marks with an x.
    rule_threshold: float
    # How the winner was chosen (the selection's sentence); empty for reports saved before it.
    selection: str = ""


_REQUIRED = {
    "candidates": ["algorithm", "params", "n_segments", "silhouette", "stability", "rule_agreement",
                   "purchase_type_ari", "passed", "reason", "chosen"],
    "segments": ["segment_id", "name", "description", "size", "share"],
    "sample": ["segment_id", "pc1", "pc2", "silhouette"],
    "profiles": ["segment_id", "feature", "median", "std_diff"],
    "drivers_global": ["feature", "permutation_importance", "permutation_std", "impurity_importance"],
    "drivers_segment": ["segment_id", "feature", "std_diff", "rank"],
    "eda": ["column", "missing_share", "zero_share", "p01", "p25", "p50", "p75", "p99", "skew"],
}


def check_inputs(inputs: ReportInputs) -> None:
    """Fails with the frame and columns that are missing, before any chart is drawn."""
    problems = []
    for name, columns in _REQUIRED.items():
        frame = getattr(inputs, name)
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            problems.append(f"{name} lacks {', '.join(missing)}")
    absent = [c for c in inputs.distribution_columns if c not in inputs.sample.columns]
    if absent:
        problems.append(f"sample lacks the distribution columns {', '.join(absent)}")
    if list(inputs.correlation.index) != list(inputs.correlation.columns):
        problems.append("correlation is not square with index == columns")
    if problems:
        raise ValueError("report inputs: " + "; ".join(problems))


SAMPLE_MODES = ("full", "pseudonymised", "off")
SIGNIFICANT_DIGITS = 2


def shared_sample(sample: pd.DataFrame, mode: str, seed: int = 0) -> pd.DataFrame:
    """The report's customer sample as `report.sample` allows it to be kept and shipped.

    The sample never holds a CUST_ID. `pseudonymised` removes what still ties a row to one
    customer's account: the row order (the training sample's, which follows the input's) is
    shuffled and every raw amount or share is rounded to 2 significant digits (a balance of
    1,234.56 becomes 1,200), so no value can be matched against the bank's records; the charts
    (log-scale histograms, a scatter) look the same. `off` keeps the columns and no rows.
    """
    if mode not in SAMPLE_MODES:
        raise ValueError(f"report sample mode {mode!r} is not one of {', '.join(SAMPLE_MODES)}")
    if mode == "full":
        return sample
    if mode == "off":
        return sample.iloc[0:0].copy()
    shuffled = sample.sample(frac=1.0, random_state=seed).reset_index(drop=True)
    for column in shuffled.columns:
        if column == "segment_id":
            continue
        values = pd.to_numeric(shuffled[column], errors="coerce").astype(float)
        if column in ("pc1", "pc2", "silhouette"):
            shuffled[column] = values.round(2)
        else:
            shuffled[column] = _significant(values.to_numpy(), SIGNIFICANT_DIGITS)
    return shuffled


def _significant(values: np.ndarray, digits: int) -> np.ndarray:
    finite = np.isfinite(values) & (values != 0)
    out = values.copy()
    scale = np.zeros_like(values)
    scale[finite] = 10.0 ** (digits - 1 - np.floor(np.log10(np.abs(values[finite]))))
    out[finite] = np.round(values[finite] * scale[finite]) / scale[finite]
    return out


FOLDER = "report_data"
META = "meta.json"


def save(inputs: ReportInputs, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    meta = {}
    for f in dataclasses.fields(inputs):
        value = getattr(inputs, f.name)
        if isinstance(value, pd.DataFrame):
            frame = value.copy()
            frame.columns = [str(c) for c in frame.columns]
            keep_index = f.name == "correlation"
            frame.to_parquet(folder / f"{f.name}.parquet", index=keep_index)
        else:
            meta[f.name] = value
    (folder / META).write_text(json.dumps(meta, indent=2, default=float))


def load(folder: Path) -> ReportInputs:
    """The inputs saved with a model; a named error for a model trained before reports existed."""
    if not (folder / META).is_file():
        raise ModelError(f"{folder.parent.name} has no saved report inputs (trained before reports existed): retrain it")
    values = json.loads((folder / META).read_text())
    for path in folder.glob("*.parquet"):
        values[path.stem] = pd.read_parquet(path)
    names = {f.name for f in dataclasses.fields(ReportInputs)}
    required = {f.name for f in dataclasses.fields(ReportInputs) if f.default is dataclasses.MISSING}
    missing = sorted(required - set(values))
    if missing:
        raise ModelError(f"report inputs in {folder} lack {', '.join(missing)}")
    return ReportInputs(**{k: v for k, v in values.items() if k in names})
