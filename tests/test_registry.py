"""The model lifecycle on the embedded MLflow registry, through the real jobs."""

import json
from pathlib import Path

import pytest
from conftest import PROJECT
from mlflow import MlflowClient
from pyspark.sql import functions as F

from jobs import nightly as nightly_job
from jobs import promote as promote_job
from jobs import score as score_job
from jobs import train as train_job
from segmentation.core.config import load_config
from segmentation.core.errors import ModelError, TrainingError
from segmentation.model import registry, store

RUN_DATE = "2026-02-01"
SMALL_TRAIN = ["--set", "train.clustering.algorithms=[kmeans]", "--set", "train.clustering.kmeans.k=[4]",
               "--set", "train.clustering.stability.resamples=0", "--set", "train.explain.report=false"]


def _client(lake_dir: Path) -> MlflowClient:
    uri = f"sqlite:///{lake_dir / 'mlflow' / 'mlflow.db'}"
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def _champion(client) -> int:
    return int(client.get_model_version_by_alias("segmentation", "champion").version)


def _delta(spark, lake_dir, name):
    return spark.read.format("delta").load(str(lake_dir / name))


def _last_run(spark, lake_dir, job):
    return _delta(spark, lake_dir, "runs").where(F.col("job") == job).orderBy(F.col("started_at").desc()).first()


def test_champion_moves_only_on_passing_gates_and_rolls_back(spark, tmp_path, lake):
    lake_dir = tmp_path / "lake"
    args = ["--run-date", RUN_DATE, *lake, *SMALL_TRAIN]
    client = _client(lake_dir)

    # A fresh lakehouse: the night trains, registers version 1 and makes it champion.
    assert nightly_job.main(args) == 0
    assert _champion(client) == 1
    v1 = client.get_model_version("segmentation", "1")
    night = _last_run(spark, lake_dir, "nightly")
    assert night.registry_version == 1 and night.model_version == v1.tags["bundle_version"]
    scored = {r.model_version for r in _delta(spark, lake_dir, "segments").select("model_version").distinct().collect()}
    assert scored == {v1.tags["bundle_version"]}

    # The version's lineage, readable by any MLflow client.
    features_version = spark.sql(f"DESCRIBE HISTORY delta.`{lake_dir / 'features'}`").agg(F.max("version")).first()[0]
    assert v1.tags["run_date"] == RUN_DATE
    assert v1.tags["source_table"].endswith("CC_GENERAL.csv")
    assert int(v1.tags["features_delta_version"]) == features_version
    assert int(v1.tags["rows"]) == 8950 and int(v1.tags["sample_rows"]) == 8950
    assert v1.tags["code_version"].startswith("0.1.0")
    assert v1.tags["quality_gates"] == "passed"
    bundle_dir = lake_dir / "models" / v1.tags["bundle_version"]
    assert v1.tags["bundle_sha256"] == json.loads((bundle_dir / "manifest.json").read_text())["sha256"]

    # The run: the resolved config, every candidate's figures, the forest's held-out figures, artifacts.
    run = client.get_run(v1.run_id)
    assert run.data.params["train.forest.n_estimators"] == "40"
    assert run.data.params["registry.alias"] == "champion"
    metrics = json.loads((bundle_dir / "metrics.json").read_text())
    assert run.data.metrics["forest.macro_f1"] == pytest.approx(metrics["forest"]["macro_f1"])
    candidate = metrics["candidates"][0]
    key = registry._metric_key(f"candidate.{candidate['algorithm']}.{candidate['params']}") + ".silhouette"
    assert run.data.metrics[key] == pytest.approx(candidate["silhouette"])
    logged = {a.path for a in client.list_artifacts(v1.run_id, registry.BUNDLE_ARTIFACTS)}
    assert {"bundle/metrics.json", "bundle/manifest.json"} <= logged

    # A retrain that passes every gate moves the champion.
    assert train_job.main(args) == 0
    assert _champion(client) == 2

    # A retrain forced to fail is registered, tagged with why, and never champion.
    assert train_job.main([*args, "--set", "train.forest.min_macro_f1=1.01"]) == TrainingError.exit_code
    v3 = client.get_model_version("segmentation", "3")
    assert v3.tags["quality_gates"] == "failed" and "min_macro_f1=1.01" in v3.tags["quality_gate_failure"]
    assert _champion(client) == 2
    assert promote_job.main([*lake, "--version", "3"]) == ModelError.exit_code
    assert score_job.main([*lake, "--run-date", RUN_DATE, "--set", "score.model_version=3"]) == ModelError.exit_code
    assert _champion(client) == 2

    # Rollback: the previous champion returns and the next score uses it.
    assert promote_job.main([*lake, "--previous"]) == 0
    assert _champion(client) == 1
    assert _last_run(spark, lake_dir, "promote").registry_version == 1
    assert score_job.main(["--run-date", RUN_DATE, *lake]) == 0
    scored = _last_run(spark, lake_dir, "score")
    assert scored.registry_version == 1 and scored.model_version == v1.tags["bundle_version"]
    segments = _delta(spark, lake_dir, "segments").select("model_version").distinct().collect()
    assert [r.model_version for r in segments] == [v1.tags["bundle_version"]]

    # Nothing before version 1: a further rollback is refused by name; --version N moves forward again.
    assert promote_job.main([*lake, "--previous"]) == ModelError.exit_code
    assert promote_job.main([*lake, "--version", "2"]) == 0
    assert _champion(client) == 2
    # --set score.model_version=N scores that version whatever the champion.
    assert score_job.main(["--run-date", RUN_DATE, *lake, "--set", "score.model_version=1"]) == 0
    assert _last_run(spark, lake_dir, "score").registry_version == 1


def _cfg(tmp_path, *overrides):
    lake_dir = tmp_path / "lake"
    return load_config(PROJECT / "conf", ["local"], [f"tables.root={lake_dir}", f"tables.models_dir={lake_dir / 'models'}",
                                                     *overrides])


def test_a_registered_bundle_changed_after_registration_is_refused_before_unpickling(spark, tmp_path, lake):
    args = ["--run-date", RUN_DATE, *lake, *SMALL_TRAIN]
    assert nightly_job.main(args) == 0
    stored = list((tmp_path / "lake" / "mlflow" / "artifacts").rglob("model/artifacts/bundle.pkl"))
    assert len(stored) == 1
    payload = bytearray(stored[0].read_bytes())
    payload[len(payload) // 2] ^= 0xFF
    stored[0].write_bytes(bytes(payload))
    with pytest.raises(ModelError, match="sha256"):
        registry.load(_cfg(tmp_path))
    assert score_job.main(["--run-date", RUN_DATE, *lake]) == ModelError.exit_code


def test_a_lakehouse_from_before_the_registry_keeps_scoring_its_latest_bundle(spark, tmp_path, lake, caplog):
    args = ["--run-date", RUN_DATE, *lake, *SMALL_TRAIN]
    assert nightly_job.main([*args, "--set", "registry.enabled=false"]) == 0
    assert not (tmp_path / "lake" / "mlflow").exists()
    latest = store.latest(str(tmp_path / "lake" / "models"))
    assert registry.current(_cfg(tmp_path)) == latest
    assert score_job.main(["--run-date", RUN_DATE, *lake]) == 0
    assert "no registered model segmentation" in caplog.text
    # The next train registers version 1 and makes it champion; the old bundle keeps loading by name.
    assert train_job.main(args) == 0
    assert registry.current(_cfg(tmp_path)) == "1"
    assert registry.load(_cfg(tmp_path), latest).bundle.version == latest
