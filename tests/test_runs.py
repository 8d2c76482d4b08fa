"""The runs table: a row for every run whatever ends it, the counts a failed run reached, and
runs that never finished reported as abandoned by the next one."""

import datetime as dt
import logging

import pytest
from conftest import BUNDLED_CSV, PROJECT
from pyspark.sql import functions as F

from jobs import features as features_job
from segmentation.core.config import load_config
from segmentation.core.errors import UNEXPECTED_EXIT_CODE, ConfigError
from segmentation.io import runs

RUN_DATE = "2026-06-01"
# A stale rule out of the way (a year), with the retention maintain needs to cover it.
YEAR = ["runs.stale_after_hours=8784", "maintain.vacuum_retention_hours=8784", "maintain.log_retention_days=366"]
LINES = BUNDLED_CSV.read_text().splitlines()


def _runs(spark, lake_dir):
    return {r.run_id: r for r in spark.read.format("delta").load(str(lake_dir / "runs")).collect()}


@pytest.fixture
def small_input(tmp_path):
    """20 real customers and one with a negative balance (quarantined)."""
    header, first = LINES[0], LINES[1].split(",")
    bad = ",".join(["BAD1", "-5", *first[2:]])
    path = tmp_path / "small.csv"
    path.write_text("\n".join([header, *LINES[1:21], bad]) + "\n")
    return path


def test_an_unexpected_error_is_recorded_with_the_counts_reached(spark, tmp_path, lake, small_input):
    # The features table's folder sits under a file: Delta cannot create it, a Java error that
    # names no product error. Quarantine is written first, so the run has counts to report.
    (tmp_path / "lake").mkdir()
    (tmp_path / "lake" / "blocked").write_text("a file where a folder should be")
    args = ["--run-date", RUN_DATE, "--input", str(small_input), *lake, "--set", "tables.features=blocked/features",
            "--set", "contract.max_quarantine_share=0.1"]
    assert features_job.main(args) == UNEXPECTED_EXIT_CODE == 8
    (run,) = _runs(spark, tmp_path / "lake").values()
    assert run.status == "FAILED" and run.job == "features" and run.ended_at is not None
    assert run.error.startswith("Py4JJavaError: org.apache.spark.sql.delta.") and "\n" not in run.error
    assert (run.rows_read, run.rows_quarantined, run.rows_written) == (21, 1, None)


def test_an_executors_python_error_is_described_by_the_workers_exception(spark):
    def fail(batches):
        for _ in batches:
            raise ValueError("Input X contains infinity or a value too large for dtype('float32').")
        yield  # pragma: no cover

    with pytest.raises(Exception) as caught:
        spark.range(2).mapInArrow(fail, "id long").collect()
    assert runs.describe(caught.value) == (
        "PythonException: ValueError: Input X contains infinity or a value too large for dtype('float32')."
    )


def test_a_run_that_never_finished_is_reported_abandoned_by_the_next(spark, tmp_path, lake, caplog):
    # The job path (a SIGKILLed nightly, then its re-run) is in test_reruns; here, which rows change.
    # The stale rule (any job, any date) is set out of the way: a year.
    cfg = load_config(PROJECT / "conf", ["local"], [v for v in lake if v != "--set"] + YEAR)
    day, other_day = dt.date.fromisoformat(RUN_DATE), dt.date(2026, 6, 2)
    killed_at = dt.datetime(2026, 6, 1, 22, 0, tzinfo=dt.timezone.utc)
    recently = runs.utc_now() - dt.timedelta(hours=1)  # younger than runs.stale_after_hours
    # What a killed run leaves: its RUNNING row and nothing after it.
    runs.start(spark, cfg, "killed", day, "features", killed_at)
    runs.start(spark, cfg, "other-date", other_day, "features", recently)
    runs.start(spark, cfg, "other-job", day, "score", recently)

    logger = logging.getLogger("segmentation")
    logger.addHandler(caplog.handler)
    try:
        runs.start(spark, cfg, "next", day, "features", runs.utc_now())  # the next run of features for that date
    finally:
        logger.removeHandler(caplog.handler)

    table = _runs(spark, tmp_path / "lake")
    assert table["killed"].status == "ABANDONED" and "found by run next" in table["killed"].error
    assert table["killed"].ended_at is None  # when it died is not known
    assert table["other-date"].status == table["other-job"].status == table["next"].status == "RUNNING"
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("run killed of features for 2026-06-01" in m and "ABANDONED" in m for m in warnings), warnings
    # Stored as the instant it was: 22:00 UTC, whatever the session's or the driver's zone.
    stored = spark.read.format("delta").load(str(tmp_path / "lake" / "runs")).where(F.col("run_id") == "killed")
    assert stored.select(F.unix_timestamp("started_at")).first()[0] == int(killed_at.timestamp())

    # A run still alive when marked has the last word when it ends.
    runs.finish(spark, cfg, "killed", day, "features", killed_at, {"rows_read": 3}, None)
    assert _runs(spark, tmp_path / "lake")["killed"].status == "SUCCEEDED"


def test_a_stale_running_row_of_any_job_and_date_is_abandoned_by_the_next_run(spark, tmp_path, lake, caplog):
    keys = [v for v in lake if v != "--set"]
    cfg = load_config(PROJECT / "conf", ["local"], keys + ["runs.stale_after_hours=6"])
    writing = load_config(PROJECT / "conf", ["local"], keys + YEAR)  # rows as left
    now = runs.utc_now()
    other_day, today = dt.date(2026, 5, 1), now.date()
    for run_id, day, job, age in [("old-score", other_day, "score", dt.timedelta(hours=7)),
                                  ("old-train", today, "train", dt.timedelta(days=30)),
                                  ("young-score", dt.date(2026, 5, 2), "score", dt.timedelta(hours=5)),
                                  ("young-train", dt.date(2026, 5, 3), "train", dt.timedelta(minutes=1)),
                                  ("old-done", dt.date(2026, 5, 4), "score", dt.timedelta(hours=9))]:
        runs.start(spark, writing, run_id, day, job, now - age)
    runs.finish(spark, writing, "old-done", dt.date(2026, 5, 4), "score", now - dt.timedelta(hours=9), {}, None)

    logger = logging.getLogger("segmentation")
    logger.addHandler(caplog.handler)
    try:
        runs.start(spark, cfg, "next", dt.date(2026, 7, 1), "features", now)  # another job, another date
    finally:
        logger.removeHandler(caplog.handler)

    table = _runs(spark, tmp_path / "lake")
    status = {run_id: r.status for run_id, r in table.items()}
    assert status == {"old-score": "ABANDONED", "old-train": "ABANDONED", "young-score": "RUNNING",
                      "young-train": "RUNNING", "old-done": "SUCCEEDED", "next": "RUNNING"}
    for run_id in ("old-score", "old-train"):  # the same note as a same-night leftover's
        assert table[run_id].error.startswith("no final status: the run was killed or lost its driver; found by run next at ")
        assert table[run_id].ended_at is None
    warnings = {r.getMessage() for r in caplog.records if r.levelno == logging.WARNING}
    assert len(warnings) == 2, warnings  # one per row marked
    assert any("run old-score of score for 2026-05-01" in m and "ABANDONED" in m for m in warnings), warnings
    assert any(f"run old-train of train for {today}" in m and "ABANDONED" in m for m in warnings), warnings


def test_stale_after_hours_is_a_positive_number_of_hours():
    assert load_config(PROJECT / "conf", ["local"]).runs.stale_after_hours == 24
    for bad in ("0", "-1", "yes", "100000"):
        with pytest.raises(ConfigError, match="runs.stale_after_hours"):
            load_config(PROJECT / "conf", ["local"], [f"runs.stale_after_hours={bad}"])
