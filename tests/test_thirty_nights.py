"""Thirty generated nights, then `maintain`: every table's file count within the bound that
docs/tables.md states, every query the docs promise still working, and the monitoring page over
the thirty nights clean in headless Chromium.

The bound (docs/tables.md, maintenance): after `maintain`, a table's latest snapshot holds at
most one data file per `run_date` partition, and an unpartitioned table one, however many nights
wrote to it (OPTIMIZE bin-packs each partition's small files; at 300 customers a night no
partition reaches Delta's target file size).
"""

from __future__ import annotations

import polars as pl
import pytest
from deltalake import DeltaTable as RustTable
from docs_queries import run_documented_queries
from lake_of_nights import build_lake, lake_args
from pyspark.sql import functions as F
from test_report_browser import check_report_in_browser

from jobs import maintain as maintain_job
from jobs import report as report_job
from segmentation.core.config import TABLE_KEYS
from segmentation.io import tables
from segmentation.report import monitor_inputs

NIGHTS = 30
pytestmark = pytest.mark.year  # not in CI yet: see CONTRIBUTING.md


def _files(spark, root, name: str) -> tuple[int, int]:
    """(files in the latest snapshot, run_date partitions; 0 for an unpartitioned table)."""
    ref = tables.TableRef(path=str(root / name))
    detail = tables.delta_table(spark, ref).detail().select("numFiles", "partitionColumns").first()
    partitions = tables.read_delta(spark, ref).select("run_date").distinct().count() if detail[1] else 0
    return int(detail[0]), partitions


@pytest.fixture(scope="module")
def maintained(spark, tmp_path_factory):
    work = tmp_path_factory.mktemp("thirty")
    root, dates, timings = build_lake(spark, work, NIGHTS, bad={5: 2, 17: 1})
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
    assert "maintain (s)" in html  # maintain's own run is on the page, beside features, train and score
    check_report_in_browser(path)
