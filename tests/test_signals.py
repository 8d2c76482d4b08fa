"""SIGTERM and SIGINT end a run the way an error does: a final `runs` row naming the signal, the
counts reached, exit 128 + the signal's number, running Spark jobs cancelled, every table whole."""

import os
import signal
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
    assert spark.range(3).count() == 3  # the session is still usable
