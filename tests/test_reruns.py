"""Crash safety and concurrency: a killed run leaves every table at its last good version, and
concurrent scoring never duplicates a customer."""

import datetime as dt
import os
import signal
import subprocess
import sys
import threading
import time

import pytest
from conftest import PROJECT, TEST_SESSION
from pyspark.sql import functions as F

from jobs import features as features_job
from jobs import nightly as nightly_job
from segmentation.core.config import load_config
from segmentation.core.errors import ConcurrentRunError
from segmentation.score.stage import run_score

SMALL_TRAIN = ["--set", "train.clustering.algorithms=[kmeans]", "--set", "train.clustering.kmeans.k=[4]",
               "--set", "train.clustering.stability.resamples=0"]
D1, D2 = "2026-04-01", "2026-04-02"


def _table(spark, lake_dir, name):
    return spark.read.format("delta").load(str(lake_dir / name))


def _snapshot(spark, lake_dir):
    segments = _table(spark, lake_dir, "segments")
    return {
        "features": _table(spark, lake_dir, "features").count(),
        "quarantine": _table(spark, lake_dir, "quarantine").count(),
        "segments": sorted((r.CUST_ID, r.segment_id) for r in segments.select("CUST_ID", "segment_id").collect()),
    }


def _parquet_files(lake_dir):
    return {str(p) for table in ("features", "segments", "quarantine") for p in (lake_dir / table).rglob("*.parquet")}


def test_killed_mid_write_leaves_tables_readable_and_the_rerun_completes(spark, tmp_path, lake):
    lake_dir = tmp_path / "lake"
    args = ["--run-date", D1, *lake, *SMALL_TRAIN]
    assert nightly_job.main(args) == 0
    before = _snapshot(spark, lake_dir)
    known = _parquet_files(lake_dir)

    env = dict(os.environ, PYSPARK_PYTHON=sys.executable)
    env.pop("PYSPARK_GATEWAY_PORT", None)
    proc = subprocess.Popen([sys.executable, "-m", "jobs.nightly", *args], cwd=PROJECT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 300
    try:
        # Delta writes data files first and commits after: a new file means a write is under way.
        while proc.poll() is None and time.monotonic() < deadline and not (_parquet_files(lake_dir) - known):
            time.sleep(0.01)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the job finished before it could be killed mid-write"
    assert _parquet_files(lake_dir) - known, "killed before any write began"

    assert _snapshot(spark, lake_dir) == before  # every table readable, at its last good version
    # The killed run said it was running, and nothing after: no final status.
    (killed,) = _table(spark, lake_dir, "runs").where(F.col("status") == "RUNNING").collect()
    assert killed.job == "nightly" and killed.ended_at is None
    assert nightly_job.main(args) == 0
    assert _snapshot(spark, lake_dir) == before  # and the re-run gives the same tables
    # ... which reported the killed run as abandoned.
    statuses = {r.run_id: r.status for r in _table(spark, lake_dir, "runs").collect()}
    assert statuses[killed.run_id] == "ABANDONED"
    assert sorted(statuses.values()) == ["ABANDONED", "SUCCEEDED", "SUCCEEDED"]


@pytest.fixture(scope="module")
def two_nights(spark, tmp_path_factory):
    lake_dir = tmp_path_factory.mktemp("concurrent")
    lake = ["--set", f"tables.root={lake_dir}", "--set", f"tables.models_dir={lake_dir / 'models'}", *TEST_SESSION]
    assert nightly_job.main(["--run-date", D1, *lake, *SMALL_TRAIN]) == 0
    assert features_job.main(["--run-date", D2, *lake]) == 0
    cfg = load_config(PROJECT / "conf", ["local"], [v for v in lake if v != "--set"])
    return lake_dir, cfg


def _score_together(spark, cfg, dates):
    results = {}

    def score(i, day):
        try:
            results[i] = run_score(spark, cfg, dt.date.fromisoformat(day))
        except Exception as exc:  # collected and asserted on below
            results[i] = exc

    threads = [threading.Thread(target=score, args=(i, d)) for i, d in enumerate(dates)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return [results[i] for i in range(len(dates))]


def test_scoring_two_dates_at_once_both_succeed(spark, two_nights):
    lake_dir, cfg = two_nights
    results = _score_together(spark, cfg, [D1, D2])
    assert all(isinstance(r, dict) for r in results), results
    segments = _table(spark, lake_dir, "segments")
    for day in (D1, D2):
        night = segments.where(F.col("run_date") == day)
        assert night.count() == night.select("CUST_ID").distinct().count() == 8950


def test_scoring_one_date_twice_at_once_never_duplicates(spark, two_nights):
    lake_dir, cfg = two_nights
    results = _score_together(spark, cfg, [D1, D1])
    assert all(isinstance(r, (dict, ConcurrentRunError)) for r in results), results
    assert any(isinstance(r, dict) for r in results)
    night = _table(spark, lake_dir, "segments").where(F.col("run_date") == D1)
    assert night.count() == night.select("CUST_ID").distinct().count() == 8950
