"""SIGTERM and SIGINT end a run the way an error does: a final `runs` row naming the signal, the
counts reached, exit 128 + the signal's number, running Spark jobs cancelled, every table whole."""

import os
import signal
import subprocess
import sys
import threading
import time

import pytest
from pyspark.sql import functions as F

from jobs import common

RUN_DATE = "2026-06-01"


def _runs(spark, lake_dir):
    return {r.run_id: r for r in spark.read.format("delta").load(str(lake_dir / "runs")).collect()}


def _signal_once_a_spark_job_runs(spark, signum, sent, in_stage):
    """From another thread: once the stage's Spark job runs, the signal to this (the main) thread."""
    def send():
        in_stage.wait(120)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not spark.sparkContext.statusTracker().getActiveJobsIds():
            time.sleep(0.05)
        sent.append(time.monotonic())
        os.kill(os.getpid(), signum)
    thread = threading.Thread(target=send, daemon=True)
    thread.start()
    return thread


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_while_waiting_on_spark_cancels_the_job_and_records_the_end(spark, tmp_path, lake, signum):
    before = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    sent: list[float] = []
    finished: list[float] = []
    in_stage = threading.Event()

    def slow_stage(spark, cfg, run_date, progress):
        progress["rows_read"] = 7
        in_stage.set()
        # About a minute of work unless cancelled: the driver blocks in a Py4J call meanwhile.
        spark.sparkContext.parallelize(range(600), 2).map(lambda x: (time.sleep(0.1), x)[1]).count()
        finished.append(time.monotonic())
        return {"rows_read": 7}

    sender = _signal_once_a_spark_job_runs(spark, signum, sent, in_stage)
    code = common.main("features", slow_stage, ["--run-date", RUN_DATE, *lake])
    ended = time.monotonic()
    sender.join()
    print(f"{signal.Signals(signum).name}: main returned {ended - sent[0]:.2f}s after the signal")

    name = signal.Signals(signum).name
    assert code == 128 + signum
    assert not finished, "the stage ran to its end: the signal did not stop it"
    assert ended - sent[0] < 20, f"took {ended - sent[0]:.1f}s to stop after {name}"
    (run,) = _runs(spark, tmp_path / "lake").values()
    assert run.status == "FAILED" and run.ended_at is not None
    assert run.error.startswith(f"RunCancelled: {name} received") and "rows_read=7" in run.error
    assert run.rows_read == 7
    assert not spark.sparkContext.statusTracker().getActiveJobsIds()  # nothing left running
    assert {s: signal.getsignal(s) for s in before} == before  # main put the handlers back
    assert spark.sparkContext.getLocalProperty("spark.jobGroup.id") is None  # and took its job group off
    assert spark.range(3).count() == 3  # the session is still usable


SMALL_TRAIN = ["--set", "train.clustering.algorithms=[kmeans]", "--set", "train.clustering.kmeans.k=[4]",
               "--set", "train.clustering.stability.resamples=0"]


def _table(spark, lake_dir, name):
    return spark.read.format("delta").load(str(lake_dir / name))


def _night(spark, lake_dir):
    """What a reader sees of the night: each table's rows of it (every table must be readable)."""
    out = {}
    for name in ("features", "quarantine", "segments", "segment_shares", "drift", "night_profile"):
        if (lake_dir / name).exists():
            out[name] = sorted(map(tuple, _table(spark, lake_dir, name).where(F.col("run_date") == RUN_DATE)
                                   .drop("scored_at", "written_at", "created_at").collect()), key=repr)
    out["segments_current"] = sorted((r.CUST_ID, r.segment_id) for r in
                                     _table(spark, lake_dir, "segments_current").select("CUST_ID", "segment_id").collect())
    return out


def _parquet_files(lake_dir):
    return {str(p) for p in lake_dir.rglob("*.parquet") if "_delta_log" not in str(p) and "/runs/" not in str(p)}


def test_sigterm_mid_write_of_the_real_nightly_records_the_end_and_leaves_every_table_whole(spark, tmp_path, lake):
    from conftest import BUNDLED_CSV, PROJECT
    from jobs import nightly as nightly_job

    lines = BUNDLED_CSV.read_text().splitlines()
    small = tmp_path / "small.csv"
    small.write_text("\n".join(lines[:301]) + "\n")
    lake_dir = tmp_path / "lake"
    args = ["--run-date", RUN_DATE, "--input", str(small), *lake, *SMALL_TRAIN]
    assert nightly_job.main(args) == 0
    before = _night(spark, lake_dir)
    known = _parquet_files(lake_dir)

    env = dict(os.environ, PYSPARK_PYTHON=sys.executable)
    env.pop("PYSPARK_GATEWAY_PORT", None)
    log_path = tmp_path / "nightly.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "jobs.nightly", *args], cwd=PROJECT, env=env,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 300
        try:
            # Delta writes data files first and commits after: a new file means a stage is writing.
            while proc.poll() is None and time.monotonic() < deadline and not (_parquet_files(lake_dir) - known):
                time.sleep(0.01)
            assert proc.poll() is None, "the job finished before it could be signalled"
            sent = time.monotonic()
            os.kill(proc.pid, signal.SIGTERM)  # the driver process only, as a scheduler's cancel
            code = proc.wait(timeout=120)
            took = time.monotonic() - sent
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    text = log_path.read_text()
    print(f"SIGTERM mid-write: exit {code} {took:.2f}s after the signal")
    print("\n".join(line for line in text.splitlines() if "segmentation" in line))
    assert code == 143, text[-3000:]
    assert "nightly FAILED (RunCancelled): SIGTERM received" in text

    last = _table(spark, lake_dir, "runs").orderBy("started_at").collect()[-1]
    assert last.status == "FAILED" and last.ended_at is not None and last.job == "nightly"
    assert last.error.startswith("RunCancelled: SIGTERM received"), last.error
    assert last.rows_read == 300  # the features stage had counted its input
    assert not _table(spark, lake_dir, "runs").where(F.col("status") == "RUNNING").count()
    # Every table readable; the night's rows are those of the good run before (the same input
    # gives the same rows, and a write cut short never commits).
    assert _night(spark, lake_dir) == before


def test_a_signal_while_the_end_is_written_is_ignored_and_the_exit_code_is_128_plus_its_number(caplog):
    from segmentation.core.errors import RunCancelled

    assert (RunCancelled("x", signal.SIGTERM).exit_code, RunCancelled("x", signal.SIGINT).exit_code) == (143, 130)
    assert RunCancelled("rebuilt from an executor's text").exit_code == 143  # errors.from_executor's call
    stop = common._Signals("features")
    with pytest.raises(RunCancelled, match="SIGTERM received"):
        stop._handle(signal.SIGTERM, None)
    stop.hold()
    stop._handle(signal.SIGINT, None)  # a second signal, while the row is written: no raise
    assert stop.received == signal.SIGTERM
    cancel = stop.cancelled(ValueError("py4j"), {"rows_read": 3})
    assert cancel.exit_code == 143 and str(cancel).startswith("SIGTERM received") and "rows_read=3" in str(cancel)
