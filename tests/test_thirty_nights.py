"""Thirty generated nights, then `maintain`: every table's file count within the bound that
docs/tables.md states, every query the docs promise still working, and the monitoring page
(`report --nights N`) over the last three nights and over all thirty, clean in headless Chromium.

The bound (docs/tables.md, maintenance): after `maintain`, a table's latest snapshot holds at
most one data file per `run_date` partition, and an unpartitioned table one, however many nights
wrote to it (OPTIMIZE bin-packs each partition's small files; at 300 customers a night no
partition reaches Delta's target file size).

Night 29 carries rows the contract quarantines and night 30 drifts (every money column x3), so
the page has something to flag. The page is checked as the model report is: self-contained,
every picture a decodable PNG with alt text and legible axes, and clean in headless Chromium.
"""

from __future__ import annotations

import base64
import re
import shutil

import pandas as pd
import polars as pl
import pytest
from conftest import PROJECT
from deltalake import DeltaTable as RustTable
from docs_queries import run_documented_queries
from lake_of_nights import build_lake, lake_args
from matplotlib.figure import Figure
from pyspark.sql import functions as F
from test_report_browser import check_report_in_browser

from jobs import maintain as maintain_job
from jobs import report as report_job
from segmentation.core.config import TABLE_KEYS, load_config
from segmentation.core.errors import FeaturesNotFoundError
from segmentation.io import runs, tables
from segmentation.report import monitor_html, monitor_inputs, plots
from segmentation.synthetic.generator import NightParams

NIGHTS, SHOWN = 30, 3
CHARTS = 6
QUARANTINED_NIGHT = 29  # in the last SHOWN nights, so the short page shows its reasons


def _files(spark, root, name: str) -> tuple[int, int]:
    """(files in the latest snapshot, run_date partitions; 0 for an unpartitioned table)."""
    ref = tables.TableRef(path=str(root / name))
    detail = tables.delta_table(spark, ref).detail().select("numFiles", "partitionColumns").first()
    partitions = tables.read_delta(spark, ref).select("run_date").distinct().count() if detail[1] else 0
    return int(detail[0]), partitions


@pytest.fixture(scope="module")
def maintained(spark, tmp_path_factory):
    work = tmp_path_factory.mktemp("thirty")
    params = NightParams(move_share=0.03, departure_share=0.01, arrival_share=0.01, drift_from=NIGHTS,
                         drift_scale=3.0)
    # The last SHOWN nights run as features + score, so the short page has a duration for each.
    root, dates, timings = build_lake(spark, work, NIGHTS, params, bad={5: 2, 17: 1, QUARANTINED_NIGHT: 3},
                                      split=SHOWN)
    names = [n for n in TABLE_KEYS if (root / n / "_delta_log").is_dir()]
    before = {n: _files(spark, root, n) for n in names}
    assert maintain_job.main(["--run-date", dates[-1].isoformat(), *lake_args(root)]) == 0
    after = {n: _files(spark, root, n) for n in names}
    print(f"{NIGHTS} nights: {sum(v for k, v in timings.items() if k != 'generate'):.0f}s "
          f"(generate {timings['generate']:.0f}s); files before/after maintain:",
          {n: (before[n][0], after[n][0]) for n in names})
    return root, dates, before, after


def test_every_table_stays_within_one_file_per_night_after_maintain(maintained):
    _, _, before, after = maintained
    assert {"features", "segments", "segments_current", "runs", "nights", "drift", "segment_shares"} <= set(after)
    for name, (files, partitions) in after.items():
        assert files <= max(partitions, 1), (name, files, partitions)
        assert partitions <= NIGHTS, name
    assert after["runs"][0] == after["nights"][0] == after["segments_current"][0] == 1
    assert sum(f for f, _ in after.values()) < sum(f for f, _ in before.values())


def test_every_documented_query_still_works(spark, maintained):
    root, dates, _, _ = maintained
    nights = tables.read_delta(spark, tables.TableRef(path=str(root / "nights")))
    published = {r.run_date: r.customers for r in nights.where("status = 'PUBLISHED'").collect()}
    assert sorted(published) == dates
    middle = nights.where(F.col("run_date") == dates[NIGHTS // 2]).first()["current_version"]
    current = tables.read_delta(spark, tables.TableRef(path=str(root / "segments_current")))
    segment = current.groupBy("segment_id").count().orderBy(F.desc("count")).first()["segment_id"]
    results = run_documented_queries(spark, root, middle, segment, dates[-1].isoformat(),
                                     dates[NIGHTS // 2].isoformat())
    for sql, rows in results:
        if "/nights`" in sql:  # customers per published night
            per_night: dict = {}
            for r in rows:
                per_night[r.run_date] = per_night.get(r.run_date, 0) + r.customers
            assert per_night == published, sql
        elif "table_changes" in sql or "segment_events" in sql:
            assert rows, sql  # customers move every night, so some moved since the middle night
    # Readers other than Spark, as the docs show them.
    assert pl.read_delta(str(root / "segments_current")).height == current.count()
    changes = RustTable(str(root / "segments_current")).load_cdf(starting_version=middle).read_all()
    assert changes.num_rows > 0


def test_the_monitoring_page_over_thirty_nights_opens_cleanly(maintained):
    root, dates, _, _ = maintained
    assert report_job.main(["--nights", str(NIGHTS), *lake_args(root)]) == 0
    path = root / monitor_inputs.MONITOR_FILE
    html = path.read_text(encoding="utf-8")
    print(f"monitoring page over {NIGHTS} nights: {len(html.encode()) // 1024} KiB")
    assert f"{NIGHTS} published ({dates[0]} to {dates[-1]})" in html
    # maintain's own run is on the page, beside the nightly runs and the split nights' two stages
    assert all(f"{job} (s)" in html for job in ("maintain", "nightly", "features", "score"))
    check_report_in_browser(path)


# --- the page over the last SHOWN nights -------------------------------------------------------


@pytest.fixture(scope="module")
def page(maintained, tmp_path_factory):
    """The short page, copied out of the lake (the thirty-night page is written to the same file)."""
    root, *_ = maintained
    assert report_job.main(["--nights", str(SHOWN), *lake_args(root)]) == 0
    path = tmp_path_factory.mktemp("page") / monitor_inputs.MONITOR_FILE
    shutil.copyfile(root / monitor_inputs.MONITOR_FILE, path)
    return path, path.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def inputs(spark, maintained):
    root, *_ = maintained
    overrides = [a for a in lake_args(root) if a != "--set"] + [f"monitor.nights={SHOWN}"]
    cfg = load_config(PROJECT / "conf", ["local"], overrides)
    return monitor_inputs.read(spark, cfg, runs.utc_now())


def test_the_page_shows_the_last_n_published_nights(page, maintained):
    _, html = page
    _, dates, _, _ = maintained
    shown = [d.isoformat() for d in dates[-SHOWN:]]
    assert f"<title>Segmentation monitor · {SHOWN} nights to {shown[-1]}</title>" in html
    assert f"{SHOWN} published ({shown[0]} to {shown[-1]}); asked for the last {SHOWN}" in html
    for section in ("summary", "flags", "shares", "psi", "migrations", "quarantine"):
        assert f'<section id="{section}">' in html
    assert dates[-SHOWN - 1].isoformat() not in html  # the night before the window is not shown


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


def test_flags_quarantine_and_durations_are_on_the_page(page, maintained):
    _, html = page
    _, dates, _, _ = maintained
    assert "negative_amount:BALANCE 3" in html  # the quarantined night's rows, by reason
    # The last night drifted: PSI rows flagged in the flags table, the threshold drawn and named.
    row = re.search(rf'<tr class="flagged"><td>{dates[-1].isoformat()}</td>.*?</tr>', html)
    assert row, "the drifted night is not flagged"
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


def test_every_run_records_the_input_its_night_was_built_from(spark, maintained):
    root, dates, _, _ = maintained
    rows = tables.read_delta(spark, tables.TableRef(path=str(root / "runs"))).where(
        F.col("job").isin("nightly", "features", "score")).select("run_date", "job", "input_version").collect()
    by_job = {(r.run_date, r.job): r.input_version for r in rows}
    assert len(by_job) == len(rows) == (NIGHTS - SHOWN) + 2 * SHOWN
    assert all(v and v.startswith("files:sha256:") for v in by_job.values()), by_job
    for date in dates[-SHOWN:]:  # score's row names the input of the features it scored
        assert by_job[(date, "score")] == by_job[(date, "features")]
    assert len(set(by_job.values())) == NIGHTS  # one input per night, each its own
