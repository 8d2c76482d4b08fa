"""The real jobs on the bundled CC_GENERAL.csv, into a tmp lakehouse."""

import json
import os
import subprocess

import pandas as pd
import pytest
from pyspark.sql import functions as F

from conftest import BUNDLED_CSV, PROJECT
from jobs import features as features_job
from jobs import nightly as nightly_job
from jobs import score as score_job
from jobs import train as train_job
from segmentation import bundle as model_store

RUN_DATE = "2026-01-15"


def _segments(spark, lake_dir):
    return spark.read.format("delta").load(str(lake_dir / "segments"))


def test_jobs_write_one_segment_per_customer_and_rerun_replaces(spark, tmp_path, lake):
    args = ["--run-date", RUN_DATE, *lake]
    assert features_job.main(args) == 0
    assert train_job.main(args) == 0
    assert score_job.main(args) == 0

    segments = _segments(spark, tmp_path / "lake")
    ids = pd.read_csv(BUNDLED_CSV, usecols=["CUST_ID"]).CUST_ID
    assert segments.count() == len(ids) == 8950
    assert segments.select("CUST_ID").distinct().count() == 8950
    assert set(r.CUST_ID for r in segments.select("CUST_ID").collect()) == set(ids)

    bundle = model_store.load(str(tmp_path / "lake" / "models"))
    found = {r.segment_id for r in segments.select("segment_id").distinct().collect()}
    assert found <= set(bundle.classes) and len(found) >= 2
    stats = segments.agg(F.min("segment_confidence").alias("lo"), F.max("segment_confidence").alias("hi")).first()
    assert 0.0 <= stats.lo <= stats.hi <= 1.0
    assert segments.where(F.col("segment_name").isNull() | (F.length("segment_name") == 0)).count() == 0
    assert {r.model_version for r in segments.select("model_version").distinct().collect()} == {bundle.version}
    assert {str(r.run_date) for r in segments.select("run_date").distinct().collect()} == {RUN_DATE}

    medians = spark.read.format("delta").load(str(tmp_path / "lake" / "imputation"))
    assert {r.column for r in medians.collect()} == {"MINIMUM_PAYMENTS", "CREDIT_LIMIT"}
    metrics = json.loads((tmp_path / "lake" / "models" / bundle.version / "metrics.json").read_text())
    assert {c["algorithm"] for c in metrics["candidates"]} == {"kmeans", "dbscan", "gmm"}
    # The default profile's guardrails: 3-8 segments, each at least 2% of the customers.
    winner = metrics["winner"]
    assert 3 <= winner["n_segments"] <= 8 and winner["smallest_share"] >= 0.02 and winner["noise_share"] <= 0.10
    shares = segments.groupBy("segment_id").count().collect()
    assert 3 <= len(shares) <= 8 and min(r["count"] for r in shares) >= 0.02 * 8950
    assert metrics["forest"]["macro_f1"] >= 0.90
    candidates = spark.read.format("delta").load(str(tmp_path / "lake" / "clustering_candidates"))
    assert candidates.where(F.col("model_version") == bundle.version).count() == len(metrics["candidates"]) >= 20
    assert candidates.where("chosen").count() == 1
    assert candidates.where("NOT passed AND reason = ''").count() == 0

    # The whole night again for the same date: the same rows, not twice as many.
    assert nightly_job.main(args) == 0
    again = _segments(spark, tmp_path / "lake")
    assert again.count() == 8950
    assert again.select("CUST_ID").distinct().count() == 8950
    features = spark.read.format("delta").load(str(tmp_path / "lake" / "features"))
    assert features.count() == 8950


def test_score_without_features_or_model_fails_with_a_named_error(spark, tmp_path, lake, caplog):
    assert score_job.main(["--run-date", RUN_DATE, *lake]) == 4  # ModelError: no model yet
    assert not (tmp_path / "lake" / "segments").exists()
    assert features_job.main(["--run-date", RUN_DATE, "--input", str(tmp_path / "absent.csv"), *lake]) == 3
    assert features_job.main(["--run-date", "2026-02-30", *lake]) == 2
    assert features_job.main(["--set", "train.forest.n_trees=5", *lake]) == 2


SMALL_GRID = ["--set", "train.clustering.algorithms=[kmeans]", "--set", "train.clustering.kmeans.k=[4]",
              "--set", "train.clustering.stability.resamples=0"]


def test_a_poor_surrogate_leaves_no_usable_model(spark, tmp_path, lake):
    args = ["--run-date", RUN_DATE, *lake, *SMALL_GRID, "--set", "train.forest.min_macro_f1=1.01"]
    assert train_job.main(args) == 5  # TrainingError
    models = tmp_path / "lake" / "models"
    assert model_store.latest(str(models)) is None  # never became LATEST
    (kept,) = [p for p in models.iterdir() if p.is_dir()]
    assert json.loads((kept / "manifest.json").read_text())["usable"] is False
    with pytest.raises(Exception, match="not usable"):
        model_store.load(str(models), kept.name)
    candidates = spark.read.format("delta").load(str(tmp_path / "lake" / "clustering_candidates"))
    assert [r.model_usable for r in candidates.collect()] == [False]


def test_no_passing_candidate_fails_the_run_and_records_why(spark, tmp_path, lake):
    args = ["--run-date", RUN_DATE, *lake, *SMALL_GRID, "--set", "train.clustering.guardrails.max_segments=3"]
    assert train_job.main(args) == 5
    assert model_store.latest(str(tmp_path / "lake" / "models")) is None
    (row,) = spark.read.format("delta").load(str(tmp_path / "lake" / "clustering_candidates")).collect()
    assert not row.passed and "4 segments outside [3, 3]" in row.reason


def test_spark_submit_script_runs_the_nightly_job(tmp_path):
    env = dict(os.environ)
    env.pop("PYSPARK_GATEWAY_PORT", None)
    lake_dir = tmp_path / "lake"
    result = subprocess.run(
        [str(PROJECT / "spark-submit.sh"), "nightly", "--run-date", RUN_DATE,
         "--set", f"tables.root={lake_dir}", "--set", f"tables.models_dir={lake_dir / 'models'}",
         *SMALL_GRID, "--master", "local[2]", "--conf", "spark.sql.shuffle.partitions=2"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
    )
    output = result.stdout + result.stderr  # spark-submit's Python runner merges the streams
    assert result.returncode == 0, output[-3000:]
    assert "nightly OK" in output
    assert "rows_read=8950 rows_written=8950 rows_quarantined=0" in output
    assert (lake_dir / "segments" / "_delta_log").is_dir()
