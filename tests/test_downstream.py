"""What campaign teams build on: stable ids, segments_current and its change feed, migrations, drift.

One small-grid model is trained once on the bundled file; each test scores its own nights.
"""

import pandas as pd
import pytest
from conftest import BUNDLED_CSV
from delta.tables import DeltaTable
from docs_queries import run_documented_queries
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from jobs import nightly as nightly_job
from jobs import train as train_job
from segmentation.downstream import drift as drift_measures
from segmentation.model import store

SMALL_GRID = ["--set", "train.clustering.algorithms=[kmeans]", "--set", "train.clustering.kmeans.k=[4]",
              "--set", "train.clustering.stability.resamples=0", "--set", "train.explain.report=false"]
MONEY = ["PURCHASES", "ONEOFF_PURCHASES", "INSTALLMENTS_PURCHASES", "PAYMENTS"]


@pytest.fixture(scope="module")
def lake(tmp_path_factory):
    """A lake with a trained 4-segment model and its first scored night, 2026-03-01."""
    root = tmp_path_factory.mktemp("downstream")
    args = ["--set", f"tables.root={root}", "--set", f"tables.models_dir={root / 'models'}", *SMALL_GRID]
    assert nightly_job.main(["--run-date", "2026-03-01", *args]) == 0
    return root, args


def _read(spark, root, table):
    return spark.read.format("delta").load(str(root / table))


def _night_csv(tmp_path, name, change=None):
    frame = pd.read_csv(BUNDLED_CSV)
    if change:
        frame = change(frame)
    path = tmp_path / f"{name}.csv"
    frame.to_csv(path, index=False)
    return path


def test_segments_current_change_feed_and_migrations_over_two_nights(spark, lake, tmp_path):
    root, args = lake
    first = _read(spark, root, "segments").where("run_date = DATE'2026-03-01'").select("CUST_ID", "segment_id")
    seg = dict(first.toPandas().itertuples(index=False))  # 8,950 rows: the test's own small input
    frame = pd.read_csv(BUNDLED_CSV)
    mover = frame.CUST_ID.iloc[0]
    donor = next(c for c in frame.CUST_ID if seg[c] != seg[mover])
    gone = frame.CUST_ID.iloc[1]

    def night2(f):
        values = f.loc[f.CUST_ID == donor].drop(columns="CUST_ID").iloc[0]
        f.loc[f.CUST_ID == mover, values.index] = values.to_numpy()
        return f[f.CUST_ID != gone]

    csv = _night_csv(tmp_path, "night2", night2)
    assert nightly_job.main(["--run-date", "2026-03-02", "--input", str(csv), *args]) == 0

    current = _read(spark, root, "segments_current")
    assert current.count() == 8950 and current.where("active").count() == 8949
    moved = current.where(F.col("CUST_ID") == mover).first()
    assert moved.segment_id == seg[donor] and moved.previous_segment_id == seg[mover]
    assert str(moved.since_run_date) == "2026-03-02" and moved.active and moved.last_seen_run_date is None
    departed = current.where(F.col("CUST_ID") == gone).first()
    assert not departed.active and str(departed.last_seen_run_date) == "2026-03-01"
    stayed = current.where(F.col("CUST_ID") == frame.CUST_ID.iloc[2]).first()
    assert str(stayed.since_run_date) == "2026-03-01" and stayed.previous_segment_id is None

    migrations = _read(spark, root, "segment_migrations").where("run_date = DATE'2026-03-02'").toPandas()
    assert migrations.loc[migrations.to_segment_id.notna(), "customers"].sum() == 8949  # every customer scored
    assert migrations.loc[migrations.from_segment_id.notna(), "customers"].sum() == 8950  # every one of last night
    (dep,) = migrations[migrations.movement == "departed"].itertuples()
    assert dep.from_segment_id == seg[gone] and dep.customers == 1
    assert migrations[migrations.movement == "moved"].customers.sum() >= 1
    assert str(migrations.previous_run_date.iloc[0]) == "2026-03-01"

    # The same night again: the same table, and no commit at all (so nothing in the feed).
    table = DeltaTable.forPath(spark, str(root / "segments_current"))
    before = table.history(1).first().version
    snapshot = spark.read.format("delta").option("versionAsOf", before).load(str(root / "segments_current"))
    assert nightly_job.main(["--run-date", "2026-03-02", "--input", str(csv), *args]) == 0
    assert table.history(1).first().version == before
    assertDataFrameEqual(_read(spark, root, "segments_current"), snapshot)

    # The example queries of docs/tables.md run as written against this lake.
    for sql, rows in run_documented_queries(spark, root, before - 1, seg[donor], "2026-03-04", "2026-03-01"):
        if "/nights`" in sql:  # the published nights' customers per segment
            per_night = {}
            for r in rows:
                per_night[r.run_date.isoformat()] = per_night.get(r.run_date.isoformat(), 0) + r.customers
            assert per_night == {"2026-03-01": 8950, "2026-03-02": 8949}, sql
            continue
        found = {r.CUST_ID for r in rows}
        if "table_changes" in sql or "segment_events" in sql:
            assert {mover, gone} <= found, sql  # both changed since that version, or that night
        else:
            assert found == ({mover} if moved.segment_confidence >= 0.8 else set()), sql


def test_forced_drift_is_flagged_and_unchanged_input_is_not(spark, lake, tmp_path, caplog):
    root, args = lake
    latest = store.latest(str(root / "models"))
    # Unchanged input with --retrain-on-drift: no flag and no retrain.
    assert nightly_job.main(["--run-date", "2026-03-10", "--retrain-on-drift", *args]) == 0
    drift = _read(spark, root, "drift").where("run_date = DATE'2026-03-10'").toPandas()
    psi = drift[drift.measure == "psi"]
    assert len(psi) == 25 and not drift.flagged.any() and psi.value.max() < 0.05
    assert store.latest(str(root / "models")) == latest

    def shifted(f):
        f[MONEY] = f[MONEY] * 3
        f["BALANCE"] = f["BALANCE"] * 2
        return f

    csv = _night_csv(tmp_path, "shifted", shifted)
    caplog.clear()
    assert nightly_job.main(["--run-date", "2026-03-11", "--input", str(csv), *args]) == 0
    drift = _read(spark, root, "drift").where("run_date = DATE'2026-03-11'").toPandas()
    flagged = set(drift[drift.flagged & (drift.measure == "psi")].name)
    assert {"PURCHASES", "PAYMENTS", "BALANCE"} <= flagged
    # The scoring pass counted the bins itself: the same PSI as Spark's aggregate over the partition.
    features = _read(spark, root, "features").where("run_date = DATE'2026-03-11'")
    reference = store.load(str(root / "models"), latest).drift_reference
    measured = dict(zip(drift[drift.measure == "psi"].name, drift[drift.measure == "psi"].value))
    assert measured == drift_measures.feature_psi(features, reference)
    assert any("measure drift" in r.getMessage() and "bins_counted_by=score" in r.getMessage() for r in caplog.records)
    assert not flagged & {"TENURE", "PRC_FULL_PAYMENT", "CASH_ADVANCE_FREQUENCY"}
    assert any(r.levelname == "WARNING" and "DRIFT" in r.getMessage() for r in caplog.records)
    assert store.latest(str(root / "models")) == latest  # flagged, but not asked to retrain
    status = {str(r.run_date): r.drift_status for r in _read(spark, root, "runs").where(
        "job = 'nightly' AND status = 'SUCCEEDED' AND run_date IN (DATE'2026-03-10', DATE'2026-03-11')").collect()}
    assert status == {"2026-03-10": "ok", "2026-03-11": "drift"}

    # Asked to retrain on drift, the shifted night trains a new model before scoring.
    assert nightly_job.main(["--run-date", "2026-03-12", "--input", str(csv), "--retrain-on-drift", *args]) == 0
    assert store.latest(str(root / "models")) != latest


def test_a_retrain_with_one_more_segment_keeps_the_ids_and_adds_a_new_one(spark, lake):
    root, args = lake
    previous = store.load(str(root / "models"))
    five = [*args, "--set", "train.clustering.kmeans.k=[5]", "--set", "train.clustering.guardrails.max_segments=8"]
    assert train_job.main(["--run-date", "2026-03-01", *five]) == 0
    bundle = store.load(str(root / "models"))
    assert len(bundle.classes) == 5 and bundle.version != previous.version
    kept = {e["segment_ids"][0] for e in bundle.lineage if e["relation"] == "kept"}
    new = [e for e in bundle.lineage if e["relation"] == "new"]
    assert len(kept) >= 3 and kept <= set(previous.classes)
    assert len(new) >= 1 and all(e["segment_ids"][0] >= max(previous.classes) + 1 for e in new)
    assert set(bundle.classes) == kept | {e["segment_ids"][0] for e in new}
    for segment in kept:  # a kept segment keeps its name
        assert bundle.segment_names[segment] == previous.segment_names[segment]
    lineage = _read(spark, root, "segment_lineage").where(F.col("model_version") == bundle.version).toPandas()
    assert set(lineage.relation) >= {"kept", "new"} and set(lineage.previous_model_version) == {previous.version}


def test_drift_falls_back_to_spark_when_the_scoring_pass_did_not_count_every_row(spark, lake, monkeypatch, caplog):
    """Counts that do not add up to the rows read are set aside: the aggregate measures the night."""
    from segmentation.score import stage as score_stage

    root, args = lake
    real_score = score_stage._score
    monkeypatch.setattr(score_stage, "_score", lambda f, m, d, t, counts=None: real_score(f, m, d, t))  # counts nothing
    caplog.clear()
    assert nightly_job.main(["--run-date", "2026-03-20", *args]) == 0
    assert any("measure drift" in r.getMessage() and "bins_counted_by=aggregate" in r.getMessage()
               for r in caplog.records)
    night = _read(spark, root, "drift").where("run_date = DATE'2026-03-20' AND measure = 'psi'").collect()
    features = _read(spark, root, "features").where("run_date = DATE'2026-03-20'")
    reference = store.load(str(root / "models"), store.latest(str(root / "models"))).drift_reference
    assert len(night) == 25 and {r.name: r.value for r in night} == drift_measures.feature_psi(features, reference)
