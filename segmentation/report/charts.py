"""The report's charts with their alt text, each drawn by a pure function of `report.plots`."""

from __future__ import annotations

import base64
import io
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from matplotlib import pyplot as plt
from matplotlib.figure import Figure

from segmentation.report import plots, views
from segmentation.report.inputs import ReportInputs


@dataclass
class Chart:
    """One picture of the report: where it goes, how to draw it, and what it says in words."""

    key: str
    title: str
    alt: str
    draw: Callable[[], Figure]
    caption: str = ""  # shown under the picture; says why a chart is not drawn


NO_SAMPLE = ("Not drawn: this report keeps no customer sample (report.sample: off), so no chart of "
             "individual customers is shown. The segment sizes, profiles and drivers are computed on the "
             "full training sample.")


def _list(items: list[str], limit: int = 8) -> str:
    shown = "; ".join(items[:limit])
    return shown + (f"; and {len(items) - limit} more" if len(items) > limit else "")


def charts(inputs: ReportInputs) -> list[Chart]:
    """Every chart of the report with its alt text (the text is also what the Markdown shows)."""
    names, colors = views.segment_names(inputs), views.colors(inputs)
    order = views.segment_order(inputs)
    cands = inputs.candidates
    passed = int(cands["passed"].astype(bool).sum())
    high = int((pd.to_numeric(cands["rule_agreement"], errors="coerce") > inputs.rule_threshold).sum())
    chosen = views.chosen_candidate(inputs)
    algorithms = ", ".join(dict.fromkeys(cands["algorithm"].astype(str)))
    alt_candidates = (
        f"Scatter plot of silhouette against number of segments for {algorithms}: {len(cands)} candidates, "
        f"{passed} passed the guardrails (filled markers), {len(cands) - passed} failed (hollow markers), "
        f"{high} with rule agreement above {inputs.rule_threshold:.0%} (black x). "
        + (f"Chosen (ringed): {chosen['algorithm']} with {int(chosen['n_segments'])} segments, "
           f"silhouette {views.num(chosen['silhouette'])}." if chosen is not None else "No candidate was chosen.")
    )
    seg = inputs.segments.set_index(inputs.segments["segment_id"].astype(int))
    alt_sizes = "Horizontal bar chart of customers per segment: " + _list(
        [f"{names.get(i, i)} {int(seg.at[i, 'size']):,} ({float(seg.at[i, 'share']):.1%})" for i in order], 16) + "."
    ev = list(inputs.pca_explained) + [float("nan")] * 2
    alt_pca = (
        f"Scatter plot of {len(inputs.sample):,} sampled customers on the first two principal components "
        f"(PC1 {views.pct(ev[0])}, PC2 {views.pct(ev[1])} of variance), one colour per segment: "
        + ", ".join(str(names.get(i, i)) for i in order) + "."
    )
    profile_rows = inputs.profiles[inputs.profiles["segment_id"].notna()]
    strongest = []
    for i in order:
        part = profile_rows[profile_rows["segment_id"].astype(int) == i]
        if len(part):
            top = part.loc[part["std_diff"].astype(float).abs().idxmax()]
            strongest.append(f"{names.get(i, i)}: {top['feature']} {views.signed(float(top['std_diff']))}")
    alt_heatmap = (
        f"Heatmap of standardized differences from the population, {profile_rows['feature'].nunique()} features "
        f"(rows) by {len(order)} segments (columns), red above and blue below the population. Largest per segment: "
        + _list(strongest, 16) + "."
    )
    medians = views.silhouette_medians(inputs)
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
                f"{r.feature} {views.signed(float(r.std_diff))}" for r in part.itertuples()))
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
    withheld = inputs.sample.empty
    if withheld:  # report.sample: off
        alt_pca = alt_silhouette = alt_dist = NO_SAMPLE
    drawn = [
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
    if withheld:
        drawn = [Chart(c.key, c.title, c.alt, lambda: plots.withheld(NO_SAMPLE), NO_SAMPLE)
                 if c.key in SAMPLE_CHARTS else c for c in drawn]
    return drawn


SAMPLE_CHARTS = ("pca", "silhouette", "distributions")  # drawn from individual customers' rows


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
