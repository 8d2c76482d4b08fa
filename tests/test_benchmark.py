"""The benchmark command runs as docs/benchmarks.md says and writes every figure that page reports."""

import json
import subprocess
import sys

import pytest
from conftest import PROJECT

pytestmark = pytest.mark.slow


def test_nightly_benchmark_writes_its_figures(tmp_path):
    figures_path = tmp_path / "figures.json"
    small_grid = ["--set", "train.clustering.kmeans.k=[3, 4]", "--set", "train.clustering.gmm.k=[3, 4]",
                  "--set", "train.clustering.dbscan.min_samples=[10]", "--set", "train.sample.max_rows=3000"]
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.nightly", "--rows", "20000", "--sizing-rows", "20000",
         "--workdir", str(tmp_path / "bench"), "--json", str(figures_path), *small_grid],
        cwd=PROJECT, capture_output=True, text=True, timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    f = json.loads(figures_path.read_text())
    assert f["rows"] == 20000
    assert set(f["stages"]) >= {"generate", "features", "train", "score"}
    for stage in f["stages"].values():
        assert stage["seconds"] > 0
        assert stage["rows_per_s"] == pytest.approx(20000 / stage["seconds"], rel=0.01)
    assert f["driver_peak_mib"] > 0 and f["predict_proba_rows_per_s"] > 0
    assert f["score_vs_predict_proba"] == pytest.approx(
        f["stages"]["score"]["rows_per_s"] / f["predict_proba_rows_per_s"], rel=0.01, abs=1e-3)
    assert f["default_vs_notebook_forest"] == pytest.approx(
        f["default_forest_rows_per_s"] / f["notebook_forest_rows_per_s"], rel=0.01, abs=1e-3)
    assert 0 < f["default_forest_macro_f1"] <= 1 and 0 < f["notebook_forest_macro_f1"] <= 1
    assert 0 <= f["default_vs_notebook_agreement"] <= 1
    # The side-by-side figures: each a ratio of the same rows' times, each variant's table whole.
    rates = f["compared_rows_per_s"]
    assert set(rates) == {"score_ours", "score_mlflow_spark_udf", "score_copy_floor", "features_copy_floor"}
    assert all(v > 0 for v in rates.values())
    assert f["score_vs_mlflow_spark_udf"] == pytest.approx(
        rates["score_ours"] / rates["score_mlflow_spark_udf"], rel=0.01, abs=1e-3)
    assert f["score_vs_copy_floor"] == pytest.approx(rates["score_ours"] / rates["score_copy_floor"], rel=0.01, abs=1e-3)
    assert f["features_vs_copy_floor"] == pytest.approx(
        f["stages"]["features"]["rows_per_s"] / rates["features_copy_floor"], rel=0.01, abs=1e-3)
    # Nothing beats doing nothing by much: each floor is at least as fast as its stage, within noise.
    assert 0 < f["score_vs_copy_floor"] < 1.5 and 0 < f["features_vs_copy_floor"] < 1.5
    assert 0 < f["score_vs_mlflow_spark_udf"] < 20
    for stage in ("features", "score", "features_copy_floor", "score_copy_floor"):
        assert f["bytes"][stage]["read"] > 0 and f["bytes"][stage]["written"] > 0
    assert "targets:" in done.stdout and "score vs mlflow.pyfunc.spark_udf >= 2.0" in done.stdout
