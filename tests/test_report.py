"""The segment report: charts, HTML and Markdown from small synthetic, seeded inputs (no Spark)."""

from __future__ import annotations

import base64
import json
import re
import struct

import numpy as np
import pandas as pd
import pytest
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure

from segmentation.core.config import GuardrailsConfig
from segmentation.report import plots
from segmentation.report.charts import charts
from segmentation.report.html import render_html
from segmentation.report.inputs import ReportInputs, check_inputs
from segmentation.report.markdown import render_markdown
from segmentation.report.render import write_report

FEATURES = [
    "BALANCE", "BALANCE_FREQUENCY", "PURCHASES", "ONEOFF_PURCHASES", "INSTALLMENTS_PURCHASES", "CASH_ADVANCE",
    "PURCHASES_FREQUENCY", "ONEOFF_PURCHASES_FREQUENCY", "PURCHASES_INSTALLMENTS_FREQUENCY",
    "CASH_ADVANCE_FREQUENCY", "CASH_ADVANCE_TRX", "PURCHASES_TRX", "CREDIT_LIMIT", "PAYMENTS", "MINIMUM_PAYMENTS",
    "PRC_FULL_PAYMENT", "TENURE", "LIMIT_USAGE", "PAYMENT_MINPAY_RATIO", "MONTHLY_AVG_PURCHASES",
    "MONTHLY_CASH_ADVANCE",
]
DISTRIBUTION_COLUMNS = ["BALANCE", "PURCHASES", "CASH_ADVANCE", "CREDIT_LIMIT", "PAYMENTS", "MINIMUM_PAYMENTS"]
KEY_FEATURES = ["BALANCE", "PURCHASES", "CASH_ADVANCE", "CREDIT_LIMIT", "PRC_FULL_PAYMENT", "LIMIT_USAGE", "TENURE"]
NAMES = ["Cash-advance revolvers", "Full-paying transactors", "Big-spending prime customers", "New customers"]
CHART_COUNT = 9
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _profiles(frame: pd.DataFrame, names: dict[int, str]) -> pd.DataFrame:
    population_mean, population_std = frame[FEATURES].mean(), frame[FEATURES].std(ddof=0).replace(0, 1)
    rows = []
    groups = [(pd.NA, "All customers", frame)] + [
        (segment, names[segment], part) for segment, part in frame.groupby("segment_id", sort=True)
    ]
    for segment, name, part in groups:
        for feature in FEATURES:
            values = part[feature]
            rows.append({
                "segment_id": segment, "segment_name": name, "size": len(part), "share": len(part) / len(frame),
                "feature": feature, "mean": values.mean(), "median": values.median(),
                "p25": values.quantile(0.25), "p75": values.quantile(0.75),
                "std_diff": 0.0 if segment is pd.NA
                else (values.mean() - population_mean[feature]) / population_std[feature],
            })
    out = pd.DataFrame(rows)
    out["segment_id"] = out["segment_id"].astype("Int64")
    return out


def synthetic_inputs(rows: int = 300, segments: int = 4, noise: bool = False, seed: int = 7) -> ReportInputs:
    """A plausible, seeded ReportInputs: zero-inflated money columns, a failed and a noisy candidate."""
    rng = np.random.default_rng(seed)
    ids = list(range(segments)) + ([-1] if noise else [])
    weights = np.array([0.05 if i == -1 else 1.0 + 0.4 * i for i in ids])
    segment_id = rng.choice(ids, size=rows, p=weights / weights.sum())
    names = {i: (NAMES[i] if i < len(NAMES) else f"Segment number {i}") for i in range(segments)}
    if noise:
        names[-1] = "Noise"
    frame = pd.DataFrame({"segment_id": segment_id})
    level = {i: 1.0 + 0.6 * (i % 4) for i in ids}
    scale = frame["segment_id"].map(level).to_numpy()
    for feature in FEATURES:
        if feature.endswith("FREQUENCY") or feature in {"PRC_FULL_PAYMENT", "LIMIT_USAGE"}:
            values = np.clip(rng.beta(1.2, 2.0, rows) * scale / 2.5, 0, 1)
        elif feature == "TENURE":
            values = rng.choice([6, 8, 10, 12], size=rows, p=[0.05, 0.05, 0.1, 0.8]).astype(float)
        elif feature.endswith("_TRX"):
            values = rng.poisson(3 * scale).astype(float)
        else:
            values = rng.lognormal(5 + scale, 1.2, rows) * (rng.random(rows) > 0.25)  # a quarter are zero
        frame[feature] = values
    centres = {i: (np.cos(i), np.sin(i)) for i in ids}
    frame["pc1"] = [centres[i][0] * 3 + rng.normal() for i in segment_id]
    frame["pc2"] = [centres[i][1] * 3 + rng.normal() for i in segment_id]
    silhouette = rng.uniform(-0.2, 0.7, rows)
    silhouette[rng.random(rows) < 0.4] = np.nan  # measured on a subsample only
    frame["silhouette"] = silhouette

    profiles = _profiles(frame, names)
    counts = frame["segment_id"].value_counts()
    segments_frame = pd.DataFrame({
        "segment_id": ids,
        "name": [names[i] for i in ids],
        "description": [f"Draws a median ${100 * (i + 2):,} of cash advances; pays in full in {5 * (i + 1)}% of months."
                        for i in ids],
        "size": [int(counts.get(i, 0)) for i in ids],
        "share": [float(counts.get(i, 0)) / rows for i in ids],
    })
    strongest = profiles[profiles["segment_id"].notna()].assign(strength=lambda d: d["std_diff"].abs())
    drivers_segment = (
        strongest.sort_values(["segment_id", "strength"], ascending=[True, False]).groupby("segment_id").head(6)
        .assign(rank=lambda d: d.groupby("segment_id").cumcount() + 1)
        [["segment_id", "feature", "std_diff", "rank"]].astype({"segment_id": int}).reset_index(drop=True)
    )
    importance = rng.dirichlet(np.ones(len(FEATURES)))
    drivers_global = pd.DataFrame({
        "feature": FEATURES, "permutation_importance": importance * 0.4,
        "permutation_std": importance * 0.05, "impurity_importance": rng.dirichlet(np.ones(len(FEATURES))),
    })
    numeric = frame[FEATURES]
    eda = pd.DataFrame({
        "column": FEATURES,
        "missing_share": [0.035 if c == "MINIMUM_PAYMENTS" else 0.0 for c in FEATURES],
        "zero_share": [(numeric[c] == 0).mean() for c in FEATURES],
        **{f"p{q:02d}": [numeric[c].quantile(q / 100) for c in FEATURES] for q in (1, 25, 50, 75, 99)},
        "skew": [numeric[c].skew() for c in FEATURES],
    })
    candidates = pd.DataFrame(
        [("kmeans", {"k": k, "n_init": 4}, k, 0.38 - 0.03 * k, 0.95, 0.70 + 0.02 * k, 0.3, True, "", k == segments)
         for k in range(2, 9)]
        + [("gmm", {"k": k}, k, 0.30 - 0.03 * k, 0.85, 0.70, 0.2, True, "", False) for k in range(2, 7)]
        + [
            ("kmeans", {"k": 4, "n_init": 1}, 4, 0.45, 0.99, 0.97, 0.96, False,
             "a shallow rule on the raw columns reproduces 97.00% of its labels > 90.00%", False),
            ("dbscan", {"eps": 1.2345, "min_samples": 10}, 5, 0.21, 0.7, 0.5, 0.1, False, "noise 14.00% > 10.00%",
             False),
            ("dbscan", {"eps": 3.5, "min_samples": 20}, 1, np.nan, np.nan, np.nan, np.nan, False,
             "1 segments < 3", False),
        ],
        columns=["algorithm", "params", "n_segments", "silhouette", "stability", "rule_agreement",
                 "purchase_type_ari", "passed", "reason", "chosen"],
    )
    candidates["params"] = candidates["params"].map(json.dumps)
    return ReportInputs(
        model_version="20261124T203835Z-0efeee", run_date="2026-11-24",
        trained_on=f"{rows:,} sampled customers of features 2026-11-24", created_at="2026-11-24T20:38:35Z",
        forest={"accuracy": 0.987, "macro_f1": 0.981, "test_rows": rows // 4, "n_estimators": 40},
        candidates=candidates, segments=segments_frame,
        sample=frame[["segment_id", "pc1", "pc2", "silhouette"] + DISTRIBUTION_COLUMNS].copy(),
        distribution_columns=DISTRIBUTION_COLUMNS, pca_explained=[0.412, 0.183], profiles=profiles,
        drivers_global=drivers_global, drivers_segment=drivers_segment, eda=eda,
        correlation=numeric.corr(), key_features=KEY_FEATURES,
        rule_threshold=GuardrailsConfig().max_rule_agreement,
    )


@pytest.fixture(scope="module")
def inputs() -> ReportInputs:
    return synthetic_inputs()


@pytest.fixture(scope="module")
def html(inputs) -> str:
    return render_html(inputs)


def _png_size(data: bytes) -> tuple[int, int]:
    assert data.startswith(PNG_SIGNATURE), "not a PNG"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_html_has_one_decodable_png_with_alt_text_per_chart(html, inputs):
    images = re.findall(r"<img\b[^>]*>", html)
    assert len(images) == CHART_COUNT == len(charts(inputs))
    for tag in images:
        alt = re.search(r'\balt="([^"]*)"', tag).group(1)
        assert len(alt.strip()) > 20, tag[:80]
        src = re.search(r'\bsrc="([^"]*)"', tag).group(1)
        assert src.startswith("data:image/png;base64,")
        width, height = _png_size(base64.b64decode(src.split(",", 1)[1], validate=True))
        assert 300 <= width <= 1600 and 150 <= height <= 1600, (width, height)


def test_html_is_self_contained(html):
    assert not re.search(r"https?://", html)
    assert "<script" not in html.lower()
    assert "url(" not in html and "@import" not in html
    assert re.findall(r"<link\b[^>]*>", html) == ['<link rel="icon" href="data:,">']
    assert len(html.encode()) < 3_000_000


def test_html_sections_summary_and_candidate_table(html, inputs):
    for section in ["summary", "personas", "candidates", "sizes", "pca", "profiles", "silhouette", "drivers", "eda"]:
        assert f'<section id="{section}">' in html
    assert inputs.model_version in html and inputs.run_date in html
    assert "accuracy 98.7%" in html and "macro-F1 0.981" in html
    assert "kmeans (k=4, n_init=4) with 4 segments" in html  # the chosen candidate in the summary
    assert html.count('<tr class="chosen">') == 1
    assert html.count('<tr class="failed">') == (~inputs.candidates["passed"]).sum()
    assert "noise 14.00% &gt; 10.00%" in html  # failures carry their reason
    assert "eps=1.234" in html  # parameters readable, not raw JSON


def test_persona_cards_name_every_segment_with_its_colour(html, inputs):
    cards = re.findall(r'<article class="card" id="segment-(-?\d+)">(.*?)</article>', html, flags=re.S)
    assert [int(i) for i, _ in cards] == list(inputs.segments["segment_id"])
    colors = plots.segment_colors(inputs.segments["segment_id"])
    for (segment, card), name in zip(cards, inputs.segments["name"]):
        assert f"<h3>{name}</h3>" in card
        assert f"background:{colors[int(segment)]}" in card
        assert "CASH_ADVANCE" in card and "$" in card and "months" in card  # key figures in raw units


def test_text_is_escaped():
    inputs = synthetic_inputs(rows=120, segments=3)
    inputs.segments.loc[0, "name"] = "Cash <b>& co</b>"
    inputs.segments.loc[1, "description"] = 'Says "hi" <script>alert(1)</script>'
    html = render_html(inputs)
    assert "Cash &lt;b&gt;&amp; co&lt;/b&gt;" in html
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_markdown_has_segments_candidates_and_tables(inputs):
    md = render_markdown(inputs)
    for name in inputs.segments["name"]:
        assert f"### {name}" in md
    assert "| verdict | algorithm | parameters | segments |" in md
    assert md.count("| chosen | kmeans |") == 1
    assert md.count("| failed |") == (~inputs.candidates["passed"]).sum()
    assert "| column | missing | zero |" in md
    assert "data:image" not in md and "http" not in md


def test_write_report_writes_both_files_atomically(tmp_path, inputs):
    folder = tmp_path / "models" / inputs.model_version
    html_path, md_path = write_report(inputs, folder)
    assert (html_path, md_path) == (folder / "report.html", folder / "report.md")
    assert html_path.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert md_path.read_text(encoding="utf-8").startswith("# Segment report")
    write_report(inputs, folder)  # a rebuild replaces the files and leaves no temporary ones behind
    assert sorted(p.name for p in folder.iterdir()) == ["report.html", "report.md"]


def test_missing_columns_are_named(inputs):
    broken = synthetic_inputs(rows=60, segments=3)
    broken.segments = broken.segments.drop(columns=["share"])
    broken.distribution_columns = broken.distribution_columns + ["NOT_A_COLUMN"]
    with pytest.raises(ValueError, match=r"segments lacks share.*NOT_A_COLUMN"):
        check_inputs(broken)
    with pytest.raises(ValueError):
        render_html(broken)


def test_noise_is_grey_and_gets_a_card():
    inputs = synthetic_inputs(rows=300, segments=3, noise=True)
    html = render_html(inputs)
    assert html.count("<img ") == CHART_COUNT
    assert '<article class="card" id="segment--1">' in html and f"background:{plots.NOISE_COLOR}" in html


def test_silhouette_never_measured_and_all_zero_column_still_render():
    inputs = synthetic_inputs(rows=100, segments=3)
    inputs.sample["silhouette"] = np.nan
    inputs.sample["CASH_ADVANCE"] = 0.0
    html = render_html(inputs)
    assert html.count("data:image/png;base64,") == CHART_COUNT
    assert "not measured" in html


# ---------------------------------------------------------------- plots


def test_segment_colors_are_stable_distinct_and_grey_for_noise():
    colors = plots.segment_colors([3, 0, 2, 1, -1])
    assert colors == plots.segment_colors([-1, 1, 2, 3, 0, 0])
    assert colors[-1] == plots.NOISE_COLOR
    assert len(set(colors.values())) == 5
    many = plots.segment_colors(range(25))
    assert len(set(many.values())) == 25 and plots.NOISE_COLOR not in many.values()
    assert many[0] == colors[0] == plots.PALETTE[0]


def _plots(inputs: ReportInputs) -> dict[str, Figure]:
    colors = plots.segment_colors(inputs.segments["segment_id"])
    names = dict(zip(inputs.segments["segment_id"], inputs.segments["name"]))
    return {
        "candidates": plots.candidate_comparison(inputs.candidates, inputs.rule_threshold),
        "sizes": plots.segment_sizes(inputs.segments, colors),
        "pca": plots.pca_scatter(inputs.sample, inputs.pca_explained, colors, names),
        "profiles": plots.profile_heatmap(inputs.profiles, colors, names),
        "silhouette": plots.silhouette_by_segment(inputs.sample, colors, names),
        "drivers_global": plots.global_drivers(inputs.drivers_global),
        "drivers_segment": plots.segment_drivers(inputs.drivers_segment, colors, names),
        "distributions": plots.distributions(inputs.sample, inputs.distribution_columns, colors, names),
        "correlation": plots.correlation_heatmap(inputs.correlation),
    }


def test_every_plot_is_a_figure_with_labelled_axes(inputs):
    for name, fig in _plots(inputs).items():
        assert isinstance(fig, Figure), name
        axes = [ax for ax in fig.axes if ax.get_visible() and ax.get_label() != "<colorbar>"]
        assert axes, name
        for ax in axes:
            # A panel sharing its y axis with a labelled one (drivers side by side) needs no label of its own.
            ylabels = [a.get_ylabel() for a in ax.get_shared_y_axes().get_siblings(ax)]
            assert ax.get_xlabel().strip() and any(y.strip() for y in ylabels), (name, ax.get_title())
            ticks = [t.get_text() for t in ax.get_xticklabels() + ax.get_yticklabels()]
            assert all(len(line) <= 36 for t in ticks for line in t.split("\n")), (name, ticks)
        width, height = fig.get_size_inches()
        assert fig.dpi == plots.DPI and width <= 13 and height <= 13, (name, width, height)


def test_candidate_plot_marks_pass_fail_rule_agreement_and_winner(inputs):
    ax = plots.candidate_comparison(inputs.candidates, rule_threshold=0.9).axes[0]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert {"passed guardrails (filled)", "failed guardrails (hollow)", "rule agreement > 90%", "chosen"} <= set(labels)
    assert any(t.get_text().startswith("chosen: kmeans k=4") for t in ax.texts)
    assert any("without a silhouette" in t.get_text() for t in ax.texts)  # the NaN candidate is accounted for


def test_a_segment_has_the_same_colour_in_every_plot(inputs):
    colors = plots.segment_colors(inputs.segments["segment_id"])
    want = {i: to_rgb(c) for i, c in colors.items()}
    figs = _plots(inputs)
    bars = [to_rgb(p.get_facecolor()) for p in figs["sizes"].axes[0].patches]
    assert bars == [want[i] for i in sorted(want)]
    scatter = [to_rgb(c.get_facecolor()[0]) for c in figs["pca"].axes[0].collections]
    assert scatter == [want[i] for i in sorted(want)]
    boxes = [to_rgb(p.get_facecolor()) for p in figs["silhouette"].axes[0].patches]
    assert boxes == [want[i] for i in sorted(want)]
    panels = [ax for ax in figs["drivers_segment"].axes if ax.get_visible()]
    assert [to_rgb(ax.patches[0].get_facecolor()) for ax in panels] == [want[i] for i in sorted(want)]
    steps = [to_rgb(p.get_edgecolor()) for p in figs["distributions"].axes[0].patches if not p.get_fill()]
    assert steps == [want[i] for i in sorted(want)]
    strip = [to_rgb(p.get_facecolor()) for p in figs["profiles"].axes[0].patches]
    assert strip == [want[i] for i in sorted(want)]
    # A plot whose data lacks a segment keeps every other segment's colour.
    without_first = inputs.sample[inputs.sample["segment_id"] != 0]
    partial = plots.pca_scatter(without_first, [0.4, 0.2], colors).axes[0]
    scatter = [to_rgb(c.get_facecolor()[0]) for c in partial.collections]
    assert scatter == [want[i] for i in sorted(want) if i != 0]


def test_a_colour_map_missing_a_segment_is_refused(inputs):
    with pytest.raises(ValueError, match="no colour for segment ids"):
        plots.segment_sizes(inputs.segments, {0: "#000000"})


def test_distributions_use_a_log1p_axis_that_keeps_zero(inputs):
    fig = plots.distributions(inputs.sample, ["CASH_ADVANCE"], plots.segment_colors(inputs.segments["segment_id"]))
    ax = fig.axes[0]
    ticks = [t.get_text() for t in ax.get_xticklabels()]
    assert ticks[:3] == ["0", "1", "10"] and "1k" in ticks
    assert "log1p" in ax.get_xlabel() and "zero for" in ax.get_title()


def test_global_drivers_label_impurity_bias(inputs):
    fig = plots.global_drivers(inputs.drivers_global)
    assert "biased toward high-variance columns" in fig.axes[1].get_title()
    assert "Permutation" in fig.axes[0].get_title()
