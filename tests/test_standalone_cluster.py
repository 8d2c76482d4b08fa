"""`spark-submit.sh nightly` against a real Spark standalone master and worker on loopback:
executors run in their own JVMs and Python workers, so code, config and model must travel."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pyspark
import pytest
from conftest import PROJECT
from pyspark.sql import functions as F

from segmentation.synthetic.generator import generate_customers, write_customers

pytestmark = pytest.mark.slow
SPARK_HOME = Path(pyspark.__file__).parent
ROWS = 20000


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for(path: Path, text: str, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and text in path.read_text(errors="replace"):
            return
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[1]} exited early:\n{path.read_text(errors='replace')[-2000:]}")
        time.sleep(0.5)
    raise TimeoutError(f"{text!r} not seen in {path}")


@pytest.fixture
def standalone_cluster(tmp_path):
    env = dict(os.environ, SPARK_HOME=str(SPARK_HOME), SPARK_LOCAL_IP="127.0.0.1", SPARK_MASTER_HOST="127.0.0.1",
               SPARK_LOG_DIR=str(tmp_path / "logs"), SPARK_WORKER_DIR=str(tmp_path / "work"))
    port = _free_port()
    url = f"spark://127.0.0.1:{port}"
    spark_class = str(SPARK_HOME / "bin" / "spark-class")
    procs = []
    try:
        master_log = tmp_path / "master.log"
        with master_log.open("w") as out:
            procs.append(subprocess.Popen(
                [spark_class, "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1", "--port", str(port),
                 "--webui-port", str(_free_port())],
                env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True))
        _wait_for(master_log, "I have been elected leader", procs[0])
        worker_log = tmp_path / "worker.log"
        with worker_log.open("w") as out:
            procs.append(subprocess.Popen(
                [spark_class, "org.apache.spark.deploy.worker.Worker", url, "--host", "127.0.0.1", "--cores", "2",
                 "--memory", "3g", "--webui-port", str(_free_port()), "--work-dir", str(tmp_path / "work")],
                env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True))
        _wait_for(worker_log, "Successfully registered with master", procs[1])
        yield url, env
    finally:
        for proc in reversed(procs):
            try:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=30)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                os.killpg(proc.pid, signal.SIGKILL)


def test_nightly_runs_on_a_standalone_cluster(spark, tmp_path, standalone_cluster):
    url, env = standalone_cluster
    source = tmp_path / "customers.parquet"
    write_customers(generate_customers(spark, ROWS, seed=11, partitions=4), str(source), "parquet")
    lake_dir = tmp_path / "lake"
    env = dict(env, PYSPARK_PYTHON=sys.executable)
    env.pop("PYSPARK_GATEWAY_PORT", None)
    result = subprocess.run(
        [str(PROJECT / "spark-submit.sh"), "nightly", "--master", url, "--run-date", "2026-05-01",
         "--input", str(source), "--set", f"tables.root={lake_dir}", "--set", f"tables.models_dir={lake_dir / 'models'}",
         "--set", "train.clustering.algorithms=[kmeans]", "--set", "train.clustering.kmeans.k=[5]",
         "--set", "train.clustering.stability.resamples=0",
         "--conf", "spark.executor.memory=2g", "--conf", "spark.sql.shuffle.partitions=4"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert "nightly OK" in output
    # The work ran in the worker's executor JVMs, not in the driver.
    assert any((tmp_path / "work").rglob("stderr")), "no executor ran on the worker"

    segments = spark.read.format("delta").load(str(lake_dir / "segments"))
    quarantined = spark.read.format("delta").load(str(lake_dir / "quarantine")).count()
    assert segments.count() + quarantined == ROWS
    assert segments.select("CUST_ID").distinct().count() == segments.count()
    assert quarantined <= 0.01 * ROWS
    assert segments.where(F.col("segment_name").isNull()).count() == 0
