"""Segment selection through the real train job on the bundled customers: a retrain keeps the
champion's structure unless the choice clears the margin, and (slow) five samples choose alike."""

import json
from collections import Counter
from pathlib import Path

import pytest
from mlflow import MlflowClient
from pyspark.sql import functions as F

from jobs import train as train_job

RUN_DATE = "2026-03-01"
# K-Means only and no report: the structure question, at a fraction of the default train's time.
QUICK = ["--set", "train.clustering.algorithms=[kmeans]", "--set", "train.clustering.stability.resamples=0",
         "--set", "train.explain.report=false", "--set", "train.clustering.selection.resamples=10"]


def _client(lake_dir: Path) -> MlflowClient:
    uri = f"sqlite:///{lake_dir / 'mlflow' / 'mlflow.db'}"
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def _version(client, number: int):
    return client.get_model_version("segmentation", str(number))


def _segments(lake_dir: Path, version) -> int:
    metrics = json.loads((lake_dir / "models" / version.tags["bundle_version"] / "metrics.json").read_text())
    return metrics["winner"]["n_segments"]


def test_a_retrain_keeps_the_champions_k_unless_the_choice_clears_the_margin(spark, tmp_path, lake):
    lake_dir = tmp_path / "lake"
    args = ["--run-date", RUN_DATE, *lake, *QUICK]
    client = _client(lake_dir)

    # The champion: five segments, the only candidate offered.
    assert train_job.main([*args, "--set", "train.clustering.kmeans.k=[5]"]) == 0
    v1 = _version(client, 1)
    assert _segments(lake_dir, v1) == 5 and v1.tags["selection.decision"] == "first"

    # Four segments score better, but not by the margin: the retrain keeps five.
    offered = ["--set", "train.clustering.kmeans.k=[4, 5]"]
    assert train_job.main([*args, *offered, "--set", "train.clustering.selection.reshape_margin=0.05"]) == 0
    v2 = _version(client, 2)
    assert _segments(lake_dir, v2) == 5
    assert v2.tags["selection.decision"] == "kept"
    assert v2.tags["selection.champion_structure"] == "kmeans with 5 segments"
    assert v2.tags["selection.best"] == "kmeans(n_clusters=4, n_init=4)"
    gain = float(v2.tags["selection.gain"])
    assert 0.005 < gain < 0.05, gain  # measured: about 0.011 of mean silhouette
    chosen = (spark.read.format("delta").load(str(lake_dir / "clustering_candidates"))
              .where((F.col("model_version") == v2.tags["bundle_version"]) & F.col("chosen")).collect())
    assert [r.n_segments for r in chosen] == [5]
    assert chosen[0].resample_wins is not None and chosen[0].resample_silhouette is not None

    # The same candidates with a margin the gain clears: the retrain reshapes to four.
    assert train_job.main([*args, *offered, "--set", "train.clustering.selection.reshape_margin=0.005"]) == 0
    v3 = _version(client, 3)
    assert _segments(lake_dir, v3) == 4 and v3.tags["selection.decision"] == "reshaped"
    assert float(v3.tags["selection.gain"]) >= 0.005
    # The choice and its figures are in the version's metrics too.
    metrics = json.loads((lake_dir / "models" / v3.tags["bundle_version"] / "metrics.json").read_text())
    assert metrics["selection"]["decision"] == "reshaped" and metrics["selection"]["resamples"] == 10



def test_reshape_flag_asks_for_the_best_choice():
    """`--reshape` on train and nightly is `train.clustering.selection.reshape=true` (its effect:
    test_selection.py)."""
    from jobs import common

    for job in ("train", "nightly"):
        p = common.parser(job)
        common.reshape(p)
        cfg, _ = common.load(p.parse_args(["--reshape", "--run-date", RUN_DATE]))
        assert cfg.train.clustering.selection.reshape is True
        cfg, _ = common.load(p.parse_args(["--run-date", RUN_DATE]))
        assert cfg.train.clustering.selection.reshape is False


@pytest.mark.slow
def test_five_samples_of_the_bundled_customers_choose_the_same_segmentation(spark, tmp_path):
    """Default settings, 8,000-row samples with seeds 1-5, each on a fresh lake: one algorithm and
    k at least four times (before the resampled selection: k=4, 7, 7, 4, 4)."""
    choices = []
    for seed in range(1, 6):
        lake_dir = tmp_path / f"lake{seed}"
        args = ["--run-date", RUN_DATE, "--set", f"tables.root={lake_dir}", "--set",
                f"tables.models_dir={lake_dir / 'models'}", "--set", "spark.shuffle_partitions=2",
                "--set", "train.sample.max_rows=8000", "--set", f"train.sample.seed={seed}"]
        assert train_job.main(args) == 0
        version = _version(_client(lake_dir), 1)
        metrics = json.loads((lake_dir / "models" / version.tags["bundle_version"] / "metrics.json").read_text())
        choices.append((metrics["winner"]["algorithm"], metrics["winner"]["n_segments"]))
    (_, count), = Counter(choices).most_common(1)
    assert count >= 4, choices
