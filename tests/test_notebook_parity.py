"""The `notebook` profile reproduces the original analysis on the bundled file."""

import json

import pytest

from jobs import train as train_job
from segmentation.model import store

RUN_DATE = "2026-01-20"


def _metrics(models_dir):
    version = store.latest(str(models_dir))
    return json.loads((models_dir / version / "metrics.json").read_text())


def _silhouettes(metrics):
    return {c["algorithm"]: round(c["silhouette"], 4) for c in metrics["candidates"]}


@pytest.fixture(scope="module")
def notebook_lake(tmp_path_factory):
    lake = tmp_path_factory.mktemp("notebook")
    return lake, ["--profile", "notebook", "--run-date", RUN_DATE,
                  "--set", f"tables.root={lake}", "--set", f"tables.models_dir={lake / 'models'}"]


def test_notebook_profile_reproduces_the_published_figures(spark, notebook_lake):
    lake, args = notebook_lake
    assert train_job.main(args) == 0
    metrics = _metrics(lake / "models")
    assert _silhouettes(metrics) == {"kmeans": 0.3828, "dbscan": 0.4845, "gmm": 0.3464}
    assert metrics["winner"]["algorithm"] == "dbscan"
    assert metrics["winner"]["n_segments"] == 13
    assert metrics["forest"]["accuracy"] == 1.0
    assert metrics["forest"]["test_rows"] == 2623
    medians = {r.column: r.value for r in spark.read.format("delta").load(str(lake / "imputation")).collect()}
    assert medians["MINIMUM_PAYMENTS"] == pytest.approx(312.343947, abs=1e-6)


def test_notebook_figures_follow_the_recipe_not_a_table(spark, notebook_lake):
    lake, args = notebook_lake
    changed = args + ["--set", "train.clustering.kmeans.k=5", "--set", "train.clustering.dbscan.eps=2.5",
                      "--set", "train.transform.offset=0.001"]
    assert train_job.main(changed) == 0
    silhouettes = _silhouettes(_metrics(lake / "models"))
    assert silhouettes["kmeans"] != 0.3828
    assert silhouettes["dbscan"] != 0.4845
    assert silhouettes["gmm"] != 0.3464  # the transform changed under it
