"""From night to night, through the real jobs: a night whose input differs from the last published
one past a guard threshold (half the customers, re-keyed ids, money in cents) is refused before
anything is written, unless accepted by hand; and a retrain on an accepted night is not promoted."""

import datetime as dt
import logging
from pathlib import Path

import pytest
from conftest import BUNDLED_CSV, TEST_SESSION
from mlflow import MlflowClient
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from jobs import features as features_job
from jobs import nightly as nightly_job
from segmentation.core.columns import MONEY_COLUMNS
from segmentation.core.config import GuardConfig
from segmentation.core.errors import NightGuardError
from segmentation.features import guard
from segmentation.model import registry

D1, D2, D3 = "2026-08-01", "2026-08-02", "2026-08-03"
SMALL_TRAIN = ["--set", "train.clustering.algorithms=[kmeans]", "--set", "train.clustering.kmeans.k=[4]",
               "--set", "train.clustering.stability.resamples=0", "--set", "train.explain.report=false"]
HEADER, *LINES = BUNDLED_CSV.read_text().splitlines()
NIGHT = LINES[:300]
EXIT = NightGuardError.exit_code


# ---------------------------------------------------------------------------------------------
# the decision, on plain values


def _figures(**changes):
    base = dict(previous_run_date=dt.date(2026, 1, 1), customers=1000, previous_customers=1000, departed=0, new=0,
                tonight_ids=1000, unseen_id_format=0, medians={"BALANCE": 800.0, "CASH_ADVANCE": 0.0},
                previous_medians={"BALANCE": 800.0, "CASH_ADVANCE": 0.0})
    return guard.Figures(**{**base, **changes})


def test_an_unchanged_night_passes():
    assert guard.decide(_figures(), GuardConfig()) == []


@pytest.mark.parametrize("changes, failed", [
    ({"customers": 500, "departed": 500, "tonight_ids": 500}, {"count_change": -0.5, "departed_share": 0.5}),
    ({"customers": 1300, "new": 300, "tonight_ids": 1300}, {"count_change": 0.3, "new_share": 300 / 1300}),
    ({"departed": 1000, "new": 1000}, {"departed_share": 1.0, "new_share": 1.0}),
    ({"unseen_id_format": 20}, {"unseen_id_format_share": 0.02}),
    ({"medians": {"BALANCE": 80000.0, "CASH_ADVANCE": 0.0}}, {"median_ratio:BALANCE": 100.0}),
    ({"medians": {"BALANCE": 8.0, "CASH_ADVANCE": 0.0}}, {"median_ratio:BALANCE": 0.01}),  # the inverse too
])
def test_each_figure_past_its_threshold_fails(changes, failed):
    failures = guard.decide(_figures(**changes), GuardConfig())
    assert {f.figure: pytest.approx(f.value) for f in failures} == failed


def test_figures_at_their_thresholds_pass_and_unmeasured_ones_are_not_judged():
    at = _figures(customers=1200, tonight_ids=1200, new=240, departed=100, unseen_id_format=12,
                  medians={"BALANCE": 4000.0, "CASH_ADVANCE": 5.0})  # 0 -> 5: a zero median has no ratio
    assert guard.decide(at, GuardConfig()) == []
    assert guard.decide(_figures(unseen_id_format=None, previous_medians={}), GuardConfig()) == []
    strict = GuardConfig(max_count_change=0.1, max_median_ratio=4.0)
    assert [f.figure for f in guard.decide(at, strict)] == ["count_change", "median_ratio:BALANCE"]


def test_the_refusal_names_every_failed_figure_and_how_to_accept():
    figures = _figures(customers=500, departed=500, tonight_ids=500)
    text = guard.refusal(dt.date(2026, 1, 2), figures, guard.decide(figures, GuardConfig()))
    assert "\n" not in text and "2026-01-01" in text and "--accept-night" in text and "guard.accept=true" in text
    assert "count_change -0.5000 (threshold 0.2)" in text and "departed_share 0.5000 (threshold 0.1)" in text


def test_id_shape_and_the_ids_join(spark):
    ids = spark.createDataFrame([("C10001",), ("X-7",), ("10001",)], "CUST_ID string")
    assert [r[0] for r in ids.select(guard.id_shape(F.col("CUST_ID"))).collect()] == ["A99999", "A-9", "99999"]
    last = spark.createDataFrame([("C10001",), ("C10002",)], "CUST_ID string")
    (row,) = guard.id_changes(ids, last).collect()
    assert row.asDict() == {"tonight": 3, "previous": 2, "departed": 1, "new": 2}


# ---------------------------------------------------------------------------------------------
# through the jobs


def _csv(path: Path, lines) -> Path:
    path.write_text("\n".join([HEADER, *lines]) + "\n")
    return path


def _scaled(line: str, factor: float) -> str:
    names = HEADER.split(",")
    values = line.split(",")
    return ",".join(str(float(v) * factor) if n in MONEY_COLUMNS and v else v for n, v in zip(names, values))


def _table(spark, lake_dir, name):
    return spark.read.format("delta").load(str(lake_dir / name))


def _client(lake_dir: Path) -> MlflowClient:
    uri = f"sqlite:///{lake_dir / 'mlflow' / 'mlflow.db'}"
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def _snapshot(spark, lake_dir):
    """Every Delta table of the lake but `runs`, as rows: what a reader would see."""
    names = sorted(p.name for p in lake_dir.iterdir() if (p / "_delta_log").is_dir() and p.name != "runs")
    return {name: _table(spark, lake_dir, name).collect() for name in names}


def _assert_unchanged(spark, lake_dir, before):
    assert sorted(before) == sorted(_snapshot(spark, lake_dir))
    for name, rows in before.items():
        assertDataFrameEqual(_table(spark, lake_dir, name), rows)


def _last_run(spark, lake_dir):
    return _table(spark, lake_dir, "runs").orderBy(F.col("started_at").desc()).first()


@pytest.fixture(scope="module")
def nights(spark, tmp_path_factory):
    """A lake with two published nights of the same 300 customers: D1 (trains) and D2."""
    root = tmp_path_factory.mktemp("night_to_night")
    source = _csv(root / "night.csv", NIGHT)
    lake = ["--set", f"tables.root={root}", "--set", f"tables.models_dir={root / 'models'}", *TEST_SESSION, *SMALL_TRAIN]
    assert nightly_job.main(["--run-date", D1, "--input", str(source), *lake]) == 0
    first = _last_run(spark, root)
    assert nightly_job.main(["--run-date", D2, "--input", str(source), *lake]) == 0
    return root, lake, first, _last_run(spark, root)


def test_the_first_night_and_the_same_input_the_next_night_pass(spark, nights):
    root, _, first, second = nights
    assert (first.status, second.status) == ("SUCCEEDED", "SUCCEEDED")
    profile = _table(spark, root, "night_profile").where(F.col("run_date") == D2)
    assert {r.name for r in profile.where("measure = 'median'").collect()} == set(MONEY_COLUMNS)
    assert [r.name for r in profile.where("measure = 'id_shape'").collect()] == ["A99999"]
    assert profile.where("measure = 'customers'").first().value == len(NIGHT)


@pytest.mark.parametrize("name, lines, figures", [
    ("half the customers", NIGHT[:150], ["count_change -0.5000", "departed_share 0.5000"]),
    ("re-keyed ids, C -> X", ["X" + line[1:] for line in NIGHT], ["departed_share 1.0000", "new_share 1.0000"]),
    ("re-keyed ids, prefix dropped", [line[1:] for line in NIGHT],
     ["departed_share 1.0000", "new_share 1.0000", "unseen_id_format_share 1.0000"]),
    ("money in cents", [_scaled(line, 100) for line in NIGHT],
     [f"median_ratio:{c} 100 " for c in ("BALANCE", "PURCHASES", "CREDIT_LIMIT", "PAYMENTS", "MINIMUM_PAYMENTS")]),
])
def test_a_broken_night_is_refused_and_nothing_is_written(spark, nights, tmp_path, name, lines, figures):
    root, lake, _, _ = nights
    before = _snapshot(spark, root)
    source = _csv(tmp_path / "bad.csv", lines)
    assert features_job.main(["--run-date", D3, "--input", str(source), *lake]) == EXIT, name
    _assert_unchanged(spark, root, before)
    run = _last_run(spark, root)
    assert run.status == "FAILED" and run.job == "features"
    assert run.error.startswith(f"NightGuardError: night {D3} refused by the night-to-night guard against {D2}")
    for figure in figures:
        assert figure in run.error, (name, run.error)
    assert "--accept-night" in run.error


def test_the_guard_compares_a_backfill_with_the_night_before_it(spark, nights, tmp_path):
    root, lake, _, _ = nights
    source = _csv(tmp_path / "half.csv", NIGHT[:150])
    assert features_job.main(["--run-date", "2026-07-31", "--input", str(source), *lake]) == 0  # before D1: first
    assert features_job.main(["--run-date", D2, "--input", str(source), *lake]) == EXIT  # a re-run of D2: against D1
    assert f"against {D1}" in _last_run(spark, root).error


def test_an_accepted_night_is_written_with_a_warning(spark, nights, tmp_path, caplog):
    root, lake, _, _ = nights
    source = _csv(tmp_path / "half.csv", NIGHT[:150])
    caplog.set_level(logging.INFO)
    assert features_job.main(["--run-date", "2026-08-04", "--input", str(source), *lake, "--accept-night"]) == 0
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING" and "night guard FIRED" in r.getMessage()]
    assert len(warned) == 1 and "count_change -0.5000" in warned[0] and "customers=150" in warned[0]
    assert _table(spark, root, "features").where(F.col("run_date") == "2026-08-04").count() == 150
    assert _last_run(spark, root).status == "SUCCEEDED"
    # The same by config.
    assert features_job.main(["--run-date", "2026-08-05", "--input", str(source), *lake,
                              "--set", "guard.accept=true"]) == 0


def test_retrain_on_drift_never_trains_on_a_refused_night_nor_promotes_an_accepted_one(spark, nights, tmp_path, caplog):
    root, lake, _, _ = nights
    client = _client(root)
    champion = client.get_model_version_by_alias("segmentation", "champion").version
    versions = {v.version for v in client.search_model_versions("name='segmentation'")}
    models = sorted(p.name for p in (root / "models").iterdir())
    cents = _csv(tmp_path / "cents.csv", [_scaled(line, 100) for line in NIGHT])
    night = ["--run-date", "2026-08-06", "--input", str(cents), "--retrain-on-drift", *lake]

    before = _snapshot(spark, root)
    assert nightly_job.main(night) == EXIT
    _assert_unchanged(spark, root, before)
    assert {v.version for v in client.search_model_versions("name='segmentation'")} == versions
    assert sorted(p.name for p in (root / "models").iterdir()) == models
    assert _last_run(spark, root).error.startswith("NightGuardError:")

    caplog.set_level(logging.INFO)
    assert nightly_job.main([*night, "--accept-night"]) == 0
    new = {v.version for v in client.search_model_versions("name='segmentation'")} - versions
    assert len(new) == 1  # trained and registered on the drifted night ...
    held = client.get_model_version("segmentation", new.pop())
    assert held.tags[registry.GATES_TAG] == "passed"
    assert held.tags[registry.HOLD_TAG].startswith("guard fired on this night (accepted by --accept-night")
    assert client.get_model_version_by_alias("segmentation", "champion").version == champion  # ... not champion
    assert any("NOT made champion" in r.getMessage() for r in caplog.records if r.levelname == "WARNING")
    run = _last_run(spark, root)
    assert run.status == "SUCCEEDED" and run.registry_version == int(champion)  # scored with the champion
