"""The monitoring page (`report --nights N`) over a lake of four real generated nights.

Night 2 carries rows the contract quarantines and night 4 drifts (every money column x3), so
the page has something to flag. The page is checked as the model report is: self-contained,
every picture a decodable PNG with alt text and legible axes, and clean in headless Chromium.
"""

from __future__ import annotations

import base64
import re

import pandas as pd
import pytest
from conftest import PROJECT
from lake_of_nights import build_lake, lake_args
from matplotlib.figure import Figure
from test_report_browser import check_report_in_browser

from jobs import report as report_job
from segmentation.core.config import load_config
from segmentation.core.errors import FeaturesNotFoundError
from segmentation.io import runs
from segmentation.report import monitor_html, monitor_inputs, plots
from segmentation.synthetic.generator import NightParams

NIGHTS, SHOWN = 4, 3
CHARTS = 6


@pytest.fixture(scope="module")
def lake(spark, tmp_path_factory):
    params = NightParams(move_share=0.03, departure_share=0.01, arrival_share=0.01, drift_from=4, drift_scale=3.0)
    root, dates, timings = build_lake(spark, tmp_path_factory.mktemp("monitor"), NIGHTS, params, bad={2: 3})
    print("lake of nights:", {k: round(v) for k, v in timings.items()})
    return root, dates


@pytest.fixture(scope="module")
def page(lake):
    root, _ = lake
    assert report_job.main(["--nights", str(SHOWN), *lake_args(root)]) == 0
    path = root / monitor_inputs.MONITOR_FILE
    return path, path.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def inputs(spark, lake):
    root, _ = lake
    overrides = [a for a in lake_args(root) if a != "--set"] + [f"monitor.nights={SHOWN}"]
    cfg = load_config(PROJECT / "conf", ["local"], overrides)
    return monitor_inputs.read(spark, cfg, runs.utc_now())


def test_the_page_shows_the_last_n_published_nights(page, lake):
    _, html = page
    _, dates = lake
    shown = [d.isoformat() for d in dates[-SHOWN:]]
    assert f"<title>Segmentation monitor · {SHOWN} nights to {shown[-1]}</title>" in html
    assert f"{SHOWN} published ({shown[0]} to {shown[-1]}); asked for the last {SHOWN}" in html
    for section in ("summary", "flags", "shares", "psi", "migrations", "quarantine"):
        assert f'<section id="{section}">' in html
    assert dates[0].isoformat() not in html  # the night before the window is not shown


def test_every_chart_is_an_embedded_png_with_alt_text(page):
    _, html = page
    images = re.findall(r"<img\b[^>]*>", html)
    assert len(images) == CHARTS
    for tag in images:
        assert len(re.search(r'\balt="([^"]*)"', tag).group(1)) > 40, tag[:80]
        src = re.search(r'\bsrc="([^"]*)"', tag).group(1)
        assert base64.b64decode(src.split(",", 1)[1], validate=True).startswith(b"\x89PNG")
    assert not re.search(r"https?://", html) and "<script" not in html.lower()
    assert len(html.encode()) < 3_000_000


def test_flags_quarantine_and_durations_are_on_the_page(page, lake):
    _, html = page
    _, dates = lake
    assert "negative_amount:BALANCE 3" in html  # night 2's quarantined rows, by reason
    # Night 4 drifted: PSI rows flagged in the flags table, the threshold drawn and named.
    row = re.search(rf'<tr class="flagged"><td>{dates[3].isoformat()}</td>.*?</tr>', html)
    assert row, "night 4 is not flagged"
    cells = re.findall(r"<td[^>]*>(.*?)</td>", row.group(0))
    assert cells[4] != "none" and "BALANCE" in html, cells  # the features that drifted, with their PSI
    assert "threshold 0.2" in html and "above the threshold" in html
    assert "features (s)" in html and "score (s)" in html  # run duration per stage, from runs
    assert "No run failed or was abandoned" in html


def test_every_monitor_plot_is_legible(inputs):
    for chart in monitor_html.charts(inputs):
        fig = chart.draw()
        assert isinstance(fig, Figure), chart.key
        width, height = fig.get_size_inches()
        assert fig.dpi == plots.DPI and width <= 13 and height <= 13, (chart.key, width, height)
        for ax in [a for a in fig.axes if a.get_visible() and a.get_label() != "<colorbar>"]:
            assert ax.get_xlabel().strip() and ax.get_ylabel().strip(), chart.key
            ticks = [t.get_text() for t in ax.get_xticklabels() + ax.get_yticklabels()]
            assert all(len(line) <= 36 for t in ticks for line in t.split("\n")), (chart.key, ticks)


def test_guard_figures_are_recomputed_from_the_tables(inputs):
    failures = monitor_html.guard_figures(inputs)
    # The window's first night is compared with the night before it; a x3 drift stays within x5.
    assert sorted(failures) == list(pd.to_datetime(inputs.nights["run_date"]))
    assert all(v == [] for v in failures.values())
    tight = inputs.guard.model_copy(update={"max_median_ratio": 2.0})
    drifted = monitor_html.guard_figures(monitor_inputs.MonitorInputs(**{**inputs.__dict__, "guard": tight}))
    assert any(f.figure.startswith("median_ratio:") for f in drifted[max(drifted)])


def test_the_page_opens_cleanly_in_chromium(page):
    path, _ = page
    check_report_in_browser(path)


def test_a_lake_without_a_published_night_is_refused_by_name(tmp_path):
    assert report_job.main(["--nights", "5", *lake_args(tmp_path / "empty")]) == FeaturesNotFoundError.exit_code
    assert not (tmp_path / "empty" / monitor_inputs.MONITOR_FILE).exists()
