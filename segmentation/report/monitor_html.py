"""The monitoring page as one self-contained HTML file: the model report's CSS and rules, every
chart an embedded PNG with alt text, the figures behind each chart in a table beside it."""

from __future__ import annotations

from html import escape

import pandas as pd

from segmentation.features import guard
from segmentation.report import monitor_plots, plots
from segmentation.report.charts import Chart
from segmentation.report.html import _CSS, _figure_html, _table
from segmentation.report.monitor_inputs import MonitorInputs
from segmentation.report.views import pct

_MONITOR_CSS = """
tr.flagged td { background: #fdf0e6; }
"""


def _dates(inputs: MonitorInputs) -> list:
    return list(pd.to_datetime(inputs.nights["run_date"]))


def _label(date: object) -> str:
    return pd.Timestamp(date).strftime("%Y-%m-%d")


def segment_names(inputs: MonitorInputs) -> dict[int, str]:
    """The latest name each segment id had in the window (a retrain may rename one)."""
    names: dict[int, str] = {}
    for r in inputs.shares.sort_values("run_date").itertuples(index=False):
        if pd.notna(r.segment_id) and isinstance(r.segment_name, str):
            names[int(r.segment_id)] = r.segment_name
    return names


def segment_colors(inputs: MonitorInputs) -> dict[int, str]:
    ids = set(inputs.shares["segment_id"].dropna().astype(int))
    for column in ("from_segment_id", "to_segment_id"):
        ids |= set(inputs.migrations[column].dropna().astype(int))
    return plots.segment_colors(ids)


def durations(inputs: MonitorInputs) -> pd.DataFrame:
    """run_date, job, seconds: each job's last successful run of each night on the page."""
    runs = inputs.runs
    ok = runs[(runs["status"] == "SUCCEEDED") & runs["seconds"].notna()].copy()
    ok["run_date"] = pd.to_datetime(ok["run_date"])
    ok = ok[ok["run_date"].isin(_dates(inputs))]
    return (ok.sort_values("started_at").groupby(["run_date", "job"], as_index=False).last()
            [["run_date", "job", "seconds"]])


def guard_figures(inputs: MonitorInputs) -> dict[pd.Timestamp, list[guard.Failure]]:
    """Each night's guard figures recomputed from the tables (night_profile, migrations) and judged
    by `guard.decide`: what a night accepted past a threshold (--accept-night) looked like."""
    profile = inputs.profile.assign(run_date=pd.to_datetime(inputs.profile["run_date"]))
    by_night = {d: part for d, part in profile.groupby("run_date")}
    moved = inputs.migrations.assign(run_date=pd.to_datetime(inputs.migrations["run_date"]))
    nights = sorted(by_night)
    out: dict[pd.Timestamp, list[guard.Failure]] = {}
    for before, tonight in zip(nights, nights[1:]):
        now, then = by_night[tonight], by_night[before]
        count = lambda part: part.loc[part["measure"] == guard.CUSTOMERS, "value"]  # noqa: E731
        medians = lambda part: {r.name: (None if pd.isna(r.value) else float(r.value))  # noqa: E731
                                for r in part[part["measure"] == guard.MEDIAN].itertuples(index=False)}
        if count(now).empty or count(then).empty:
            continue
        night_moves = moved[moved["run_date"] == tonight]
        total = lambda kind: int(night_moves.loc[night_moves["movement"] == kind, "customers"].sum())  # noqa: E731
        customers = int(count(now).iloc[0])
        figures = guard.Figures(previous_run_date=before.date(), customers=customers,
                                previous_customers=int(count(then).iloc[0]), departed=total("departed"),
                                new=total("new"), tonight_ids=customers, medians=medians(now),
                                previous_medians=medians(then))
        out[tonight] = guard.decide(figures, inputs.guard)
    return out


def _failed_runs(inputs: MonitorInputs) -> pd.DataFrame:
    runs = inputs.runs
    return runs[runs["status"].isin(["FAILED", "ABANDONED"])].sort_values("started_at")


def charts(inputs: MonitorInputs) -> list[Chart]:
    """Every chart of the page with its alt text, which states what the chart shows in words."""
    dates, labels = _dates(inputs), monitor_plots.night_labels(_dates(inputs))
    first, last = labels[0], labels[-1]
    span = f"the {len(dates)} published nights from {first} to {last}"
    names, colors = segment_names(inputs), segment_colors(inputs)
    shares = inputs.shares.assign(run_date=pd.to_datetime(inputs.shares["run_date"]))
    share_words = []
    for segment in plots._ordered(shares["segment_id"].dropna()):
        rows = shares[shares["segment_id"] == segment].sort_values("run_date")
        share_words.append(f"{plots._label(segment, names)} {pct(rows['share'].iloc[0])} on "
                           f"{_label(rows['run_date'].iloc[0])} and {pct(rows['share'].iloc[-1])} on "
                           f"{_label(rows['run_date'].iloc[-1])}")
    alt_shares = (f"Line chart of each segment's share of the night's customers over {span}: "
                  + ("; ".join(share_words) or "no shares recorded") + ".")
    psi = inputs.drift[inputs.drift["measure"] == "psi"]
    flagged = psi[psi["flagged"].astype(bool)]
    highest = psi.groupby("name")["value"].max().sort_values(ascending=False).head(3)
    alt_psi = (f"Line chart of the PSI of {psi['name'].nunique()} model features over {span}, with the threshold "
               f"{inputs.psi_threshold:g} as a dashed line. Highest: "
               + (", ".join(f"{k} {v:.3f}" for k, v in highest.items()) or "none") + ". "
               + (f"{len(flagged)} feature-nights above the threshold, on "
                  f"{', '.join(sorted({_label(d) for d in flagged['run_date']}))}."
                  if len(flagged) else "No feature crossed the threshold."))
    mig = inputs.migrations
    totals = {m: int(mig.loc[mig["movement"] == m, "customers"].sum()) for m in ("moved", "new", "departed", "stayed")}
    alt_moves = (f"Stacked bar chart per night of the customers who moved segment, arrived or departed since the "
                 f"previous published night, over {span}: in total {totals['moved']:,} moved, {totals['new']:,} new "
                 f"and {totals['departed']:,} departed; {totals['stayed']:,} customer-nights stayed (not drawn).")
    matrix = monitor_plots.flow_matrix(mig, names)
    cells = [(matrix.iat[i, j], matrix.index[i], matrix.columns[j]) for i in range(matrix.shape[0])
             for j in range(matrix.shape[1]) if matrix.iat[i, j] > 0 and matrix.index[i] != matrix.columns[j]]
    cells.sort(key=lambda c: (-c[0], c[1], c[2]))
    alt_flows = ("Heatmap of customers from each segment (rows, new customers first) to each segment (columns, "
                 f"departed last), summed over {span}. Largest flows: "
                 + ("; ".join(f"{a} to {b} {int(v):,}" for v, a, b in cells[:5]) or "none") + ".")
    quarantine = inputs.quarantine
    by_reason = quarantine.groupby("reason")["rows"].sum().sort_values(ascending=False)
    alt_quarantine = (f"Stacked bar chart of quarantined rows per night by reason over {span}: "
                      + ("; ".join(f"{k} {int(v):,}" for k, v in by_reason.head(5).items())
                         + (f"; and {len(by_reason) - 5} more reasons" if len(by_reason) > 5 else "")
                         if len(by_reason) else "no row was quarantined") + ".")
    runs = durations(inputs)
    job_words = [f"{job} median {runs.loc[runs['job'] == job, 'seconds'].median():.0f} s, longest "
                 f"{runs.loc[runs['job'] == job, 'seconds'].max():.0f} s" for job in sorted(runs["job"].unique())]
    alt_runs = (f"Line chart of each job's wall-clock seconds per night over {span}: "
                + ("; ".join(job_words) or "no finished run") + ".")
    return [
        Chart("shares", "Segment shares", alt_shares,
              lambda: monitor_plots.segment_shares(shares, dates, colors, names)),
        Chart("psi", "Feature drift", alt_psi, lambda: monitor_plots.psi_over_time(psi, dates, inputs.psi_threshold)),
        Chart("movements", "Migrations", alt_moves, lambda: monitor_plots.movements(mig, dates)),
        Chart("flows", "Migration flows", alt_flows, lambda: monitor_plots.flows(matrix)),
        Chart("quarantine", "Quarantine", alt_quarantine,
              lambda: monitor_plots.quarantine_reasons(quarantine, dates)),
        Chart("runs", "Run durations", alt_runs, lambda: monitor_plots.run_durations(runs, dates)),
    ]


def flag_rows(inputs: MonitorInputs) -> tuple[list[str], list[list[str]], list[str]]:
    """Per night: customers, the guard's figures past a threshold, flagged PSI and share changes, runs' drift status."""
    header = ["night", "model", "customers", "guard (recomputed)", "features drifted (PSI)",
              "segment shares moved", "drift status"]
    failures = guard_figures(inputs)
    drift = inputs.drift.assign(run_date=pd.to_datetime(inputs.drift["run_date"]))
    runs = inputs.runs.assign(run_date=pd.to_datetime(inputs.runs["run_date"]))
    rows, classes = [], []
    for night in inputs.nights.itertuples(index=False):
        date = pd.Timestamp(night.run_date)
        tonight = drift[(drift["run_date"] == date) & drift["flagged"].astype(bool)]
        psi = ", ".join(f"{r.name} {r.value:.2f}" for r in tonight[tonight["measure"] == "psi"].itertuples())
        moved = ", ".join(f"segment {r.name} {r.value:+.1f} pts"
                          for r in tonight[tonight["measure"] == "share_change_points"].itertuples())
        status = runs[(runs["run_date"] == date) & runs["drift_status"].notna()].sort_values("started_at")
        fired = failures.get(date)
        verdict = "first night in the window" if fired is None else ("; ".join(map(str, fired)) or "ok")
        rows.append([_label(date), str(night.model_version or "–"),
                     "–" if pd.isna(night.customers) else f"{int(night.customers):,}", verdict, psi or "none",
                     moved or "none", str(status["drift_status"].iloc[-1]) if len(status) else "–"])
        classes.append("flagged" if fired or psi or moved else "")
    return header, rows, classes


def render_monitor(inputs: MonitorInputs) -> str:
    """The self-contained monitoring page: inline CSS, every chart an embedded PNG, nothing fetched."""
    dates = _dates(inputs)
    labels = monitor_plots.night_labels(dates)
    figs = {c.key: c for c in charts(inputs)}
    flag_header, flags, flag_classes = flag_rows(inputs)
    failed = _failed_runs(inputs)
    failed_table = _table(["run date", "job", "status", "started at (UTC)", "error"],
                          [[_label(r.run_date), str(r.job), str(r.status), str(r.started_at)[:19],
                            str(r.error or "")] for r in failed.itertuples(index=False)]) \
        if len(failed) else '<p class="muted">No run failed or was abandoned on these dates.</p>'
    runs = durations(inputs)
    run_table = runs.pivot_table(index="run_date", columns="job", values="seconds", aggfunc="last")
    jobs = list(run_table.columns)
    quarantined = inputs.quarantined_rows.assign(run_date=pd.to_datetime(inputs.quarantined_rows["run_date"]))
    per_night = dict(zip(quarantined["run_date"], quarantined["rows"]))
    reasons = inputs.quarantine.assign(run_date=pd.to_datetime(inputs.quarantine["run_date"]))
    night_rows = []
    for date, label, night in zip(dates, labels, inputs.nights.itertuples(index=False)):
        why = reasons[reasons["run_date"] == date].sort_values("rows", ascending=False)
        night_rows.append([label, "–" if pd.isna(night.customers) else f"{int(night.customers):,}",
                           f"{int(per_night.get(date, 0)):,}",
                           ", ".join(f"{r.reason} {int(r.rows):,}" for r in why.itertuples()) or "none",
                           *[("–" if date not in run_table.index or pd.isna(run_table.at[date, j])
                              else f"{run_table.at[date, j]:.1f}") for j in jobs]])
    summary = [
        ("Nights", f"{len(dates)} published ({labels[0]} to {labels[-1]}); asked for the last {inputs.requested}"),
        ("Models", ", ".join(dict.fromkeys(str(v) for v in inputs.nights["model_version"] if pd.notna(v))) or "–"),
        ("Nights with a flag", f"{sum(1 for c in flag_classes if c)} of {len(dates)}"),
        ("Failed or abandoned runs", str(len(failed))),
        ("Drawn at (UTC)", inputs.created_at),
    ]
    summary_html = "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in summary)
    sections = [
        ("flags", "Guard and drift flags",
         _table(flag_header, flags, numeric={2}, row_classes=flag_classes)
         + '<p class="muted">Guard: the night-to-night figures (customer count change, departed and new shares, '
           "money medians) recomputed from <code>night_profile</code> and <code>segment_migrations</code> and "
           "judged against <code>guard.*</code>; a published night past one was accepted by hand. Drift: the "
           "<code>drift</code> table's flagged rows. Highlighted rows carry a flag.</p>"
         + "<h3>Failed and abandoned runs</h3>" + failed_table),
        ("shares", "Segment shares", _figure_html(figs["shares"])),
        ("psi", "Feature drift",
         _figure_html(figs["psi"], f"PSI of each model feature against the training sample; above "
                                   f"{inputs.psi_threshold:g} (dashed) a feature is flagged.")),
        ("migrations", "Migrations", _figure_html(figs["movements"]) + _figure_html(figs["flows"])),
        ("quarantine", "Quarantine and run durations",
         _figure_html(figs["quarantine"]) + _figure_html(figs["runs"], "From the runs table: ended_at minus "
                                                                       "started_at of each job's last successful "
                                                                       "run for the night.")
         + _table(["night", "customers", "quarantined rows", "reasons", *[f"{j} (s)" for j in jobs]], night_rows,
                  numeric={1, 2, *range(4, 4 + len(jobs))})),
    ]
    nav = "".join(f'<a href="#{key}">{escape(title)}</a>' for key, title, _ in sections)
    body = "".join(f'<section id="{key}"><h2>{escape(title)}</h2>{content}</section>' for key, title, content in sections)
    title = f"Segmentation monitor · {len(dates)} nights to {labels[-1]}"
    return (
        "<!DOCTYPE html>\n"
        f'<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<link rel="icon" href="data:,">'  # no favicon request from file://
        f"<style>{_CSS}{_MONITOR_CSS}</style></head><body><main>"
        f"<h1>{escape(title)}</h1>"
        f'<p class="muted">The last published nights of the lake, from its tables; drawn {escape(inputs.created_at)}.</p>'
        f'<nav>{nav}</nav><section id="summary"><h2>Summary</h2><dl class="summary">{summary_html}</dl></section>'
        f"{body}</main></body></html>\n"
    )
