"""The lift page: one self-contained HTML file (the chart a PNG inside it), lift per segment with
its interval as error bars, per audience. The figure is a pure function of the lift rows."""

from __future__ import annotations

import base64
import io
from html import escape
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 - after the headless backend is chosen
from matplotlib.figure import Figure  # noqa: E402


def _label(row: dict[str, Any]) -> str:
    return "overall" if row["segment_id"] is None else f"segment {row['segment_id']}"


def lift_figure(rows: list[dict[str, Any]]) -> Figure:
    """Per audience, lift (points) and interval (bars) per segment and overall, zero marked."""
    audiences = sorted({r["audience"] for r in rows})
    fig, axes = plt.subplots(len(audiences) or 1, 1, figsize=(8, 1.2 + 2.2 * max(len(audiences), 1)), squeeze=False)
    for ax, audience in zip(axes[:, 0], audiences):
        mine = [r for r in rows if r["audience"] == audience and r["lift"] is not None]
        ys = list(range(len(mine)))
        lifts = [100 * r["lift"] for r in mine]
        errors = [[100 * (r["lift"] - r["ci_low"]) for r in mine], [100 * (r["ci_high"] - r["lift"]) for r in mine]]
        colors = ["#444444" if r["segment_id"] is None else "#1f77b4" for r in mine]
        for y, x, low, high, color in zip(ys, lifts, *errors, colors):
            ax.errorbar([x], [y], xerr=[[low], [high]], fmt="o", color=color, capsize=4)
        ax.axvline(0, color="#999999", linewidth=1)
        ax.set_yticks(ys, [_label(r) for r in mine])
        ax.invert_yaxis()
        ax.set_title(audience, loc="left")
        ax.set_xlabel("lift, points (treatment rate - holdout rate)")
    fig.tight_layout()
    return fig


def _png(fig: Figure) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _pct(value: float | None) -> str:
    return "" if value is None else f"{100 * value:.2f}"


def render(rows: list[dict[str, Any]], matched: int, unmatched: int) -> str:
    """The page: the chart, then every row's figures."""
    confidence = rows[0]["confidence"] if rows else 0.95
    alt = "Lift of treatment over holdout, in points, per segment and overall, with " + \
        f"{confidence:.0%} intervals, for audiences " + ", ".join(sorted({r["audience"] for r in rows}))
    header = ["audience", "segment", "treatment", "holdout", "treatment rate %", "holdout rate %", "lift pts",
              f"{confidence:.0%} interval pts", "p-value"]
    body = "".join(
        "<tr>" + "".join(f"<td>{escape(str(v))}</td>" for v in (
            r["audience"], _label(r), r["treatment_customers"], r["holdout_customers"], _pct(r["treatment_rate"]),
            _pct(r["holdout_rate"]), _pct(r["lift"]),
            "" if r["ci_low"] is None else f"{_pct(r['ci_low'])} to {_pct(r['ci_high'])}",
            "" if r["p_value"] is None else f"{r['p_value']:.3g}")) + "</tr>" for r in rows)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Audience lift</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:70em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:.2em .6em;text-align:right}}img{{max-width:100%}}</style></head>
<body><h1>Audience lift</h1>
<p>{matched} responses of members at the time; {unmatched} from customers who were not members are left out.
Intervals: Newcombe's hybrid score interval of a difference of proportions; p-value: two-sided pooled
two-proportion z-test.</p>
<figure><img src="data:image/png;base64,{_png(lift_figure(rows))}" alt="{escape(alt)}">
<figcaption>Lift per segment; bars are the {confidence:.0%} intervals, zero is no effect.</figcaption></figure>
<table><thead><tr>{''.join(f'<th>{escape(h)}</th>' for h in header)}</tr></thead><tbody>{body}</tbody></table>
</body></html>
"""
