"""The monitoring page's pictures: pure functions from per-night frames to matplotlib Figures.

The same rules as the model report's (`report.plots`): built on the Agg canvas without pyplot, a
segment has its one colour in every picture, axes are labelled, no picture is wider or taller
than `plots.MAX_INCHES`. Nights sit at even steps on the x axis, labelled by run date, so a
missing night leaves no gap that reads as a trend.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from segmentation.report import plots

MAX_TICKS = 16  # date labels on an axis; beyond it every k-th night is labelled
TOP_PSI_FEATURES = 6  # features drawn in colour on the PSI chart; the others are thin grey lines
TOP_REASONS = 7  # quarantine reasons shown by name; the others are summed as "other reasons"
# Colour-blind-safe (Okabe-Ito) colours for series that are not segments: movements, jobs, features.
SERIES_COLORS = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000"]
MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*"]
MOVEMENT_COLORS = {"moved": "#0072B2", "new": "#009E73", "departed": "#D55E00"}
OTHER = "#BBBBBB"


def night_labels(dates: list) -> list[str]:
    return [pd.Timestamp(d).strftime("%Y-%m-%d") for d in dates]


def _night_axis(ax, dates: list) -> None:
    labels = night_labels(dates)
    step = max(1, -(-len(labels) // MAX_TICKS))
    ax.set_xticks(range(0, len(labels), step), labels[::step], rotation=45, ha="right", fontsize=8)
    ax.set_xlim(-0.6, max(len(labels) - 0.4, 0.6))
    ax.set_xlabel("Night (run date)")
    ax.grid(True, color="#E5E5E5", linewidth=0.6)
    ax.set_axisbelow(True)


def _positions(dates: list) -> dict:
    return {pd.Timestamp(d): i for i, d in enumerate(dates)}


def _at(frame: pd.DataFrame, dates: list) -> pd.Series:
    return pd.to_datetime(frame["run_date"]).map(_positions(dates))


def _legend_right(ax, **kwargs) -> None:
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False, **kwargs)


def _width(dates: list) -> float:
    return min(plots.MAX_INCHES, max(8.0, 0.28 * len(dates) + 5.5))


def segment_shares(shares: pd.DataFrame, dates: list, colors: Mapping[int, str],
                   names: Mapping[int, str]) -> Figure:
    """Each segment's share of the night's scored customers, night after night."""
    fig = plots._figure(_width(dates), 4.8)
    ax = fig.add_subplot()
    frame = shares.assign(_x=_at(shares, dates))
    for segment in plots._ordered(frame["segment_id"].dropna()):
        rows = frame[frame["segment_id"] == segment].sort_values("_x")
        ax.plot(rows["_x"], 100 * rows["share"].astype(float), marker="o", markersize=3.5, linewidth=1.6,
                color=colors[segment], label=plots._short(plots._label(segment, names), 30))
    if frame.empty:
        plots._empty(ax, "no segment shares in these nights")
    _night_axis(ax, dates)
    ax.set_ylabel("Share of the night's customers (%)")
    ax.set_ylim(bottom=0)
    ax.set_title("Segment shares over time")
    if not frame.empty:
        _legend_right(ax, title="Segment", title_fontsize=8)
    return fig


def psi_over_time(psi: pd.DataFrame, dates: list, threshold: float, top: int = TOP_PSI_FEATURES) -> Figure:
    """Each model feature's PSI per night, the `top` highest by name and colour, with the threshold."""
    fig = plots._figure(_width(dates), 5.0)
    ax = fig.add_subplot()
    frame = psi.assign(_x=_at(psi, dates), value=psi["value"].astype(float))
    ranked = frame.groupby("name")["value"].max().sort_values(ascending=False, kind="stable")
    named = list(ranked.index[:top])
    for feature in ranked.index[top:]:
        rows = frame[frame["name"] == feature].sort_values("_x")
        ax.plot(rows["_x"], rows["value"], color=OTHER, linewidth=0.8, zorder=1)
    for i, feature in enumerate(named):
        rows = frame[frame["name"] == feature].sort_values("_x")
        ax.plot(rows["_x"], rows["value"], color=SERIES_COLORS[i % len(SERIES_COLORS)],
                marker=MARKERS[i % len(MARKERS)], markersize=4, linewidth=1.5, zorder=3,
                label=plots._short(feature, 30))
    ax.axhline(threshold, color="#D55E00", linestyle="--", linewidth=1.4, zorder=2,
               label=f"threshold {threshold:g} (drift.psi_threshold)")
    if len(ranked) > top:
        ax.plot([], [], color=OTHER, linewidth=0.8, label=f"{len(ranked) - top} other features")
    if frame.empty:
        plots._empty(ax, "no PSI in these nights")
    _night_axis(ax, dates)
    top_value = float(frame["value"].max()) if len(frame) else threshold
    ax.set_ylim(0, max(threshold, top_value if np.isfinite(top_value) else threshold) * 1.15)
    ax.set_ylabel("PSI against the training sample")
    ax.set_title("Feature drift (population stability index) per night")
    _legend_right(ax, title="Feature (highest PSI first)", title_fontsize=8)
    return fig


def movements(migrations: pd.DataFrame, dates: list) -> Figure:
    """Per night, the customers who moved segment, arrived and departed since the night before."""
    fig = plots._figure(_width(dates), 4.6)
    ax = fig.add_subplot()
    frame = migrations.assign(_x=_at(migrations, dates))
    table = (frame[frame["movement"].isin(list(MOVEMENT_COLORS))]
             .pivot_table(index="_x", columns="movement", values="customers", aggfunc="sum", fill_value=0)
             .reindex(index=range(len(dates)), columns=list(MOVEMENT_COLORS), fill_value=0).fillna(0))
    bottom = np.zeros(len(dates))
    for movement, color in MOVEMENT_COLORS.items():
        values = table[movement].to_numpy(dtype=float)
        ax.bar(range(len(dates)), values, bottom=bottom, color=color, edgecolor=plots.EDGE, linewidth=0.4,
               label=movement)
        bottom += values
    _night_axis(ax, dates)
    ax.set_ylabel("Customers since the previous night")
    ax.set_title("Segment migrations between consecutive nights (customers who stayed not drawn)")
    _legend_right(ax, title="Movement", title_fontsize=8)
    return fig


def flow_matrix(migrations: pd.DataFrame, names: Mapping[int, str]) -> pd.DataFrame:
    """Customers from each segment (rows; `new` first) to each (columns; `departed` last), summed over the nights."""
    moved = migrations[migrations["movement"] != "stayed"]
    label = lambda v, empty: empty if pd.isna(v) else plots._short(plots._label(int(v), names), 28)  # noqa: E731
    frame = pd.DataFrame({"from": [label(v, "new customers") for v in moved["from_segment_id"]],
                          "to": [label(v, "departed") for v in moved["to_segment_id"]],
                          "customers": moved["customers"].astype(float).to_numpy()})
    ids = plots._ordered(pd.concat([migrations["from_segment_id"], migrations["to_segment_id"]]).dropna())
    segments = [plots._short(plots._label(i, names), 28) for i in ids]
    matrix = frame.pivot_table(index="from", columns="to", values="customers", aggfunc="sum", fill_value=0)
    return matrix.reindex(index=["new customers", *segments], columns=[*segments, "departed"], fill_value=0).fillna(0)


def flows(matrix: pd.DataFrame) -> Figure:
    """The window's movements as a from -> to table of customers: which segments feed which."""
    rows, columns = matrix.shape
    fig = plots._figure(min(plots.MAX_INCHES, max(6.5, 1.3 * columns + 3.5)), min(plots.MAX_INCHES, 0.55 * rows + 2.4))
    ax = fig.add_subplot()
    plots._heatmap(matrix.astype(float), ax, cmap="Blues", annot=rows <= 16 and columns <= 16, fmt=".0f",
                   annot_kws={"fontsize": 8}, linewidths=0.4, linecolor="white",
                   cbar_kws={"label": "customers over the nights shown", "shrink": 0.7})
    ax.tick_params(axis="x", labelsize=8, rotation=30)
    ax.tick_params(axis="y", labelsize=8, rotation=0)
    for label in ax.get_xticklabels():
        label.set_horizontalalignment("right")
    ax.set_xlabel("To (tonight's segment)")
    ax.set_ylabel("From (the previous night's segment)")
    ax.set_title("Migration flows summed over the nights shown")
    return fig


def quarantine_reasons(quarantine: pd.DataFrame, dates: list, top: int = TOP_REASONS) -> Figure:
    """Quarantined rows per night by the rule they broke (a row breaking two rules counts under both)."""
    fig = plots._figure(_width(dates), 4.6)
    ax = fig.add_subplot()
    frame = quarantine.assign(_x=_at(quarantine, dates), rows=quarantine["rows"].astype(float))
    ranked = list(frame.groupby("reason")["rows"].sum().sort_values(ascending=False, kind="stable").index)
    keep = ranked[:top]
    frame["reason"] = frame["reason"].where(frame["reason"].isin(keep), "other reasons")
    series = keep + (["other reasons"] if len(ranked) > top else [])
    table = (frame.pivot_table(index="_x", columns="reason", values="rows", aggfunc="sum", fill_value=0)
             .reindex(index=range(len(dates)), columns=series, fill_value=0).fillna(0))
    bottom = np.zeros(len(dates))
    for i, reason in enumerate(series):
        color = OTHER if reason == "other reasons" else SERIES_COLORS[i % len(SERIES_COLORS)]
        values = table[reason].to_numpy(dtype=float)
        ax.bar(range(len(dates)), values, bottom=bottom, color=color, edgecolor=plots.EDGE, linewidth=0.4,
               label=plots._short(reason, 34))
        bottom += values
    _night_axis(ax, dates)
    ax.set_ylabel("Quarantined rows (per rule broken)")
    ax.set_ylim(0, max(float(bottom.max()) if len(bottom) else 0.0, 1.0) * 1.15)
    ax.set_title("Quarantined rows per night, by reason")
    if series:
        _legend_right(ax, title="Reason", title_fontsize=8)
    else:
        plots._empty(ax, "no row was quarantined in these nights")
    return fig


def run_durations(durations: pd.DataFrame, dates: list) -> Figure:
    """Seconds of each job's last successful run per night (`runs`), one line per job."""
    fig = plots._figure(_width(dates), 4.6)
    ax = fig.add_subplot()
    frame = durations.assign(_x=_at(durations, dates)).dropna(subset=["_x"])
    for i, job in enumerate(sorted(frame["job"].unique())):
        rows = frame[frame["job"] == job].sort_values("_x")
        ax.plot(rows["_x"], rows["seconds"].astype(float), marker=MARKERS[i % len(MARKERS)], markersize=4,
                linewidth=1.5, color=SERIES_COLORS[i % len(SERIES_COLORS)], label=job)
    if frame.empty:
        plots._empty(ax, "no finished run in these nights")
    _night_axis(ax, dates)
    ax.set_ylabel("Wall-clock seconds")
    ax.set_ylim(bottom=0)
    ax.set_title("Run duration per stage (each job's last successful run of the night)")
    if not frame.empty:
        _legend_right(ax, title="Job", title_fontsize=8)
    return fig
