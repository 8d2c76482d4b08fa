"""The segment report's pictures: pure functions from frames to matplotlib Figures.

Figures are built with `matplotlib.figure.Figure` on the Agg canvas, never through pyplot: no
global figure registry (nothing to leak on a nightly driver), no display needed, and the
caller's backend is left alone. Nothing here touches Spark or writes files.

Every plot that shows segments takes `colors` from `segment_colors`, so a segment has one colour
in every picture.
"""

from __future__ import annotations

import textwrap
import warnings
from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import hsv_to_rgb, to_hex
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle

from segmentation.core.columns import NOISE

DPI = 100
NOISE_COLOR = "#999999"
# Okabe-Ito (colour-blind safe) first, then Paul Tol's "muted" set for runs with more segments
# (the notebook profile's DBSCAN finds 13); greys are left out so noise stays unmistakable.
PALETTE = [
    "#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000",
    "#332288", "#DDCC77", "#117733", "#88CCEE", "#882255", "#44AA99", "#999933", "#AA4499",
]
ALGORITHM_STYLE = {  # the candidate plot's algorithms: shape tells them apart as well as colour
    "kmeans": ("K-Means", "#0072B2", "o"),
    "gmm": ("Gaussian mixture", "#D55E00", "s"),
    "dbscan": ("DBSCAN", "#009E73", "^"),
}
DIVERGING = "RdBu_r"  # red-blue diverges without relying on red-green
EDGE = "#333333"  # a thin dark edge keeps the pale palette colours (yellow) visible on white
MAX_INCHES = 12.5  # at 100 dpi no picture is wider or taller than a laptop screen
MAX_OVERLAID = 8  # more segment lines than this on one histogram is a tangle, not a comparison
MIN_OVERLAY_ROWS = 30  # a segment with fewer sampled rows draws noise, not a distribution
TOP_GLOBAL_DRIVERS = 15  # features in the global drivers chart
TOP_SEGMENT_DRIVERS = 5  # features per segment in the per-segment drivers chart and table


def segment_colors(segment_ids: Iterable[int]) -> dict[int, str]:
    """One colour per segment id, by rank of the id, with grey for DBSCAN noise (-1).

    Call it once with every segment of the model and pass the result to each plot: a plot whose
    data lacks a segment then still colours the others as everywhere else.
    """
    ids = sorted({int(i) for i in segment_ids})
    colors: dict[int, str] = {}
    rank = 0
    for segment in ids:
        if segment == NOISE:
            colors[segment] = NOISE_COLOR
            continue
        if rank < len(PALETTE):
            colors[segment] = PALETTE[rank]
        else:  # beyond 16 segments no palette stays readable; keep the colours at least distinct
            hue = (rank * 0.618033988749895) % 1.0
            colors[segment] = _hsv_hex(hue, 0.65, 0.75)
        rank += 1
    return colors


def _hsv_hex(h: float, s: float, v: float) -> str:
    return to_hex(hsv_to_rgb((h, s, v)))


def _figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _wrap(text: str, width: int = 22, lines: int = 2) -> str:
    """Long segment names on two short lines instead of one that pushes the plot aside."""
    return "\n".join(textwrap.wrap(str(text), width, max_lines=lines, placeholder="…")) or str(text)


def _short(text: str, width: int = 32) -> str:
    text = str(text)
    return text if len(text) <= width else text[: width - 1] + "…"


def _label(segment: int, names: Mapping[int, str] | None) -> str:
    if names and segment in names:
        return str(names[segment])
    return "Noise" if segment == NOISE else f"Segment {segment}"


def _colors_for(ids: Iterable[int], colors: Mapping[int, str] | None) -> Mapping[int, str]:
    ids = [int(i) for i in ids]
    if colors is None:
        return segment_colors(ids)
    missing = [i for i in ids if i not in colors]
    if missing:
        raise ValueError(f"no colour for segment ids {missing}: build colors from every segment of the model")
    return colors


def _heatmap(data: pd.DataFrame, ax, **kwargs) -> None:
    # seaborn 0.13 calls a colormap method matplotlib 3.11 has scheduled for deprecation; the
    # warning is seaborn's to fix and would only clutter the nightly log.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=PendingDeprecationWarning, module="seaborn")
        sns.heatmap(data, ax=ax, **kwargs)


def _ordered(ids: Iterable[int]) -> list[int]:
    """Segments in id order with noise last, the order of every legend and axis."""
    ids = sorted({int(i) for i in ids})
    return [i for i in ids if i != NOISE] + ([NOISE] if NOISE in ids else [])


def _empty(ax, message: str) -> None:
    ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes, color="#555555")


def withheld(message: str) -> Figure:
    """A placeholder where a chart of individual customers is not drawn."""
    fig = _figure(9.5, 1.6)
    ax = fig.add_subplot()
    ax.set_axis_off()
    _empty(ax, _wrap(message, 110, 3))
    return fig


def candidate_comparison(candidates: pd.DataFrame, rule_threshold: float) -> Figure:
    """Silhouette against the number of segments, per algorithm, with each candidate's verdict.

    Filled markers passed the guardrails, hollow ones failed; a black x marks a rule agreement
    above `rule_threshold` (a shallow rule reproduces the labels); the winner is ringed.
    """
    fig = _figure(9.5, 5.0)
    ax = fig.add_subplot()
    frame = candidates.copy()
    frame["silhouette"] = pd.to_numeric(frame["silhouette"], errors="coerce")
    frame["rule_agreement"] = pd.to_numeric(frame["rule_agreement"], errors="coerce")
    shown = frame[frame["silhouette"].notna()]
    for algorithm, group in shown.groupby("algorithm", sort=True):
        _, color, marker = ALGORITHM_STYLE.get(algorithm, (algorithm, "#555555", "D"))
        # The guide line runs through the best passing candidate per k (the best failing one where
        # none passes), so it never leads the eye to a silhouette the guardrails ruled out.
        ranked = group.assign(_ok=group["passed"].astype(bool)).sort_values(["_ok", "silhouette"])
        best = ranked.groupby("n_segments")["silhouette"].last().sort_index()
        if len(best) > 1:
            ax.plot(best.index, best.values, color=color, alpha=0.5, linewidth=1.2, zorder=1)
        passed = group[group["passed"].astype(bool)]
        failed = group[~group["passed"].astype(bool)]
        ax.scatter(passed["n_segments"], passed["silhouette"], s=55, marker=marker, color=color,
                   edgecolors=color, linewidths=1.4, zorder=3)
        ax.scatter(failed["n_segments"], failed["silhouette"], s=55, marker=marker, facecolors="white",
                   edgecolors=color, linewidths=1.4, zorder=3)
    high = shown[shown["rule_agreement"] > rule_threshold]
    ax.scatter(high["n_segments"], high["silhouette"], s=22, marker="x", color="black", linewidths=1.1, zorder=4)
    winner = shown[shown["chosen"].astype(bool)]
    for _, row in winner.iterrows():
        ax.scatter([row["n_segments"]], [row["silhouette"]], s=330, facecolors="none", edgecolors="black",
                   linewidths=2.0, zorder=5)
        ax.annotate(f"chosen: {row['algorithm']} k={int(row['n_segments'])}", (row["n_segments"], row["silhouette"]),
                    xytext=(12, 12), textcoords="offset points", fontsize=9, fontweight="bold",
                    arrowprops={"arrowstyle": "-", "color": "black", "linewidth": 0.8})
    ax.set_xlabel("Number of segments (k; noise not counted)")
    ax.set_ylabel("Silhouette (higher = better separated)")
    ax.set_title("Clustering candidates")
    ax.grid(True, color="#DDDDDD", linewidth=0.6)
    ax.set_axisbelow(True)
    if len(frame):
        ks = frame["n_segments"].astype(int)
        ax.set_xticks(range(ks.min(), ks.max() + 1))
    handles = [
        Line2D([], [], color=style[1], marker=style[2], linestyle="-", label=style[0])
        for algorithm, style in ALGORITHM_STYLE.items() if algorithm in set(frame["algorithm"])
    ] + [
        Line2D([], [], color="#555555", marker="o", linestyle="", label="passed guardrails (filled)"),
        Line2D([], [], color="#555555", marker="o", markerfacecolor="white", linestyle="",
               label="failed guardrails (hollow)"),
        Line2D([], [], color="black", marker="x", linestyle="", label=f"rule agreement > {rule_threshold:.0%}"),
        Line2D([], [], color="black", marker="o", markersize=13, markerfacecolor="none", linestyle="",
               label="chosen"),
    ]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    hidden = len(frame) - len(shown)
    if hidden:
        ax.text(0.0, -0.14, f"{hidden} candidate(s) without a silhouette (fewer than two groups) not shown",
                transform=ax.transAxes, fontsize=8, color="#555555")
    return fig


def segment_sizes(segments: pd.DataFrame, colors: Mapping[int, str] | None = None) -> Figure:
    """Customers per segment, largest audience easy to compare; share printed on each bar."""
    order = _ordered(segments["segment_id"])
    colors = _colors_for(order, colors)
    frame = segments.set_index(segments["segment_id"].astype(int)).loc[order]
    fig = _figure(8.0, min(MAX_INCHES, 0.55 * len(order) + 1.4))
    ax = fig.add_subplot()
    y = np.arange(len(order))
    ax.barh(y, frame["size"], color=[colors[i] for i in order], edgecolor=EDGE, linewidth=0.5)
    for yi, (size, share) in enumerate(zip(frame["size"], frame["share"])):
        ax.text(size, yi, f" {int(size):,} ({share:.1%})", va="center", fontsize=9)
    ax.set_yticks(y, [_wrap(n, 34) for n in frame["name"]], fontsize=9)
    ax.invert_yaxis()
    ax.set_xlabel("Customers in the training sample")
    ax.set_ylabel("Segment")
    ax.set_title("Segment sizes")
    ax.set_xlim(0, max(float(frame["size"].max()), 1.0) * 1.25)
    ax.grid(True, axis="x", color="#DDDDDD", linewidth=0.6)
    ax.set_axisbelow(True)
    return fig


def pca_scatter(
    sample: pd.DataFrame, explained: list[float], colors: Mapping[int, str] | None = None,
    names: Mapping[int, str] | None = None,
) -> Figure:
    """The sample on its first two principal components, so overlap between segments is visible."""
    order = _ordered(sample["segment_id"])
    colors = _colors_for(order, colors)
    fig = _figure(9.5, 6.0)
    ax = fig.add_subplot()
    # Noise first so segments are drawn over it; small translucent dots keep dense areas readable.
    for segment in ([NOISE] if NOISE in order else []) + [i for i in order if i != NOISE]:
        rows = sample[sample["segment_id"] == segment]
        ax.scatter(rows["pc1"], rows["pc2"], s=6, alpha=0.55, color=colors[segment], linewidths=0,
                   label=f"{_wrap(_label(segment, names), 30)} ({len(rows):,})", rasterized=True)
    ev = list(explained) + [float("nan")] * 2
    ax.set_xlabel(f"PC1 ({ev[0]:.1%} of variance)" if np.isfinite(ev[0]) else "PC1")
    ax.set_ylabel(f"PC2 ({ev[1]:.1%} of variance)" if np.isfinite(ev[1]) else "PC2")
    ax.set_title(f"Sample of {len(sample):,} customers on two principal components")
    handles, labels = ax.get_legend_handles_labels()
    if NOISE in order:  # drawn first, listed last like everywhere else
        handles, labels = handles[1:] + handles[:1], labels[1:] + labels[:1]
    legend = ax.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False,
                       markerscale=3, title="Segment (customers)", title_fontsize=8)
    for handle in legend.legend_handles:
        handle.set_alpha(1.0)
    ax.grid(True, color="#EEEEEE", linewidth=0.6)
    ax.set_axisbelow(True)
    return fig


def _swatches_above(ax, order: list[int], colors: Mapping[int, str]) -> None:
    """A colour strip above a heatmap's segment columns, tying it to the other plots' colours."""
    for x, segment in enumerate(order):
        ax.add_patch(Rectangle((x + 0.08, -0.55), 0.84, 0.4, facecolor=colors[segment], edgecolor=EDGE,
                               linewidth=0.5, clip_on=False))


def profile_heatmap(
    profiles: pd.DataFrame, colors: Mapping[int, str] | None = None, names: Mapping[int, str] | None = None,
    clip: float = 3.0,
) -> Figure:
    """Standardized difference of each feature's mean from the population, per segment.

    Features are rows (their names stay horizontal and readable), segments are columns. The
    colour scale is centred at 0 and clipped at +-`clip`; the printed numbers are not clipped.
    """
    frame = profiles[profiles["segment_id"].notna()].copy()
    frame["segment_id"] = frame["segment_id"].astype(int)
    features = list(dict.fromkeys(profiles["feature"]))
    order = _ordered(frame["segment_id"])
    colors = _colors_for(order, colors)
    few = len(order) <= 7
    matrix = frame.pivot_table(index="feature", columns="segment_id", values="std_diff", aggfunc="first")
    matrix = matrix.reindex(index=features, columns=order).astype(float)
    fig = _figure(min(MAX_INCHES, max(6.5, 1.2 * len(order) + 4.0)), min(MAX_INCHES, 0.3 * len(features) + 2.2))
    ax = fig.add_subplot()
    finite = np.abs(matrix.to_numpy()[np.isfinite(matrix.to_numpy())])
    vmax = round(float(min(clip, max(0.5, finite.max() if finite.size else 1.0))), 1)
    _heatmap(
        matrix, ax, cmap=DIVERGING, center=0.0, vmin=-vmax, vmax=vmax,
        # Rounded first, and + 0.0 turns -0.0 into 0.0, so no cell reads "-0.0".
        annot=(matrix.round(1) + 0.0).to_numpy() if len(order) <= 10 and len(features) <= 40 else False,
        fmt=".1f", annot_kws={"fontsize": 7},
        linewidths=0.4, linecolor="white",
        cbar_kws={"label": f"standardized difference from population (colour clipped at ±{vmax:g})", "shrink": 0.6},
        xticklabels=[_wrap(_label(i, names), 16, 3) if few else _short(_label(i, names), 28) for i in order],
        yticklabels=[_short(f) for f in features],
    )
    # A few segments: names wrapped under their column; many: one rotated line each, so none collide.
    ax.tick_params(axis="x", labelsize=8, rotation=0 if few else 90, labeltop=False)
    ax.tick_params(axis="y", labelsize=8)
    _swatches_above(ax, order, colors)
    ax.set_xlabel("Segment")
    ax.set_ylabel("Feature")
    ax.set_title("Segment profiles: how far each segment sits from the population", pad=18)
    return fig


def silhouette_by_segment(
    sample: pd.DataFrame, colors: Mapping[int, str] | None = None, names: Mapping[int, str] | None = None,
) -> Figure:
    """Per-customer silhouette per segment: which segments are compact and which blur into others."""
    order = _ordered(sample["segment_id"])
    colors = _colors_for(order, colors)
    fig = _figure(8.5, min(MAX_INCHES, 0.6 * max(len(order), 1) + 1.6))
    ax = fig.add_subplot()
    measured = sample[pd.to_numeric(sample["silhouette"], errors="coerce").notna()]
    data, labels, kept = [], [], []
    for segment in order:
        values = measured.loc[measured["segment_id"] == segment, "silhouette"].astype(float).to_numpy()
        labels.append(f"{_wrap(_label(segment, names), 30)}\n(n={len(values):,})")
        data.append(values if len(values) else np.array([np.nan]))
        kept.append(segment)
    if measured.empty:
        _empty(ax, "silhouette was not measured on any sampled customer")
    else:
        boxes = ax.boxplot(data, orientation="horizontal", patch_artist=True, widths=0.6, showfliers=False,
                           medianprops={"color": "black", "linewidth": 1.4}, whis=(5, 95))
        for patch, segment in zip(boxes["boxes"], kept):
            patch.set_facecolor(colors[segment])
            patch.set_alpha(0.85)
            patch.set_edgecolor(EDGE)
        ax.axvline(0.0, color="#555555", linewidth=0.8, linestyle="--")
    ax.set_yticks(np.arange(1, len(kept) + 1), labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("Silhouette per customer (below 0: closer to another segment)")
    ax.set_ylabel("Segment")
    ax.set_title("Silhouette per segment (box: quartiles, whiskers: 5th-95th percentile)")
    ax.grid(True, axis="x", color="#DDDDDD", linewidth=0.6)
    ax.set_axisbelow(True)
    return fig


def global_drivers(drivers: pd.DataFrame, top: int = TOP_GLOBAL_DRIVERS) -> Figure:
    """The forest's permutation importance (with its spread) beside impurity importance.

    Sorted by permutation importance, measured on held-out rows; impurity importance is shown for
    comparison and labelled as biased toward high-variance columns.
    """
    frame = drivers.sort_values("permutation_importance", ascending=False).head(top).iloc[::-1]
    fig = _figure(11.0, min(MAX_INCHES, 0.32 * len(frame) + 1.8))
    left, right = fig.subplots(1, 2, sharey=True)
    y = np.arange(len(frame))
    left.barh(y, frame["permutation_importance"], xerr=frame["permutation_std"].fillna(0.0), color="#4D4D4D",
              error_kw={"ecolor": "#B00000", "capsize": 2, "linewidth": 1})
    right.barh(y, frame["impurity_importance"], color="#A6A6A6")
    left.set_yticks(y, [_short(f) for f in frame["feature"]], fontsize=8)
    left.set_ylabel("Feature")
    left.set_xlabel("Drop in accuracy when shuffled (± std over repeats)")
    left.set_title("Permutation importance (held-out rows)", fontsize=10)
    right.set_xlabel("Mean decrease in impurity")
    right.set_title("Impurity importance\n(biased toward high-variance columns)", fontsize=10)
    for ax in (left, right):
        ax.grid(True, axis="x", color="#DDDDDD", linewidth=0.6)
        ax.set_axisbelow(True)
        ax.axvline(0.0, color="#555555", linewidth=0.6)
    if frame.empty:
        _empty(left, "no driver figures")
    fig.suptitle("Global drivers of the segment assignment")
    return fig


def segment_drivers(
    drivers: pd.DataFrame, colors: Mapping[int, str] | None = None, names: Mapping[int, str] | None = None,
    top: int = TOP_SEGMENT_DRIVERS,
) -> Figure:
    """Per segment, the features that most separate it from the rest, one small panel each."""
    order = _ordered(drivers["segment_id"]) if len(drivers) else []
    colors = _colors_for(order, colors)
    columns = 2 if len(order) <= 6 else 3
    rows = max(1, -(-len(order) // columns))
    fig = _figure(min(MAX_INCHES, 5.2 * columns), min(MAX_INCHES, 0.32 * top * rows + 0.9 * rows + 0.6))
    axes = np.atleast_1d(fig.subplots(rows, columns, squeeze=False)).ravel()
    limit = float(np.nanmax(np.abs(drivers["std_diff"].astype(float)))) if len(drivers) else 1.0
    limit = limit * 1.15 if np.isfinite(limit) and limit > 0 else 1.0
    for ax, segment in zip(axes, order):
        part = drivers[drivers["segment_id"] == segment].sort_values("rank").head(top).iloc[::-1]
        y = np.arange(len(part))
        ax.barh(y, part["std_diff"].astype(float), color=colors[segment], edgecolor=EDGE, linewidth=0.5)
        ax.set_yticks(y, [_short(f) for f in part["feature"]], fontsize=8)
        ax.axvline(0.0, color="#555555", linewidth=0.8)
        ax.set_xlim(-limit, limit)
        ax.set_title(_wrap(_label(segment, names), 40 if columns == 2 else 22), fontsize=9)
        ax.set_xlabel("Std. difference", fontsize=8)
        ax.set_ylabel("Feature", fontsize=8)
        ax.tick_params(axis="x", labelsize=8)
        ax.grid(True, axis="x", color="#EEEEEE", linewidth=0.6)
        ax.set_axisbelow(True)
    for ax in axes[len(order):]:
        ax.set_visible(False)
    if not order:
        axes[0].set_visible(True)
        _empty(axes[0], "no per-segment drivers")
    fig.suptitle("What sets each segment apart: standardized difference from the population (below 0: lower)")
    return fig


_LOG_TICKS = np.array([0, 1, 10, 100, 1_000, 10_000, 100_000, 1_000_000])


def _raw_tick(value: float) -> str:
    for size, suffix in ((1_000_000, "M"), (1_000, "k")):
        if abs(value) >= size:
            return f"{value / size:g}{suffix}"
    return f"{value:g}"


def distributions(
    sample: pd.DataFrame, columns: list[str], colors: Mapping[int, str] | None = None,
    names: Mapping[int, str] | None = None,
) -> Figure:
    """Histograms of the main raw columns on a log1p axis, population and each segment.

    log1p keeps zero at zero (these columns are zero-inflated and heavy-tailed); ticks are in raw
    units. Each segment is a line normalised to its own size, so small segments stay visible; with
    more than `MAX_OVERLAID` segments only the population is drawn, and segments (noise among them)
    with fewer than `MIN_OVERLAY_ROWS` sampled rows are left out.
    """
    columns = [c for c in columns if c in sample.columns]
    order = _ordered(sample["segment_id"])
    colors = _colors_for(order, colors)
    counts = sample["segment_id"].value_counts()
    overlaid = [i for i in order if counts.get(i, 0) >= MIN_OVERLAY_ROWS] if len(order) <= MAX_OVERLAID else []
    per_row = 3
    rows = max(1, -(-len(columns) // per_row))
    fig = _figure(12.0, min(MAX_INCHES, 2.9 * rows + 0.9))
    axes = np.atleast_1d(fig.subplots(rows, per_row, squeeze=False)).ravel()
    for ax, column in zip(axes, columns):
        values = pd.to_numeric(sample[column], errors="coerce")
        ok = values.notna()
        # Signed log1p: a negative value (never expected for these columns) stays plottable.
        logged = np.sign(values[ok]) * np.log1p(np.abs(values[ok]))
        if logged.empty:
            _empty(ax, "no values")
        else:
            top = max(float(logged.max()), 1.0)
            bins = np.linspace(min(float(logged.min()), 0.0), top, 31)
            ax.hist(logged, bins=bins, weights=np.full(len(logged), 1.0 / len(logged)), color="#DDDDDD",
                    label="all customers")
            for segment in overlaid:
                part = logged[sample.loc[ok, "segment_id"] == segment]
                if len(part):
                    ax.hist(part, bins=bins, weights=np.full(len(part), 1.0 / len(part)), histtype="step",
                            color=colors[segment], linewidth=1.4, label=_short(_label(segment, names), 30))
            ticks = _LOG_TICKS[np.log1p(_LOG_TICKS) <= top * 1.02]
            ax.set_xticks(np.log1p(ticks), [_raw_tick(t) for t in ticks], fontsize=8)
        zero = float((values[ok] == 0).mean()) if ok.any() else float("nan")
        ax.set_title(f"{column} (zero for {zero:.0%})" if np.isfinite(zero) else column, fontsize=9)
        ax.set_xlabel(f"{_short(column, 24)} (log1p scale, raw units)", fontsize=8)
        ax.set_ylabel("Share of customers", fontsize=8)
        ax.tick_params(axis="y", labelsize=7)
    for ax in axes[len(columns):]:
        ax.set_visible(False)
    if columns:
        handles, labels = axes[0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="outside lower center", ncols=min(len(labels), 5), fontsize=8,
                   frameon=False)
    else:
        axes[0].set_visible(True)
        _empty(axes[0], "no distribution columns in the sample")
    left_out = len(order) - len(overlaid)
    fig.suptitle("Distributions of the main raw columns" + (
        "" if not left_out else f" ({left_out} segment(s) not overlaid: too many segments or too few rows)"))
    return fig


def correlation_heatmap(correlation: pd.DataFrame) -> Figure:
    """Correlation of the model features (lower triangle): which features say the same thing."""
    n = len(correlation)
    # Square cells: room for the rotated names below and left, the colour bar to the right.
    fig = _figure(min(MAX_INCHES, max(6.0, 0.3 * n + 3.4)), min(MAX_INCHES, max(5.0, 0.3 * n + 2.4)))
    ax = fig.add_subplot()
    mask = np.triu(np.ones((n, n), dtype=bool), k=1)
    labels = [_short(f) for f in correlation.columns]
    _heatmap(
        correlation.astype(float), ax, mask=mask, cmap=DIVERGING, vmin=-1.0, vmax=1.0, center=0.0,
        square=True, linewidths=0.3, linecolor="white", annot=n <= 12, fmt=".2f", annot_kws={"fontsize": 7},
        cbar_kws={"label": "correlation", "shrink": 0.6}, xticklabels=labels, yticklabels=labels,
    )
    ax.tick_params(axis="x", labelsize=7, rotation=90)
    ax.tick_params(axis="y", labelsize=7, rotation=0)
    ax.set_xlabel("Feature")
    ax.set_ylabel("Feature")
    ax.set_title("Correlation of the model features")
    return fig
