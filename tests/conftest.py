"""One local Delta-enabled SparkSession for the whole test session (one per worker when
`make test` runs the files on two pytest-xdist workers)."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import sys
import tempfile
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[1]
BUNDLED_CSV = PROJECT / "data" / "CC_GENERAL.csv"


@contextlib.contextmanager
def checkout_lock(name: str):
    """Holds an exclusive lock named `name` for this checkout across pytest-xdist workers: for
    what two workers must not do at once (Ivy resolving into one cache, a build in the tree)."""
    checkout = hashlib.sha256(str(PROJECT).encode()).hexdigest()[:12]
    path = Path(tempfile.gettempdir()) / f"segmentation-tests-{checkout}-{name}.lock"
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@pytest.fixture(scope="session")
def spark():
    from delta import configure_spark_with_delta_pip
    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = (
        SparkSession.builder.master("local[2]")
        .appName("segmentation-tests")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.default.parallelism", "2")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.extensions", "io.delta.sql.DeltaSparkSessionExtension")
        .config("spark.sql.catalog.spark_catalog", "org.apache.spark.sql.delta.catalog.DeltaCatalog")
        .config("spark.databricks.delta.snapshotPartitions", "2")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.driver.extraJavaOptions", f"-Dlog4j2.configurationFile=file:{PROJECT / 'conf' / 'log4j2.properties'}")
    )
    with checkout_lock("ivy"):  # two workers resolving Delta's jars into one Ivy cache at once
        session = configure_spark_with_delta_pip(builder).getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


# Jobs apply the config's shuffle partitions to the session they reuse (this one): tests keep 2.
TEST_SESSION = ["--set", "spark.shuffle_partitions=2"]


@pytest.fixture
def segmentation_log(caplog):
    """The product's log lines (its logger does not propagate to the root one pytest watches)."""
    logger = logging.getLogger("segmentation")
    logger.addHandler(caplog.handler)
    caplog.set_level(logging.INFO, logger="segmentation")
    yield caplog
    logger.removeHandler(caplog.handler)


@pytest.fixture
def lake(tmp_path):
    """Job arguments that put every table and model under this test's tmp_path."""
    return [
        "--set", f"tables.root={tmp_path / 'lake'}",
        "--set", f"tables.models_dir={tmp_path / 'lake' / 'models'}",
        *TEST_SESSION,
    ]


@pytest.fixture(autouse=True)
def _test_session_settings():
    """Puts back the settings a job run in this process applied to the shared session."""
    yield
    from pyspark.sql import SparkSession

    session = SparkSession.getActiveSession()
    if session is not None:
        session.conf.set("spark.sql.shuffle.partitions", "2")


# The longest files, longest first: with `make test`'s two workers each file runs whole on one
# worker (`--dist loadfile`), in collection order (`--no-loadscope-reorder`), so a long file
# collected last would run alone at the end while the other worker sits idle.
LONGEST_FIRST = ("test_thirty_nights.py", "test_publication.py", "test_end_to_end.py", "test_reruns.py",
                 "test_audiences.py", "test_downstream.py", "test_night_guards.py", "test_registry.py",
                 "test_night_to_night.py")


def pytest_collection_modifyitems(items):
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: the rest keep their order
