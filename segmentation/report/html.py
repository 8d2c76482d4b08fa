"""The report as one self-contained HTML page: every chart a base64 PNG and the CSS inline, so it
opens offline, from a mail attachment or a file share, with nothing fetched."""

from __future__ import annotations

from collections.abc import Collection
from html import escape

from segmentation.core.columns import NOISE
from segmentation.report import views
from segmentation.report.charts import Chart, charts, png_data_uri
from segmentation.report.inputs import ReportInputs, check_inputs

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
    caption = " ".join(part for part in (chart.caption, caption) if part)
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


def _candidate_table_html(inputs: ReportInputs) -> str:
    header, rows, classes = views.candidate_rows(inputs)
    badge = {"chosen": "win", "passed": "pass", "failed": "fail"}
    for row in rows:
        row[0] = _Html(f'<span class="badge {badge[row[0]]}">{escape(row[0])}</span>')
    return _table(header, rows, numeric={3, 4, 5, 6, 7}, row_classes=classes)


def _persona_cards_html(inputs: ReportInputs, colors: dict[int, str]) -> str:
    seg = inputs.segments.set_index(inputs.segments["segment_id"].astype(int))
    cards = []
    for i in views.segment_order(inputs):
        row = seg.loc[i]
        name, description = str(row["name"]), str(row["description"])
        figures = views.key_figures(inputs, i)
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
    colors = views.colors(inputs)
    figs = {c.key: c for c in charts(inputs)}
    summary = [
        ("Model version", inputs.model_version),
        ("Run date", inputs.run_date),
        ("Trained on", inputs.trained_on),
        ("Created at (UTC)", inputs.created_at),
        ("Chosen candidate", views.chosen_text(inputs)),
        *([("How it was chosen", inputs.selection)] if inputs.selection else []),
        ("Candidates", f"{len(inputs.candidates)}, of which {int(inputs.candidates['passed'].astype(bool).sum())} "
                       f"passed the guardrails"),
        ("Segments", views.segment_count(inputs)),
        ("Forest", views.forest_text(inputs)),
    ] + [(f"Forest {k}", v) for k, v in views.forest_extras(inputs)]
    summary_html = "".join(f"<dt>{escape(k)}</dt><dd>{escape(str(v))}</dd>" for k, v in summary)
    dg = inputs.drivers_global.sort_values("permutation_importance", ascending=False)
    drivers_table = _table(
        ["feature", "permutation importance", "± std", "impurity importance"],
        [[str(r.feature), views.num(r.permutation_importance), views.num(r.permutation_std), views.num(r.impurity_importance)]
         for r in dg.itertuples(index=False)],
        numeric={1, 2, 3},
    )
    eda_header, eda_rows = views.eda_rows(inputs)
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
