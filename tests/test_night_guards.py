"""The night's guards, through the real jobs: non-finite values stopped at the door and at
scoring, the model fixed at the start of the night, the night's tables put back when the
accounting does not add up, and stored instants that do not depend on the driver's zone."""

import datetime as dt
import os
import shutil
import subprocess
import sys
import time

import pytest
from conftest import BUNDLED_CSV, PROJECT, TEST_SESSION
from pyspark.sql import functions as F

from jobs import features as features_job
from jobs import nightly as nightly_job
from jobs import score as score_job
from jobs import train as train_job
from segmentation import nightly
from segmentation.features import stage as features_stage
from segmentation.io import tables
from segmentation.model import store
from segmentation.score import stage as score_stage

RUN_DATE = "2026-07-01"
SMALL_TRAIN = ["--set", "train.clustering.algorithms=[kmeans]", "--set", "train.clustering.kmeans.k=[4]",
               "--set", "train.clustering.stability.resamples=0"]
HEADER, *LINES = BUNDLED_CSV.read_text().splitlines()
# A session of its own, sized like the tests' one (Delta's 50 snapshot partitions cost ~15 s on 2 cores).
SMALL_SESSION = ["--set", "spark.master=local[2]", "--set",
                 'spark.extra={"spark.databricks.delta.snapshotPartitions": "2", "spark.default.parallelism": "2"}']


@pytest.fixture(scope="module")
def trained(tmp_path_factory, spark):
    """One model for the module (trained on the bundled data, features for RUN_DATE included)."""
    lake_dir = tmp_path_factory.mktemp("guards")
    args = ["--run-date", RUN_DATE, "--set", f"tables.root={lake_dir}", "--set", f"tables.models_dir={lake_dir / 'models'}",
            *TEST_SESSION, *SMALL_TRAIN]
    assert train_job.main(args) == 0
    return lake_dir, store.latest(str(lake_dir / "models"))


def _lake(tmp_path, models):
    return ["--set", f"tables.root={tmp_path / 'lake'}", "--set", f"tables.models_dir={models}", *TEST_SESSION]


def _table(spark, lake_dir, name):
    return spark.read.format("delta").load(str(lake_dir / name))


def _csv(path, lines):
    path.write_text("\n".join([HEADER, *lines]) + "\n")
    return path


def _changed(line, **values):
    fields = dict(zip(HEADER.split(","), line.split(",")))
    fields.update({k: str(v) for k, v in values.items()})
    return ",".join(fields.values())


def _last_run(spark, lake_dir):
    return _table(spark, lake_dir, "runs").orderBy(F.col("started_at").desc()).first()


def test_non_finite_values_in_the_bundled_file_are_quarantined_and_the_night_goes_on(spark, trained, tmp_path):
    # The review's cases: an Infinity in PAYMENTS ended the night with an executor's traceback,
    # a NaN in BALANCE was scored without a word, and 1e39 overflows the float32 matrix.
    changed = {1: {"PAYMENTS": "Infinity"}, 2: {"BALANCE": "NaN"}, 3: {"CREDIT_LIMIT": "1e39"}}
    lines = [_changed(line, **changed[i]) if i in changed else line for i, line in enumerate(LINES, start=1)]
    source = _csv(tmp_path / "CC_GENERAL.csv", lines)
    lake_dir, _ = trained
    assert nightly_job.main(["--run-date", RUN_DATE, "--input", str(source), *_lake(tmp_path, lake_dir / "models")]) == 0

    ids = {i: LINES[i - 1].split(",")[0] for i in changed}
    quarantine = {r.CUST_ID: r.reasons for r in _table(spark, tmp_path / "lake", "quarantine").collect()}
    assert quarantine == {ids[1]: ["not_finite:PAYMENTS"], ids[2]: ["not_finite:BALANCE"],
                          ids[3]: ["out_of_float32_range:CREDIT_LIMIT"]}
    segments = _table(spark, tmp_path / "lake", "segments")
    assert segments.count() == len(LINES) - 3
    assert segments.where(F.col("CUST_ID").isin(list(ids.values()))).count() == 0
    run = _last_run(spark, tmp_path / "lake")
    assert (run.status, run.rows_read, run.rows_written, run.rows_quarantined) == ("SUCCEEDED", len(LINES), len(LINES) - 3, 3)


def test_scoring_refuses_non_finite_features_with_a_named_error(spark, trained):
    # A features partition written by something other than the features job (an older version,
    # a backfill) with a NaN: scoring stops by name instead of guessing a segment.
    lake_dir, _ = trained
    ref = tables.TableRef(path=str(lake_dir / "features"))
    night = dt.date(2026, 7, 2)
    features = tables.read_run(spark, ref, dt.date.fromisoformat(RUN_DATE)).limit(50).withColumn("run_date", F.lit(night))
    first = features.orderBy("CUST_ID").first().CUST_ID
    broken = features.withColumn("BALANCE", F.when(F.col("CUST_ID") == first, F.lit(float("nan"))).otherwise(F.col("BALANCE")))
    tables.replace_run(broken, ref, night)
    args = ["--run-date", night.isoformat(), "--set", f"tables.root={lake_dir}",
            "--set", f"tables.models_dir={lake_dir / 'models'}", *TEST_SESSION]
    assert score_job.main(args) == 3
    run = _last_run(spark, lake_dir)
    assert run.status == "FAILED" and run.rows_read == 50
    assert run.error.startswith(f"NonFiniteFeatureError: feature BALANCE of customer {first} is not finite (nan)")
    assert _table(spark, lake_dir, "segments").where(F.col("run_date") == F.lit(night)).count() == 0


def test_nightly_scores_with_the_model_it_started_with(spark, trained, tmp_path, monkeypatch):
    lake_dir, version = trained
    models = tmp_path / "models"
    shutil.copytree(lake_dir / "models", models)
    real_features = nightly.run_features

    def features_then_a_concurrent_train(*args, **kwargs):
        result = real_features(*args, **kwargs)
        intruder = store.load(str(models))
        intruder.version = "20990101T000000Z-intrud"
        store.save(intruder, str(models))  # another run's train moves LATEST meanwhile
        return result

    monkeypatch.setattr(nightly, "run_features", features_then_a_concurrent_train)
    source = _csv(tmp_path / "few.csv", LINES[:100])
    assert nightly_job.main(["--run-date", RUN_DATE, "--input", str(source), *_lake(tmp_path, models)]) == 0
    assert store.latest(str(models)) == "20990101T000000Z-intrud"
    used = {r.model_version for r in _table(spark, tmp_path / "lake", "segments").select("model_version").distinct().collect()}
    assert used == {version}
    assert _last_run(spark, tmp_path / "lake").model_version == version


def test_a_failed_accounting_check_puts_the_night_back(spark, trained, tmp_path, monkeypatch):
    lake_dir, _ = trained
    lake = _lake(tmp_path, lake_dir / "models")
    night = ["--run-date", RUN_DATE, *lake, "--set", "contract.max_quarantine_share=0.1"]
    assert nightly_job.main([*night, "--input", str(_csv(tmp_path / "good.csv", LINES[:40]))]) == 0

    def snapshot():
        return {name: sorted(tuple(r) for r in _table(spark, tmp_path / "lake", name).drop("raw").collect())
                for name in ("features", "quarantine", "imputation", "segments")}

    before = snapshot()
    # A scoring bug that loses a customer: the night's other tables were already replaced.
    real_score = score_stage._score
    monkeypatch.setattr(score_stage, "_score", lambda f, *a: real_score(f, *a).where(F.col("CUST_ID") != LINES[0][:6]))
    other = _csv(tmp_path / "other.csv", [*LINES[:30], _changed(LINES[99], BALANCE=-1)])
    assert nightly_job.main([*night, "--input", str(other)]) == 6
    assert snapshot() == before  # features, quarantine, imputation and segments as they were
    run = _last_run(spark, tmp_path / "lake")
    assert run.status == "FAILED" and run.error.startswith("AccountingError: score: 30 customers in features but 29")
    assert (run.rows_read, run.rows_quarantined) == (31, 1)

    # The features stage's own check: a transform that drops a row.
    monkeypatch.undo()
    real_add = features_stage.add_features
    monkeypatch.setattr(features_stage, "add_features", lambda df, eps: real_add(df, eps).where(F.col("CUST_ID") != LINES[0][:6]))
    assert features_job.main([*night, "--input", str(other)]) == 6
    assert snapshot() == before


def test_stored_instants_are_utc_whatever_the_drivers_zone(spark, trained, tmp_path):
    lake_dir, _ = trained
    zone = "Pacific/Kiritimati" if dt.datetime.now(dt.timezone.utc).hour >= 10 else "Etc/GMT+12"  # UTC+14 / UTC-12
    source = _csv(tmp_path / "few.csv", [*LINES[:20], _changed(LINES[20], BALANCE=-1)])
    env = dict(os.environ, PYSPARK_PYTHON=sys.executable, TZ=zone)
    env.pop("PYSPARK_GATEWAY_PORT", None)
    t0 = time.time()
    utc_dates = {dt.datetime.now(dt.timezone.utc).date()}
    result = subprocess.run(
        [sys.executable, "-m", "jobs.nightly", "--input", str(source), *_lake(tmp_path, lake_dir / "models"),
         "--set", "contract.max_quarantine_share=0.1", *SMALL_SESSION],  # no --run-date: the default is the UTC date
        cwd=PROJECT, env=env, capture_output=True, text=True, timeout=600,
    )
    t1 = time.time()
    utc_dates.add(dt.datetime.now(dt.timezone.utc).date())
    assert result.returncode == 0, result.stderr[-3000:]

    def instants(name, column):
        return [r[0] for r in _table(spark, tmp_path / "lake", name).select(F.unix_timestamp(column)).collect()]

    stamps = {"runs.started_at": instants("runs", "started_at"), "runs.ended_at": instants("runs", "ended_at"),
              "quarantine.quarantined_at": instants("quarantine", "quarantined_at"),
              "segments.scored_at": instants("segments", "scored_at")}
    for name, values in stamps.items():
        assert values and all(int(t0) - 1 <= v <= t1 + 1 for v in values), (name, values, t0, t1, zone)
    (run,) = _table(spark, tmp_path / "lake", "runs").collect()
    assert run.run_date in utc_dates and run.status == "SUCCEEDED"
