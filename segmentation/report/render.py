"""The segment report analysts open: one self-contained HTML page and a Markdown twin.

Everything comes in as plain pandas/numpy figures (`ReportInputs`, built by training), so the
report needs no Spark and can be rebuilt for any model version from what training stored. The
HTML embeds every chart as a base64 PNG and its CSS inline: it opens offline, from a mail
attachment or a file share, with nothing fetched.
"""

from __future__ import annotations

import base64
import io
import json
import math
import os
import tempfile
from collections.abc import Callable, Collection
from dataclasses import dataclass
from html import escape
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib import pyplot as plt
from matplotlib.figure import Figure

from segmentation.core.columns import NOISE
from segmentation.report import plots

_MONEY = {
    "BALANCE", "PURCHASES", "ONEOFF_PURCHASES", "INSTALLMENTS_PURCHASES", "CASH_ADVANCE", "CREDIT_LIMIT",
    "PAYMENTS", "MINIMUM_PAYMENTS", "MONTHLY_AVG_PURCHASES", "MONTHLY_CASH_ADVANCE",
}
_SHARES = {"PRC_FULL_PAYMENT", "LIMIT_USAGE"}  # fractions shown as percent (LIMIT_USAGE may pass 100%)
_ALGORITHM_ORDER = {"kmeans": 0, "gmm": 1, "dbscan": 2}


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


# ---------------------------------------------------------------- formatting


def _missing(value: object) -> bool:
    try:
        return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))
    except TypeError:
        return False


def _num(value: object, digits: int = 3) -> str:
    if _missing(value):
        return "–"
    return f"{float(value):.{digits}f}"


def _pct(value: object, digits: int = 1) -> str:
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


def _signed(value: float) -> str:
    return f"{value:+.1f}".replace("-", "−")


# ---------------------------------------------------------------- derived views


def _names(inputs: ReportInputs) -> dict[int, str]:
    names = {int(r.segment_id): str(r.name) for r in inputs.segments.itertuples(index=False)}
    if "segment_name" in inputs.profiles.columns:
        for r in inputs.profiles.dropna(subset=["segment_id"]).itertuples(index=False):
            names.setdefault(int(r.segment_id), str(r.segment_name))
    return names


def _colors(inputs: ReportInputs) -> dict[int, str]:
    """One palette for the whole report, from every segment id any input mentions."""
    ids: set[int] = set(inputs.segments["segment_id"].astype(int))
    ids |= set(inputs.sample["segment_id"].astype(int))
    ids |= set(inputs.drivers_segment["segment_id"].astype(int))
    ids |= set(inputs.profiles["segment_id"].dropna().astype(int))
    return plots.segment_colors(ids)


def _segment_order(inputs: ReportInputs) -> list[int]:
    ids = sorted(set(inputs.segments["segment_id"].astype(int)))
    return [i for i in ids if i != NOISE] + ([NOISE] if NOISE in ids else [])


def _segment_count(inputs: ReportInputs) -> str:
    ids = set(inputs.segments["segment_id"].astype(int))
    count = len(ids - {NOISE})
    return f"{count}, plus DBSCAN noise" if NOISE in ids else str(count)


def _sorted_candidates(candidates: pd.DataFrame) -> pd.DataFrame:
    frame = candidates.copy()
    frame["_order"] = frame["algorithm"].map(_ALGORITHM_ORDER).fillna(len(_ALGORITHM_ORDER))
    return frame.sort_values(["_order", "n_segments", "params"], kind="stable").drop(columns="_order")


def _chosen(inputs: ReportInputs) -> pd.Series | None:
    chosen = inputs.candidates[inputs.candidates["chosen"].astype(bool)]
    return None if chosen.empty else chosen.iloc[0]


def _chosen_text(inputs: ReportInputs) -> str:
    row = _chosen(inputs)
    if row is None:
        return "none (no candidate was chosen)"
    return (f"{row['algorithm']} ({_params(row['params'])}) with {int(row['n_segments'])} segments: "
            f"silhouette {_num(row['silhouette'])}, stability {_num(row['stability'])}, "
            f"rule agreement {_pct(row['rule_agreement'])}, ARI against PURCHASE_TYPE {_num(row['purchase_type_ari'])}")


def _key_figures(inputs: ReportInputs, segment: int) -> list[tuple[str, str, str]]:
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


def _silhouette_medians(inputs: ReportInputs) -> dict[int, float]:
    sample = inputs.sample
    measured = sample[pd.to_numeric(sample["silhouette"], errors="coerce").notna()]
    return {int(k): float(v) for k, v in measured.groupby("segment_id")["silhouette"].median().items()}


# ---------------------------------------------------------------- charts and their alt text


@dataclass
class Chart:
    """One picture of the report: where it goes, how to draw it, and what it says in words."""

    key: str
    title: str
    alt: str
    draw: Callable[[], Figure]


def _list(items: list[str], limit: int = 8) -> str:
    shown = "; ".join(items[:limit])
    return shown + (f"; and {len(items) - limit} more" if len(items) > limit else "")


def charts(inputs: ReportInputs) -> list[Chart]:
    """Every chart of the report with its alt text (the text is also what the Markdown shows)."""
    names, colors = _names(inputs), _colors(inputs)
    order = _segment_order(inputs)
    cands = inputs.candidates
    passed = int(cands["passed"].astype(bool).sum())
    high = int((pd.to_numeric(cands["rule_agreement"], errors="coerce") > inputs.rule_threshold).sum())
    chosen = _chosen(inputs)
    algorithms = ", ".join(dict.fromkeys(cands["algorithm"].astype(str)))
    alt_candidates = (
        f"Scatter plot of silhouette against number of segments for {algorithms}: {len(cands)} candidates, "
        f"{passed} passed the guardrails (filled markers), {len(cands) - passed} failed (hollow markers), "
        f"{high} with rule agreement above {inputs.rule_threshold:.0%} (black x). "
        + (f"Chosen (ringed): {chosen['algorithm']} with {int(chosen['n_segments'])} segments, "
           f"silhouette {_num(chosen['silhouette'])}." if chosen is not None else "No candidate was chosen.")
    )
    seg = inputs.segments.set_index(inputs.segments["segment_id"].astype(int))
    alt_sizes = "Horizontal bar chart of customers per segment: " + _list(
        [f"{names.get(i, i)} {int(seg.at[i, 'size']):,} ({float(seg.at[i, 'share']):.1%})" for i in order], 16) + "."
    ev = list(inputs.pca_explained) + [float("nan")] * 2
    alt_pca = (
        f"Scatter plot of {len(inputs.sample):,} sampled customers on the first two principal components "
        f"(PC1 {_pct(ev[0])}, PC2 {_pct(ev[1])} of variance), one colour per segment: "
        + ", ".join(str(names.get(i, i)) for i in order) + "."
    )
    profile_rows = inputs.profiles[inputs.profiles["segment_id"].notna()]
    strongest = []
    for i in order:
        part = profile_rows[profile_rows["segment_id"].astype(int) == i]
        if len(part):
            top = part.loc[part["std_diff"].astype(float).abs().idxmax()]
            strongest.append(f"{names.get(i, i)}: {top['feature']} {_signed(float(top['std_diff']))}")
    alt_heatmap = (
        f"Heatmap of standardized differences from the population, {profile_rows['feature'].nunique()} features "
        f"(rows) by {len(order)} segments (columns), red above and blue below the population. Largest per segment: "
        + _list(strongest, 16) + "."
    )
    medians = _silhouette_medians(inputs)
    alt_silhouette = (
        "Box plots of per-customer silhouette for each segment; medians: "
        + _list([f"{names.get(i, i)} {medians[i]:.2f}" for i in order if i in medians], 16) + "."
        if medians else "Silhouette per segment: not measured on any sampled customer."
    )
    dg = inputs.drivers_global
    by_perm = dg.sort_values("permutation_importance", ascending=False).head(3)
    by_imp = dg.sort_values("impurity_importance", ascending=False).head(3)
    alt_global = (
        "Two bar charts of global drivers. Permutation importance on held-out rows, top: "
        + ", ".join(f"{r.feature} {r.permutation_importance:.3f} ± {r.permutation_std:.3f}"
                    for r in by_perm.itertuples())
        + ". Impurity importance beside it, biased toward high-variance columns, top: "
        + ", ".join(f"{r.feature} {r.impurity_importance:.3f}" for r in by_imp.itertuples()) + "."
    )
    per_segment = []
    ds = inputs.drivers_segment
    for i in order:
        part = ds[ds["segment_id"].astype(int) == i].sort_values("rank").head(2)
        if len(part):
            per_segment.append(f"{names.get(i, i)}: " + ", ".join(
                f"{r.feature} {_signed(float(r.std_diff))}" for r in part.itertuples()))
    alt_segment = ("Bar charts, one per segment, of the features that most separate it from the population "
                   "(standardized difference): " + _list(per_segment, 16) + ".")
    zeros = []
    for column in inputs.distribution_columns:
        values = pd.to_numeric(inputs.sample[column], errors="coerce").dropna()
        if len(values):
            zeros.append(f"{column} {float((values == 0).mean()):.0%}")
    alt_dist = (
        f"Histograms on a log1p scale of {', '.join(inputs.distribution_columns)} for all sampled customers (grey) "
        f"and each segment (coloured lines); share of zeros: {', '.join(zeros)}."
    )
    corr = inputs.correlation.astype(float)
    pairs = []
    columns = list(corr.columns)
    for a in range(len(columns)):
        for b in range(a + 1, len(columns)):
            value = corr.iat[a, b]
            if np.isfinite(value):
                pairs.append((abs(value), columns[a], columns[b], value))
    pairs.sort(key=lambda p: (-p[0], p[1], p[2]))
    alt_corr = (
        f"Correlation heatmap (lower triangle) of {len(columns)} model features; strongest pairs: "
        + ", ".join(f"{a} and {b} {v:+.2f}" for _, a, b, v in pairs[:4]) + "."
    )
    return [
        Chart("candidates", "Candidate comparison", alt_candidates,
              lambda: plots.candidate_comparison(cands, inputs.rule_threshold)),
        Chart("sizes", "Segment sizes", alt_sizes, lambda: plots.segment_sizes(inputs.segments, colors)),
        Chart("pca", "Segments on two principal components", alt_pca,
              lambda: plots.pca_scatter(inputs.sample, inputs.pca_explained, colors, names)),
        Chart("profiles", "Standardized profiles", alt_heatmap,
              lambda: plots.profile_heatmap(inputs.profiles, colors, names)),
        Chart("silhouette", "Silhouette per segment", alt_silhouette,
              lambda: plots.silhouette_by_segment(inputs.sample, colors, names)),
        Chart("drivers-global", "Global drivers", alt_global,
              lambda: plots.global_drivers(inputs.drivers_global, plots.TOP_GLOBAL_DRIVERS)),
        Chart("drivers-segment", "Drivers per segment", alt_segment,
              lambda: plots.segment_drivers(inputs.drivers_segment, colors, names, plots.TOP_SEGMENT_DRIVERS)),
        Chart("distributions", "Distributions of the main raw columns", alt_dist,
              lambda: plots.distributions(inputs.sample, inputs.distribution_columns, colors, names)),
        Chart("correlation", "Correlation of the model features", alt_corr,
              lambda: plots.correlation_heatmap(inputs.correlation)),
    ]


def png_data_uri(fig: Figure) -> str:
    """The figure as a base64 PNG data URI, and the figure released so nightly memory stays flat."""
    try:
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=plots.DPI, facecolor="white")
    finally:
        # Plots are built without pyplot; closing is then a no-op, but a pyplot-made figure
        # would otherwise stay registered for the life of the process.
        plt.close(fig)
        fig.clear()
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


# ---------------------------------------------------------------- HTML

_CSS = """
:root { color-scheme: light; }
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", Arial, sans-serif;
       margin: 0; color: #1f1f1f; background: #fafafa; line-height: 1.45; }
main { max-width: 1180px; margin: 0 auto; padding: 24px 28px 64px; background: #fff; }
h1 { font-size: 1.6em; margin: 0 0 4px; }
h2 { font-size: 1.25em; margin: 36px 0 10px; padding-top: 8px; border-top: 1px solid #e3e3e3; }
h3 { font-size: 1.05em; margin: 0; }
nav { font-size: .9em; margin: 8px 0 16px; }
nav a { margin-right: 14px; color: #0b5394; }
.muted { color: #5f5f5f; font-size: .9em; }
dl.summary { display: grid; grid-template-columns: max-content 1fr; gap: 4px 18px; margin: 12px 0; }
dl.summary dt { font-weight: 600; }
dl.summary dd { margin: 0; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(330px, 1fr)); gap: 16px; }
.card { border: 1px solid #d9d9d9; border-radius: 6px; padding: 14px 16px; background: #fff; }
.card-head { display: flex; align-items: center; gap: 10px; margin-bottom: 4px; }
.swatch { display: inline-block; width: 18px; height: 18px; border-radius: 3px; border: 1px solid #333;
          flex: none; }
.card p { margin: 6px 0; font-size: .93em; }
figure { margin: 14px 0 22px; }
figure img { max-width: 100%; height: auto; display: block; border: 1px solid #eee; }
figcaption { font-size: .85em; color: #5f5f5f; margin-top: 4px; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; font-size: .85em; margin: 8px 0; }
th, td { border-bottom: 1px solid #e6e6e6; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f2f2f2; font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
table.figures { width: 100%; font-size: .85em; }
tr.chosen td { background: #fff4cc; font-weight: 600; }
tr.failed td { color: #6b6b6b; }
td.reason { max-width: 420px; }
.badge { display: inline-block; padding: 0 6px; border-radius: 3px; font-size: .85em; white-space: nowrap; }
.pass { background: #dff0e3; color: #14532d; }
.fail { background: #f6dede; color: #7f1d1d; }
.win { background: #1f1f1f; color: #fff; }
"""


def _figure_html(chart: Chart, caption: str = "") -> str:
    src = png_data_uri(chart.draw())
    text = f"<figcaption>{escape(caption)}</figcaption>" if caption else ""
    return (f'<figure id="fig-{escape(chart.key)}"><img src="{src}" alt="{escape(chart.alt)}" '
            f'loading="eager" decoding="sync">{text}</figure>')


class _Html(str):
    """A table cell that is already HTML (built here from escaped parts), inserted as is."""


def _table(header: list[str], rows: list[list[str]], numeric: Collection[int] = (),
           row_classes: list[str] | None = None) -> str:
    """An HTML table of formatted cells, escaped unless `_Html`; numeric columns right-aligned."""
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = []
    for r, cells in enumerate(rows):
        cls = f' class="{row_classes[r]}"' if row_classes and row_classes[r] else ""
        tds = "".join(
            ('<td class="num">' if i in numeric else "<td>") + (c if isinstance(c, _Html) else escape(c)) + "</td>"
            for i, c in enumerate(cells)
        )
        body.append(f"<tr{cls}>{tds}</tr>")
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>'


def _candidate_rows(inputs: ReportInputs) -> tuple[list[str], list[list[str]], list[str]]:
    header = ["verdict", "algorithm", "parameters", "segments", "silhouette", "stability", "rule agreement",
              "ARI vs PURCHASE_TYPE", "reason"]
    rows, classes = [], []
    for _, c in _sorted_candidates(inputs.candidates).iterrows():
        chosen, ok = bool(c["chosen"]), bool(c["passed"])
        verdict = "chosen" if chosen else ("passed" if ok else "failed")
        rows.append([verdict, str(c["algorithm"]), _params(c["params"]), str(int(c["n_segments"])),
                     _num(c["silhouette"]), _num(c["stability"]), _pct(c["rule_agreement"]),
                     _num(c["purchase_type_ari"]), "" if _missing(c["reason"]) else str(c["reason"])])
        classes.append("chosen" if chosen else ("" if ok else "failed"))
    return header, rows, classes


def _candidate_table_html(inputs: ReportInputs) -> str:
    header, rows, classes = _candidate_rows(inputs)
    badge = {"chosen": "win", "passed": "pass", "failed": "fail"}
    for row in rows:
        row[0] = _Html(f'<span class="badge {badge[row[0]]}">{escape(row[0])}</span>')
    return _table(header, rows, numeric={3, 4, 5, 6, 7}, row_classes=classes)


def _eda_rows(inputs: ReportInputs) -> tuple[list[str], list[list[str]]]:
    header = ["column", "missing", "zero", "p01", "p25", "median", "p75", "p99", "skew"]
    rows = [[str(r.column), _pct(r.missing_share), _pct(r.zero_share), _plain(r.p01), _plain(r.p25), _plain(r.p50),
             _plain(r.p75), _plain(r.p99), _num(r.skew, 2)] for r in inputs.eda.itertuples(index=False)]
    return header, rows


def _forest_extras(inputs: ReportInputs) -> list[tuple[str, str]]:
    """Scalar forest figures beyond the three the summary names (nested ones stay in metrics.json)."""
    return [
        (str(key), _num(value) if isinstance(value, float) else str(value))
        for key, value in inputs.forest.items()
        if key not in {"accuracy", "macro_f1", "test_rows"} and isinstance(value, (bool, int, float, str))
    ]


def _forest_text(inputs: ReportInputs) -> str:
    forest = inputs.forest
    rows = forest.get("test_rows")
    on = f" on {int(rows):,} held-out rows" if isinstance(rows, (int, np.integer)) else ""
    return f"accuracy {_pct(forest.get('accuracy'))}, macro-F1 {_num(forest.get('macro_f1'))}{on}"


def _persona_cards_html(inputs: ReportInputs, colors: dict[int, str]) -> str:
    seg = inputs.segments.set_index(inputs.segments["segment_id"].astype(int))
    cards = []
    for i in _segment_order(inputs):
        row = seg.loc[i]
        name, description = str(row["name"]), str(row["description"])
        figures = _key_figures(inputs, i)
        table = ""
        if figures:
            body = "".join(
                f'<tr><td>{escape(f)}</td><td class="num">{escape(s)}</td><td class="num">{escape(p)}</td></tr>'
                for f, s, p in figures
            )
            table = ('<table class="figures"><thead><tr><th>median</th><th>segment</th><th>population</th></tr>'
                     f"</thead><tbody>{body}</tbody></table>")
        label = "noise (DBSCAN)" if i == NOISE else f"segment {i}"
        swatch_label = escape(f"colour of {name} in every chart")
        cards.append(
            f'<article class="card" id="segment-{i}"><div class="card-head">'
            f'<span class="swatch" style="background:{escape(colors[i])}" role="img" aria-label="{swatch_label}">'
            f"</span><h3>{escape(name)}</h3></div>"
            f'<p class="muted">{escape(label)} · {int(row["size"]):,} customers · '
            f'{float(row["share"]):.1%} of the sample</p>'
            f"<p>{escape(description)}</p>{table}</article>"
        )
    return f'<div class="cards">{"".join(cards)}</div>'


def render_html(inputs: ReportInputs) -> str:
    """The self-contained report page: inline CSS, every chart an embedded PNG, nothing fetched."""
    check_inputs(inputs)
    colors = _colors(inputs)
    figs = {c.key: c for c in charts(inputs)}
    summary = [
        ("Model version", inputs.model_version),
        ("Run date", inputs.run_date),
        ("Trained on", inputs.trained_on),
        ("Created at (UTC)", inputs.created_at),
        ("Chosen candidate", _chosen_text(inputs)),
        ("Candidates", f"{len(inputs.candidates)}, of which {int(inputs.candidates['passed'].astype(bool).sum())} "
                       f"passed the guardrails"),
        ("Segments", _segment_count(inputs)),
        ("Forest", _forest_text(inputs)),
    ] + [(f"Forest {k}", v) for k, v in _forest_extras(inputs)]
    summary_html = "".join(f"<dt>{escape(k)}</dt><dd>{escape(str(v))}</dd>" for k, v in summary)
    dg = inputs.drivers_global.sort_values("permutation_importance", ascending=False)
    drivers_table = _table(
        ["feature", "permutation importance", "± std", "impurity importance"],
        [[str(r.feature), _num(r.permutation_importance), _num(r.permutation_std), _num(r.impurity_importance)]
         for r in dg.itertuples(index=False)],
        numeric={1, 2, 3},
    )
    eda_header, eda_rows = _eda_rows(inputs)
    sections = [
        ("personas", "Personas", _persona_cards_html(inputs, colors)
         + '<p class="muted">Key figures are medians in raw units over the training sample; the swatch is the '
           "segment's colour in every chart.</p>"),
        ("candidates", "Candidate comparison",
         _figure_html(figs["candidates"], "Filled: passed the guardrails; hollow: failed; x: a two-level rule "
                                          f"reproduces more than {inputs.rule_threshold:.0%} of the labels; "
                                          "ring: chosen.")
         + _candidate_table_html(inputs)),
        ("sizes", "Segment sizes", _figure_html(figs["sizes"])),
        ("pca", "Segments on two principal components", _figure_html(figs["pca"])),
        ("profiles", "Standardized profiles",
         _figure_html(figs["profiles"], "Difference of each feature's mean from the population mean, in population "
                                        "standard deviations.")),
        ("silhouette", "Silhouette per segment", _figure_html(figs["silhouette"])),
        ("drivers", "Drivers",
         _figure_html(figs["drivers-global"], "Permutation importance is measured on the forest's held-out rows; "
                                              "impurity importance is biased toward high-variance columns.")
         + drivers_table + _figure_html(figs["drivers-segment"])),
        ("eda", "Exploratory analysis",
         _table(eda_header, eda_rows, numeric=set(range(1, 9)))
         + _figure_html(figs["distributions"], "log1p axis: zero stays at zero, ticks in raw units.")
         + _figure_html(figs["correlation"])),
    ]
    nav = "".join(f'<a href="#{key}">{escape(title)}</a>' for key, title, _ in sections)
    body = "".join(f'<section id="{key}"><h2>{escape(title)}</h2>{content}</section>'
                   for key, title, content in sections)
    title = f"Segment report · model {inputs.model_version}"
    return (
        "<!DOCTYPE html>\n"
        f'<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<link rel="icon" href="data:,">'  # no favicon request from file://
        f"<style>{_CSS}</style></head><body><main>"
        f"<h1>{escape(title)}</h1>"
        f'<p class="muted">Customer segments of run date {escape(inputs.run_date)}, trained on '
        f"{escape(inputs.trained_on)}.</p>"
        f'<nav>{nav}</nav><section id="summary"><h2>Summary</h2><dl class="summary">{summary_html}</dl></section>'
        f"{body}</main></body></html>\n"
    )


# ---------------------------------------------------------------- Markdown


def _md(text: object) -> str:
    """A Markdown table cell: pipes escaped, one line."""
    return str(text).replace("\\", "\\\\").replace("|", "\\|").replace("\r", " ").replace("\n", " ")


def _md_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(_md(h) for h in header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_md(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def render_markdown(inputs: ReportInputs) -> str:
    """The report as text and tables (for diffs, chat and terminals); the charts live in report.html."""
    check_inputs(inputs)
    figs = {c.key: c for c in charts(inputs)}
    seg = inputs.segments.set_index(inputs.segments["segment_id"].astype(int))
    names = _names(inputs)
    out = [
        f"# Segment report: model {inputs.model_version}",
        "",
        f"- Run date: {inputs.run_date}",
        f"- Trained on: {inputs.trained_on}",
        f"- Created at (UTC): {inputs.created_at}",
        f"- Chosen candidate: {_chosen_text(inputs)}",
        f"- Candidates: {len(inputs.candidates)}, of which {int(inputs.candidates['passed'].astype(bool).sum())} "
        f"passed the guardrails",
        f"- Forest: {_forest_text(inputs)}",
    ]
    out += [f"- Forest {k}: {v}" for k, v in _forest_extras(inputs)]
    out += ["", "The charts are in `report.html` next to this file; each is described below in words.", "",
            "## Personas", ""]
    for i in _segment_order(inputs):
        row = seg.loc[i]
        label = "noise (DBSCAN)" if i == NOISE else f"segment {i}"
        out += [f"### {row['name']}", "",
                f"{label} · {int(row['size']):,} customers · {float(row['share']):.1%} of the sample", "",
                str(row["description"]), ""]
        figures = _key_figures(inputs, i)
        if figures:
            out += [_md_table(["median", "segment", "population"], [list(f) for f in figures]), ""]
    header, rows, _ = _candidate_rows(inputs)
    out += ["## Candidate comparison", "", f"_Chart: {figs['candidates'].alt}_", "", _md_table(header, rows), ""]
    out += ["## Segment sizes", "", _md_table(
        ["segment", "name", "customers", "share"],
        [[str(i), str(seg.at[i, "name"]), f"{int(seg.at[i, 'size']):,}", f"{float(seg.at[i, 'share']):.1%}"]
         for i in _segment_order(inputs)]), ""]
    out += ["## Segments on two principal components", "", f"_Chart: {figs['pca'].alt}_", ""]
    out += ["## Standardized profiles", "", f"_Chart: {figs['profiles'].alt}_", ""]
    medians = _silhouette_medians(inputs)
    out += ["## Silhouette per segment", "", f"_Chart: {figs['silhouette'].alt}_", ""]
    if medians:
        rows = [[str(names.get(i, i)), f"{medians[i]:.3f}"] for i in _segment_order(inputs) if i in medians]
        out += [_md_table(["segment", "median silhouette"], rows), ""]
    dg = inputs.drivers_global.sort_values("permutation_importance", ascending=False)
    out += ["## Drivers", "", "### Global", "",
            "Permutation importance on the forest's held-out rows; impurity importance beside it is biased toward "
            "high-variance columns.", "",
            _md_table(["feature", "permutation importance", "± std", "impurity importance"],
                      [[str(r.feature), _num(r.permutation_importance), _num(r.permutation_std),
                        _num(r.impurity_importance)] for r in dg.itertuples(index=False)]), "",
            "### Per segment", ""]
    ds = inputs.drivers_segment
    for i in _segment_order(inputs):
        part = ds[ds["segment_id"].astype(int) == i].sort_values("rank").head(plots.TOP_SEGMENT_DRIVERS)
        if len(part):
            out.append(f"- **{_md(names.get(i, i))}**: " + ", ".join(
                f"{r.feature} {_signed(float(r.std_diff))}" for r in part.itertuples(index=False)))
    eda_header, eda_rows = _eda_rows(inputs)
    out += ["", "## Exploratory analysis", "", _md_table(eda_header, eda_rows), "",
            f"_Chart: {figs['distributions'].alt}_", "", f"_Chart: {figs['correlation'].alt}_", ""]
    return "\n".join(out)


# ---------------------------------------------------------------- files


def _write_atomically(path: Path, text: str) -> None:
    """Readers see the old report or the new one, never half a file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_report(inputs: ReportInputs, folder: Path) -> tuple[Path, Path]:
    """Writes `report.html` and `report.md` into `folder` (created if missing); returns both paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    html_text, md_text = render_html(inputs), render_markdown(inputs)
    html_path, md_path = folder / "report.html", folder / "report.md"
    _write_atomically(html_path, html_text)
    _write_atomically(md_path, md_text)
    return html_path, md_path
