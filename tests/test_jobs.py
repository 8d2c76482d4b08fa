"""What every job shares: where the config comes from, how arguments reach it, the session it
runs in and the default run date."""

import datetime as dt
import logging
import time

import pytest
from conftest import BUNDLED_CSV, PROJECT

from jobs import common
from jobs import features as features_job
from segmentation.core.config import load_config
from segmentation.core.errors import ConfigError

CONF = PROJECT / "conf"


def test_a_conf_dir_that_does_not_exist_is_an_error(tmp_path, lake, monkeypatch):
    # It used to fall back to the checkout's conf/ without a word.
    assert features_job.main([*lake, "--conf-dir", str(tmp_path / "no-such-conf")]) == 2
    assert not (tmp_path / "lake").exists()
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="has no base.yaml"):
        common.find_conf_dir(tmp_path / "empty")
    monkeypatch.setenv("SEGMENTATION_CONF_DIR", str(tmp_path / "gone"))
    with pytest.raises(ConfigError, match="SEGMENTATION_CONF_DIR.*does not exist"):
        common.find_conf_dir(None)
    assert common.find_conf_dir(CONF) == CONF


def test_an_input_path_with_a_hash_reaches_the_job_whole(spark, tmp_path, lake):
    # Passed through YAML, "/.../a #1.csv" was cut at " #" and the job read "/.../a" (not found).
    source = tmp_path / "a #1.csv"
    source.write_text("\n".join(BUNDLED_CSV.read_text().splitlines()[:31]) + "\n")
    assert features_job.main(["--run-date", "2026-05-01", "--input", str(source), *lake]) == 0
    assert spark.read.format("delta").load(str(tmp_path / "lake" / "features")).count() == 30


@pytest.fixture
def far_from_utc(monkeypatch):
    """A driver clock whose local date differs from the UTC date right now."""
    zone = "Pacific/Kiritimati" if dt.datetime.now(dt.timezone.utc).hour >= 10 else "Etc/GMT+12"  # UTC+14 / UTC-12
    monkeypatch.setenv("TZ", zone)
    time.tzset()
    yield zone
    monkeypatch.undo()
    time.tzset()


def test_the_default_run_date_is_todays_date_in_utc(far_from_utc):
    before = dt.datetime.now(dt.timezone.utc).date()
    assert dt.date.today() != before  # the zone does put the local date elsewhere
    _, run_date = common.load(common.parser("features").parse_args([]))
    assert run_date in {before, dt.datetime.now(dt.timezone.utc).date()}


def test_the_configs_spark_settings_are_applied_to_a_reused_session(spark, segmentation_log):
    cfg = load_config(CONF, ["cluster"], [
        "spark.shuffle_partitions=3", "spark.concurrent_output_writers=2",
        'spark.extra={"spark.sql.ansi.enabled": "false", "spark.sql.warehouse.dir": "/tmp/elsewhere"}',
    ])
    previous = {k: spark.conf.get(k) for k in ("spark.sql.shuffle.partitions", "spark.sql.session.timeZone",
                                               "spark.sql.ansi.enabled", "spark.sql.maxConcurrentOutputFileWriters")}
    try:
        spark.conf.set("spark.sql.session.timeZone", "America/New_York")
        assert common.spark_session(cfg) is spark  # the running session, not a new one
        assert spark.conf.get("spark.sql.shuffle.partitions") == "3"
        assert spark.conf.get("spark.sql.maxConcurrentOutputFileWriters") == "2"  # writes open files, never sort
        assert spark.conf.get("spark.sql.ansi.enabled") == "false"
        assert spark.conf.get("spark.sql.session.timeZone") == "UTC"
        # Tables the job creates get their retention from their first commit (docs/tables.md, maintenance).
        assert spark.conf.get("spark.databricks.delta.properties.defaults.logRetentionDuration") == "interval 30 days"
        assert spark.conf.get("spark.databricks.delta.properties.defaults.deletedFileRetentionDuration") == (
            "interval 168 hours")
        # A static setting cannot change in a running session: said, not silently dropped.
        assert spark.conf.get("spark.sql.warehouse.dir") != "/tmp/elsewhere"
        refused = [r.getMessage() for r in segmentation_log.records if r.levelno == logging.WARNING]
        assert any("spark.sql.warehouse.dir=/tmp/elsewhere not applied" in m for m in refused), refused
        assert not any("shuffle" in m or "ansi" in m or "Retention" in m for m in refused)
    finally:
        for key, value in previous.items():
            spark.conf.set(key, value)
        spark.sparkContext.setLogLevel("ERROR")
