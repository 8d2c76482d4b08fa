"""The `maintain` job on a real lake: two real nights, then compaction, VACUUM, retention, old
bundles and crashed staging, through the job's entry point.

What it promises: fewer files, the same rows (in Spark and in delta-rs/polars), old unreferenced
files gone while time travel within the retention still works, the next night still able to
apply only its events, bundles beyond `keep_models` removed but never LATEST's or a registered
one's, stale staging removed and a live one kept, and a retention too short for a dead night's
restore refused by name.
"""

import os
import time
from pathlib import Path

import deltalake
import polars as pl
import pytest
from conftest import BUNDLED_CSV, PROJECT, TEST_SESSION
from pyspark.sql import functions as F

from jobs import maintain as maintain_job
from jobs import nightly as nightly_job
from segmentation.core.config import load_config
from segmentation.core.errors import ConfigError
from segmentation.io import tables
from segmentation.model import store

N1, N2 = "2026-10-01", "2026-10-02"
SMALL_TRAIN = ["--set", "train.clustering.algorithms=[kmeans]", "--set", "train.clustering.kmeans.k=[4]",
               "--set", "train.clustering.stability.resamples=0", "--set", "train.explain.report=false",
               "--set", "registry.enabled=false"]
HEADER, *LINES = BUNDLED_CSV.read_text().splitlines()
MAINTAINED = ["runs", "nights", "segment_shares", "segments_current"]
RETENTION_HOURS = 1  # Delta's least: every version the nights wrote is younger
# Fake bundle folders, oldest first: B registered, C the registry's champion, A and D neither.
A, B, C, D = (f"2020010{i}T000000Z-fake0{i}" for i in range(1, 5))


def _csv(path: Path, lines) -> Path:
    path.write_text("\n".join([HEADER, *lines]) + "\n")
    return path


def _lake(root: Path) -> list[str]:
    return ["--set", f"tables.root={root}", "--set", f"tables.models_dir={root / 'models'}", *TEST_SESSION]


def _delta(spark, root: Path, name: str):
    return spark.read.format("delta").load(str(root / name))


def _rows(df, name: str) -> list[tuple]:
    """The rows, in a fixed order; `nights` without `current_version`, which maintain moves on
    (test_the_next_night_still_applies_only_its_events)."""
    return sorted(map(tuple, (df.drop("current_version") if name == "nights" else df).collect()), key=repr)


def _snapshot(spark, root: Path, name: str) -> dict:
    table = tables.delta_table(spark, tables.TableRef(path=str(root / name)))
    detail = table.detail().select("numFiles", "properties").first()
    return {
        "rows": _rows(_delta(spark, root, name), name),
        "files": int(detail["numFiles"]),
        "properties": dict(detail["properties"] or {}),
        "version": int(table.history(1).select("version").first()[0]),
        "parquet_on_disk": sorted(str(p) for p in (root / name).rglob("*.parquet")),
    }


def _registry(root: Path) -> None:
    """A real MLflow registry under the lake: version 1 is bundle B's, version 2 (champion) C's."""
    from mlflow import MlflowClient

    (root / "mlflow").mkdir(exist_ok=True)
    # Both URIs named: an earlier test in the same process may have set a global registry URI.
    uri = f"sqlite:///{root / 'mlflow' / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    experiment = client.create_experiment("segmentation", artifact_location=(root / "mlflow" / "artifacts").as_uri())
    client.create_registered_model("segmentation")
    for bundle in (B, C):
        run = client.create_run(experiment)
        note = root / f"{bundle}.txt"
        note.write_text(bundle)
        client.log_artifact(run.info.run_id, str(note), "model")
        version = client.create_model_version("segmentation", f"{run.info.artifact_uri}/model", run.info.run_id,
                                              tags={"bundle_version": bundle})
    client.set_registered_model_alias("segmentation", "champion", version.version)


@pytest.fixture(scope="module")
def maintained(spark, tmp_path_factory):
    """Two real nights, the lake as it was, then one `maintain` run."""
    work = tmp_path_factory.mktemp("maintain")
    root = work / "lake"
    inputs = {N1: _csv(work / "n1.csv", LINES[:300]), N2: _csv(work / "n2.csv", LINES[5:300] + LINES[300:305])}
    for date in (N1, N2):
        assert nightly_job.main(["--run-date", date, "--input", str(inputs[date]), *_lake(root), *SMALL_TRAIN]) == 0
    before = {name: _snapshot(spark, root, name) for name in MAINTAINED}
    models = root / "models"
    real = store.latest(str(models))
    for name in (A, B, C, D):
        (models / name).mkdir()
        (models / name / store.MANIFEST_FILE).write_text("{}")
    _registry(root)
    old, fresh = models / ".20200105T000000Z-crashed.tmp", models / f".{store.new_version()}.tmp"
    for path in (old, fresh):
        path.mkdir()
        (path / store.BUNDLE_FILE).write_bytes(b"half a bundle")
    (models / ".LATEST.tmp").write_text(A)
    # Files no version names, as a write that died leaves them: one two hours old, one just written.
    night = root / "segment_shares" / f"run_date={N1}"
    written = next(night.glob("*.parquet")).read_bytes()
    orphans = {"old": night / "part-00009-crashed-write.c000.snappy.parquet",
               "fresh": night / "part-00009-writing-now.c000.snappy.parquet"}
    for path in orphans.values():
        path.write_bytes(written)
    day_ago, hours_ago = time.time() - 2 * 86400, time.time() - 2 * 3600
    for path in (old / store.BUNDLE_FILE, old, models / ".LATEST.tmp"):
        os.utime(path, (day_ago, day_ago))
    os.utime(orphans["old"], (hours_ago, hours_ago))
    started = time.perf_counter()
    code = maintain_job.main([
        "--run-date", N2, *_lake(root), "--set", "registry.enabled=true",
        "--set", f"maintain.tables=[{','.join(MAINTAINED)}]", "--set", "maintain.keep_models=1",
        "--set", f"maintain.vacuum_retention_hours={RETENTION_HOURS}",
        "--set", f"runs.stale_after_hours={RETENTION_HOURS}", "--set", "maintain.staging_max_age_hours=1",
    ])
    assert code == 0
    seconds = time.perf_counter() - started
    return root, before, real, {"old": old, "fresh": fresh, "orphans": orphans}, seconds


def test_compaction_leaves_fewer_files_and_every_table_its_retention(spark, maintained):
    root, before, _, _, seconds = maintained
    after = {name: _snapshot(spark, root, name) for name in MAINTAINED}
    print({name: (before[name]["files"], after[name]["files"]) for name in MAINTAINED}, f"maintain {seconds:.0f}s")
    # runs: two nights' rows (their updates rewrote files) and maintain's own row, in fewer files.
    assert after["runs"]["files"] == 1 < before["runs"]["files"]
    assert after["nights"]["files"] == 1 < before["nights"]["files"]
    assert sum(a["files"] for a in after.values()) < sum(b["files"] for b in before.values())
    expected = {"delta.logRetentionDuration": "interval 30 days",
                "delta.deletedFileRetentionDuration": f"interval {RETENTION_HOURS} hours"}
    for name in MAINTAINED:
        assert expected.items() <= after[name]["properties"].items(), name
    # Tables a job creates have their retention from the first commit (here the defaults').
    created = _snapshot(spark, root, "segment_events")["properties"]
    assert created["delta.logRetentionDuration"] == "interval 30 days"
    assert created["delta.deletedFileRetentionDuration"] == "interval 168 hours"


def test_the_tables_read_the_same_in_spark_and_delta_rs(spark, maintained):
    root, before, _, _, _ = maintained
    for name in ("nights", "segment_shares", "segments_current"):
        assert _rows(_delta(spark, root, name), name) == before[name]["rows"], name
    ids = {r[0] for r in before["runs"]["rows"]}
    runs = _delta(spark, root, "runs")
    assert sorted(map(tuple, runs.where(F.col("run_id").isin(ids)).collect()), key=repr) == before["runs"]["rows"]
    assert runs.where(F.col("job") == "maintain").select("status").first()[0] == "SUCCEEDED"
    # delta-rs (behind polars and most readers other than Spark) reads the maintained tables alike.
    shares = deltalake.DeltaTable(str(root / "segment_shares")).to_pyarrow_table().to_pylist()
    assert sorted((r["run_date"], r["segment_id"], r["customers"]) for r in shares) == sorted(
        (r.run_date, r.segment_id, r.customers) for r in _delta(spark, root, "segment_shares").collect())
    nights = deltalake.DeltaTable(str(root / "nights")).to_pyarrow_table().to_pylist()
    assert sorted((r["run_date"], r["status"]) for r in nights) == [(r[0], r[1]) for r in
                                                                    sorted(before["nights"]["rows"])]
    current = pl.read_delta(str(root / "segments_current")).select("CUST_ID", "segment_id").rows()
    assert sorted(current) == sorted((r[0], r[1]) for r in before["segments_current"]["rows"])


def test_vacuum_removes_old_unreferenced_files_and_time_travel_within_the_retention_works(spark, maintained):
    root, before, _, staging, _ = maintained
    # A file no version names, older than the retention, is gone; one younger (a write under way) stays.
    assert not staging["orphans"]["old"].exists() and staging["orphans"]["fresh"].exists()
    shares = tables.delta_table(spark, tables.TableRef(path=str(root / "segment_shares")))
    metrics = {r["operation"]: r["operationMetrics"] for r in shares.history(4).collect()}
    assert int(metrics["VACUUM END"]["numDeletedFiles"]) >= 1
    # Every version the nights wrote is within the retention: the files compaction replaced
    # moments ago are still there, and each version, the first included, reads whole.
    assert all(Path(p).exists() for p in before["runs"]["parquet_on_disk"])
    for name in ("runs", "nights", "segment_shares"):
        as_was = spark.read.format("delta").option("versionAsOf", before[name]["version"]).load(str(root / name))
        assert _rows(as_was, name) == before[name]["rows"], name
    first = spark.read.format("delta").option("versionAsOf", 0).load(str(root / "runs"))
    assert first.count() == 1 and first.first()["status"] == "RUNNING"


def test_the_next_night_still_applies_only_its_events(spark, maintained):
    root, _, _, _, _ = maintained
    latest = _delta(spark, root, "nights").orderBy(F.col("run_date").desc()).first()
    current = tables.TableRef(path=str(root / "segments_current"))
    assert latest["current_version"] == tables.latest_version(spark, current)


def test_old_bundles_go_but_latest_the_champion_and_registered_ones_stay(maintained):
    root, _, real, staging, _ = maintained
    models = root / "models"
    assert store.bundle_folders(str(models)) == sorted([B, C, real])
    assert store.latest(str(models)) == real and (models / real / store.BUNDLE_FILE).is_file()
    # A save that crashed a day ago is removed; one younger than the age (a live save) is kept.
    assert not staging["old"].exists() and not (models / ".LATEST.tmp").exists()
    assert staging["fresh"].is_dir()


def test_a_retention_shorter_than_a_dead_nights_restore_needs_is_refused(lake):
    with pytest.raises(ConfigError, match=r"maintain\.vacuum_retention_hours \(12\) must be at least "
                                          r"runs\.stale_after_hours \(24\.0\)"):
        load_config(PROJECT / "conf", ["local"], ["maintain.vacuum_retention_hours=12"])
    with pytest.raises(ConfigError, match=r"maintain\.log_retention_days \(2\) must cover "
                                          r"maintain\.vacuum_retention_hours \(168\)"):
        load_config(PROJECT / "conf", ["local"], ["maintain.log_retention_days=2"])
    # Through the job: exit 2 before any table is touched.
    assert maintain_job.main([*lake, "--set", "maintain.vacuum_retention_hours=1"]) == ConfigError.exit_code
