"""The report's Markdown twin, for a wiki or a pull request: the same views as the HTML page."""

from __future__ import annotations

from segmentation.core.columns import NOISE
from segmentation.report import plots, views
from segmentation.report.charts import charts
from segmentation.report.inputs import ReportInputs, check_inputs


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
    names = views.segment_names(inputs)
    out = [
        f"# Segment report: model {inputs.model_version}",
        "",
        f"- Run date: {inputs.run_date}",
        f"- Trained on: {inputs.trained_on}",
        f"- Created at (UTC): {inputs.created_at}",
        f"- Chosen candidate: {views.chosen_text(inputs)}",
        *([f"- How it was chosen: {inputs.selection}"] if inputs.selection else []),
        f"- Candidates: {len(inputs.candidates)}, of which {int(inputs.candidates['passed'].astype(bool).sum())} "
        f"passed the guardrails",
        f"- Forest: {views.forest_text(inputs)}",
    ]
    out += [f"- Forest {k}: {v}" for k, v in views.forest_extras(inputs)]
    out += ["", "The charts are in `report.html` next to this file; each is described below in words.", "",
            "## Personas", ""]
    for i in views.segment_order(inputs):
        row = seg.loc[i]
        label = "noise (DBSCAN)" if i == NOISE else f"segment {i}"
        out += [f"### {row['name']}", "",
                f"{label} · {int(row['size']):,} customers · {float(row['share']):.1%} of the sample", "",
                str(row["description"]), ""]
        figures = views.key_figures(inputs, i)
        if figures:
            out += [_md_table(["median", "segment", "population"], [list(f) for f in figures]), ""]
    header, rows, _ = views.candidate_rows(inputs)
    out += ["## Candidate comparison", "", f"_Chart: {figs['candidates'].alt}_", "", _md_table(header, rows), ""]
    out += ["## Segment sizes", "", _md_table(
        ["segment", "name", "customers", "share"],
        [[str(i), str(seg.at[i, "name"]), f"{int(seg.at[i, 'size']):,}", f"{float(seg.at[i, 'share']):.1%}"]
         for i in views.segment_order(inputs)]), ""]
    out += ["## Segments on two principal components", "", f"_Chart: {figs['pca'].alt}_", ""]
    out += ["## Standardized profiles", "", f"_Chart: {figs['profiles'].alt}_", ""]
    medians = views.silhouette_medians(inputs)
    out += ["## Silhouette per segment", "", f"_Chart: {figs['silhouette'].alt}_", ""]
    if medians:
        rows = [[str(names.get(i, i)), f"{medians[i]:.3f}"] for i in views.segment_order(inputs) if i in medians]
        out += [_md_table(["segment", "median silhouette"], rows), ""]
    dg = inputs.drivers_global.sort_values("permutation_importance", ascending=False)
    out += ["## Drivers", "", "### Global", "",
            "Permutation importance on the forest's held-out rows; impurity importance beside it is biased toward "
            "high-variance columns.", "",
            _md_table(["feature", "permutation importance", "± std", "impurity importance"],
                      [[str(r.feature), views.num(r.permutation_importance), views.num(r.permutation_std),
                        views.num(r.impurity_importance)] for r in dg.itertuples(index=False)]), "",
            "### Per segment", ""]
    ds = inputs.drivers_segment
    for i in views.segment_order(inputs):
        part = ds[ds["segment_id"].astype(int) == i].sort_values("rank").head(plots.TOP_SEGMENT_DRIVERS)
        if len(part):
            out.append(f"- **{_md(names.get(i, i))}**: " + ", ".join(
                f"{r.feature} {views.signed(float(r.std_diff))}" for r in part.itertuples(index=False)))
    eda_header, eda_rows = views.eda_rows(inputs)
    out += ["", "## Exploratory analysis", "", _md_table(eda_header, eda_rows), "",
            f"_Chart: {figs['distributions'].alt}_", "", f"_Chart: {figs['correlation'].alt}_", ""]
    return "\n".join(out)
