"""One answer per customer per night: the nightly job fills gaps with the imputation values of the
model that scores the night, the values real-time serving fills them with, so a customer with a
missing MINIMUM_PAYMENTS gets the same segment from both on every night, not only the training one.
The night's own medians are still recorded, beside the values applied."""

import dataclasses
import datetime as dt
import logging

import mlflow
import numpy as np
import pandas as pd
import pytest
from conftest import PROJECT, TEST_SESSION
from pyspark.sql import functions as F
from test_night_to_night import HEADER, LINES, SMALL_TRAIN, _csv, _last_run, _table

from benchmarks.serving import registry_env
from jobs import features as features_job
from jobs import nightly as nightly_job
from jobs import score as score_job
from jobs import train as train_job
from segmentation.core.columns import ID_COLUMN, RAW_NUMERIC_COLUMNS
from segmentation.core.config import load_config
from segmentation.features.stage import IMPUTATION_SCHEMA, applied_imputation, fill_plan
from segmentation.model import registry
from segmentation.serving import realtime

D1, D2, D3 = "2026-09-01", "2026-09-02", "2026-09-03"
NIGHT = LINES[:300]
GAPPED = "MINIMUM_PAYMENTS"
GAP_EVERY = 5  # every fifth customer has no MINIMUM_PAYMENTS, both nights (and the file's own gaps)
# Night 2's MINIMUM_PAYMENTS, where known: a quarter of night 1's (the guard takes a ratio up to 5).
# Filled with that night's own median, a customer with a gap gets another segment than real time gives.
SHIFT = 0.25
# Every train of these small nights makes a champion: the forest's gate is not what is tested here.
TRAIN = [*SMALL_TRAIN, "--set", "train.forest.min_macro_f1=0.5"]


def _night(shift: float) -> list[str]:
    """NIGHT with a gap in MINIMUM_PAYMENTS for every GAP_EVERY-th customer, the others' times `shift`."""
    j = HEADER.split(",").index(GAPPED)
    out = []
    for i, line in enumerate(NIGHT):
        values = line.split(",")
        values[j] = "" if i % GAP_EVERY == 0 else repr(float(values[j]) * shift) if values[j] else ""
        out.append(",".join(values))
    return out


def _gap_ids() -> list[str]:
    """The customers with no MINIMUM_PAYMENTS: every GAP_EVERY-th, and those the bundled file leaves out."""
    j = HEADER.split(",").index(GAPPED)
    return [line.split(",")[0] for line in _night(1.0) if not line.split(",")[j]]


def _raw(path) -> pd.DataFrame:
    """The night's file as a request: gaps as pd.NA, doubles parsed exactly."""
    return pd.read_csv(path, dtype_backend="numpy_nullable", float_precision="round_trip")


def _cfg(root):
    return load_config(PROJECT / "conf", ["local"], [f"tables.root={root}", f"tables.models_dir={root / 'models'}"])


def _imputation(spark, root, run_date) -> dict[str, dict]:
    rows = _table(spark, root, "imputation").where(F.col("run_date") == run_date).collect()
    return {r["column"]: r.asDict() for r in rows}


def _segments(spark, root, run_date) -> pd.DataFrame:
    night = _table(spark, root, "segments").where(F.col("run_date") == run_date)
    return night.select(ID_COLUMN, "segment_id", "segment_confidence", "model_version").toPandas().set_index(ID_COLUMN)


def _realtime(cfg, bundle, raw: pd.DataFrame) -> pd.DataFrame:
    answer = realtime.assign(bundle, raw, cfg.contract, list(cfg.imputation.columns), cfg.features.ratio_epsilon)
    return answer.set_index(ID_COLUMN)


def _champion_pyfunc(root):
    """The served model: the registry's champion, loaded as MLflow's pyfunc."""
    uri = registry_env(root)["MLFLOW_REGISTRY_URI"]
    before = mlflow.get_registry_uri(), mlflow.get_tracking_uri()
    mlflow.set_registry_uri(uri)
    mlflow.set_tracking_uri(uri)
    try:
        return mlflow.pyfunc.load_model("models:/segmentation@champion")
    finally:
        mlflow.set_registry_uri(before[0])
        mlflow.set_tracking_uri(before[1])


@pytest.fixture(scope="module")
def nights(spark, tmp_path_factory):
    """A lake with night 1 (trains version 1) and night 2, whose MINIMUM_PAYMENTS median is a quarter of night 1's."""
    root = tmp_path_factory.mktemp("imputation_nights")
    first, second = _csv(root / "night1.csv", _night(1.0)), _csv(root / "night2.csv", _night(SHIFT))
    lake = ["--set", f"tables.root={root}", "--set", f"tables.models_dir={root / 'models'}", *TEST_SESSION, *TRAIN]
    assert nightly_job.main(["--run-date", D1, "--input", str(first), *lake]) == 0
    assert nightly_job.main(["--run-date", D2, "--input", str(second), *lake]) == 0
    cfg = _cfg(root)
    return root, lake, cfg, registry.load(cfg, "1").bundle, second


def test_a_later_night_records_its_own_median_and_fills_with_the_models(spark, nights):
    root, _, _, model, _ = nights
    one, two = _imputation(spark, root, D1)[GAPPED], _imputation(spark, root, D2)[GAPPED]
    # The training night: filled with its own median, which the model keeps.
    assert one["applied_from"] is None and one["applied_value"] == one["value"] == model.imputation[GAPPED]
    assert one["rows_imputed"] == two["rows_imputed"] == len(_gap_ids())
    # Night 2: its own median recorded in `value`, the model's applied.
    assert two["value"] == pytest.approx(SHIFT * one["value"])
    assert two["applied_value"] == model.imputation[GAPPED] and two["applied_from"] == model.version
    filled = (_table(spark, root, "features").where((F.col("run_date") == D2) & F.col(ID_COLUMN).isin(_gap_ids()))
              .select(GAPPED).distinct().collect())
    assert [r[0] for r in filled] == [model.imputation[GAPPED]]


def test_batch_and_real_time_give_every_customer_one_answer_on_a_later_night(spark, nights):
    root, _, cfg, model, second = nights
    raw = _raw(second)
    batch = _segments(spark, root, D2)
    assert set(batch.model_version) == {model.version}
    ours = _realtime(cfg, model, raw)
    joined = ours.join(batch, rsuffix="_batch", how="inner")
    assert len(joined) == len(batch) == len(raw)
    assert (joined.segment_id == joined.segment_id_batch).all()
    np.testing.assert_array_equal(joined.segment_confidence, joined.segment_confidence_batch)
    # The served pyfunc (a NaN is a gap there), on the same raw rows.
    served = pd.read_csv(second, float_precision="round_trip").astype({c: "float64" for c in RAW_NUMERIC_COLUMNS})
    answers = _champion_pyfunc(root).predict(served).set_index(ID_COLUMN)
    assert (answers.segment_id.reindex(batch.index) == batch.segment_id).all()
    # Filled with night 2's own median, as the batch did before, some imputed customers get another segment.
    night_median = _imputation(spark, root, D2)[GAPPED]["value"]
    other = _realtime(cfg, dataclasses.replace(model, imputation={**model.imputation, GAPPED: night_median}), raw)
    gaps = _gap_ids()
    assert (other.segment_id[gaps] != batch.segment_id[gaps]).any(), "the test does not tell the two fills apart"


def test_a_forced_retrain_fills_with_the_nights_medians_and_a_train_keeps_the_values_applied(spark, nights, caplog):
    root, lake, cfg, model, second = nights
    # --retrain: the night is filled with its own medians; the new model fits, and records, those.
    assert nightly_job.main(["--run-date", D3, "--input", str(second), "--retrain", *lake]) == 0
    three = _imputation(spark, root, D3)[GAPPED]
    assert three["applied_from"] is None and three["applied_value"] == three["value"] != model.imputation[GAPPED]
    retrained = registry.load(cfg).bundle
    assert retrained.version != model.version and retrained.imputation[GAPPED] == three["value"]
    batch = _segments(spark, root, D3)
    assert set(batch.model_version) == {retrained.version}
    assert (_realtime(cfg, retrained, _raw(second)).segment_id.reindex(batch.index) == batch.segment_id).all()
    # A train on a night already filled with a model's values (as after retrain-on-drift) records those.
    assert train_job.main(["--run-date", D2, *lake]) == 0
    latest = registry.load(cfg).bundle
    assert latest.version not in (model.version, retrained.version)
    assert latest.imputation[GAPPED] == model.imputation[GAPPED]
    assert applied_imputation(spark, cfg, dt.date.fromisoformat(D2))[0] == model.imputation
    # Night 3, filled with its own medians, scored again by that model: real time may differ, and the log says so.
    caplog.set_level(logging.WARNING)
    assert score_job.main(["--run-date", D3, *lake]) == 0
    warned = [m for m in (r.getMessage() for r in caplog.records if r.levelname == "WARNING") if "real-time answers" in m]
    assert len(warned) == 1 and f"the features of {D3} filled gaps with {GAPPED}=" in warned[0]
    assert latest.version in warned[0]


def test_a_lake_with_no_model_fills_with_the_nights_median_and_keeps_an_older_table(spark, tmp_path, lake):
    root = tmp_path / "lake"
    # An imputation table written before `applied_value`: its nights were filled with `value`.
    old = [(dt.date(2026, 1, 1), GAPPED, 250.0, "approx", 3)]
    old_schema = [f.name for f in IMPUTATION_SCHEMA.fields if not f.name.startswith("applied_")]
    spark.createDataFrame(old, old_schema).write.format("delta").partitionBy("run_date").save(str(root / "imputation"))
    source = _csv(tmp_path / "night.csv", _night(1.0))
    assert features_job.main(["--run-date", D1, "--input", str(source), *lake]) == 0
    assert _last_run(spark, root).status == "SUCCEEDED"
    night = _imputation(spark, root, D1)[GAPPED]
    assert night["applied_from"] is None and night["applied_value"] == night["value"]
    filled = (_table(spark, root, "features").where(F.col(ID_COLUMN).isin(_gap_ids())).select(GAPPED).distinct()
              .collect())
    assert [r[0] for r in filled] == [night["value"]]
    cfg = _cfg(root)
    assert applied_imputation(spark, cfg, dt.date(2026, 1, 1)) == ({GAPPED: 250.0}, {GAPPED: 3})
    assert _imputation(spark, root, "2026-01-01")[GAPPED]["applied_value"] is None


def test_the_fill_plan_takes_the_models_values_and_the_nights_median_for_what_it_lacks():
    medians = {"MINIMUM_PAYMENTS": 300.0, "CREDIT_LIMIT": 4500.0}
    assert fill_plan(medians, None, None) == (medians, {"MINIMUM_PAYMENTS": None, "CREDIT_LIMIT": None})
    assert fill_plan(medians, {"MINIMUM_PAYMENTS": 100.0, "TENURE": 12.0}, "v1") == (
        {"MINIMUM_PAYMENTS": 100.0, "CREDIT_LIMIT": 4500.0}, {"MINIMUM_PAYMENTS": "v1", "CREDIT_LIMIT": None})
