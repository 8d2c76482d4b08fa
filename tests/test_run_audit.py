"""Every run accounted for: who ran it, which code, which settings and which state of the input."""

import datetime as dt
import re

from conftest import BUNDLED_CSV, PROJECT
from pyspark.sql import functions as F
from pyspark.sql.types import StructType

from jobs import features as features_job
from segmentation.core import build
from segmentation.core.config import load_config
from segmentation.io import runs, tables

RUN_DATE = "2026-06-03"
LINES = BUNDLED_CSV.read_text().splitlines()
DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


def _runs(spark, lake_dir):
    return spark.read.format("delta").load(str(lake_dir / "runs")).orderBy("started_at").collect()


def test_a_run_records_its_user_code_config_and_input(spark, tmp_path, lake):
    src = tmp_path / "night.csv"
    src.write_text("\n".join(LINES[:31]) + "\n")
    args = ["--run-date", RUN_DATE, "--input", str(src), *lake]
    assert features_job.main(args) == 0
    first_digest = tables.input_version(spark, str(src))
    src.write_text("\n".join(LINES[:41]) + "\n")  # upstream sends the night again, with more rows
    assert features_job.main(args) == 0
    assert features_job.main([*args, "--set", "contract.max_quarantine_share=0.2"]) == 0

    one, two, three = _runs(spark, tmp_path / "lake")
    assert one.user == spark.sparkContext.sparkUser() and one.user
    assert one.code_version == build.code_version() and "+" in one.code_version  # the commit, in this checkout
    assert DIGEST.fullmatch(one.config_digest)
    assert one.config_digest == two.config_digest != three.config_digest  # same settings, same digest
    assert one.input_version == first_digest and re.fullmatch(r"files:sha256:[0-9a-f]{64}", one.input_version)
    assert two.input_version == three.input_version != one.input_version  # another file, another digest


def test_a_delta_input_is_read_at_the_version_recorded(spark, tmp_path, lake):
    source = tmp_path / "raw"
    frame = spark.read.csv(str(BUNDLED_CSV), header=True, schema=tables.csv_schema(LINES[0].split(","))).drop(
        "_corrupt_record").limit(30)
    frame.write.format("delta").save(str(source))
    frame.limit(5).write.format("delta").mode("append").save(str(source))  # version 1: 35 rows (5 duplicates)
    assert features_job.main(["--run-date", RUN_DATE, "--input", str(source), *lake,
                              "--set", "contract.max_quarantine_share=0.5"]) == 0
    (run,) = _runs(spark, tmp_path / "lake")
    assert run.input_version == "delta:1" and run.rows_read == 35
    # A pinned read is the table as it was at that version, whatever was committed since.
    frame.write.format("delta").mode("append").save(str(source))
    assert tables.read_raw(spark, str(source), "auto", "delta:1").count() == 35
    assert tables.input_version(spark, str(source)) == "delta:2"


def test_a_runs_table_from_before_the_audit_fields_gains_them(spark, tmp_path, lake):
    old = StructType([f for f in runs.RUNS_SCHEMA.fields
                      if f.name not in ("user", "code_version", "config_digest", "input_version")])
    lake_dir = tmp_path / "lake"
    old_row = {f.name: None for f in old.fields}
    old_row.update(run_id="old", run_date=runs.utc_now().date(), job="features", started_at=runs.utc_now(),
                   status="SUCCEEDED")
    spark.createDataFrame([old_row], old).write.format("delta").save(str(lake_dir / "runs"))
    src = tmp_path / "night.csv"
    src.write_text("\n".join(LINES[:21]) + "\n")
    assert features_job.main(["--run-date", RUN_DATE, "--input", str(src), *lake]) == 0
    table = spark.read.format("delta").load(str(lake_dir / "runs"))
    assert set(runs.RUNS_SCHEMA.fieldNames()) <= set(table.columns)
    new = table.where(F.col("run_id") != "old").first()
    assert new.status == "SUCCEEDED" and new.input_version.startswith("files:sha256:") and new.config_digest
    assert table.where(F.col("run_id") == "old").first().user is None  # what the old run never recorded


def test_the_config_digest_leaves_secrets_out_and_follows_every_setting():
    def digest(*overrides):
        return runs.config_digest(load_config(PROJECT / "conf", ["local"], list(overrides)))

    base = digest("spark.extra={fs.s3a.secret.key: one}")
    assert base == digest("spark.extra={fs.s3a.secret.key: two}")  # a secret's value is not hashed
    assert base != digest("spark.extra={fs.s3a.secret.key: one, spark.sql.ansi.enabled: 'true'}")
    assert base != digest("spark.extra={fs.s3a.secret.key: one}", "train.sample.max_rows=1234")
    assert DIGEST.fullmatch(base)


SMALL_TRAIN = ["--set", "train.clustering.algorithms=[kmeans]", "--set", "train.clustering.kmeans.k=[4]",
               "--set", "train.clustering.stability.resamples=0", "--set", "train.explain.report=false"]


def test_train_records_the_features_version_it_read_not_a_later_one(spark, tmp_path, lake, monkeypatch):
    from mlflow import MlflowClient

    from jobs import train as train_job
    from segmentation.train import stage

    lake_dir = tmp_path / "lake"
    args = ["--run-date", RUN_DATE, *lake, *SMALL_TRAIN]
    assert features_job.main(args) == 0
    features = tables.TableRef(path=str(lake_dir / "features"))
    read_version = tables.latest_version(spark, features)
    transform = stage._transform

    def features_written_again_meanwhile(sample, cfg, log):
        # Another run rewrites the night's features after the train has read them, before it registers.
        night = tables.read_run(spark, features, dt.date.fromisoformat(RUN_DATE)).limit(10)
        tables.replace_run(night, features, dt.date.fromisoformat(RUN_DATE))
        return transform(sample, cfg, log)

    monkeypatch.setattr(stage, "_transform", features_written_again_meanwhile)
    assert train_job.main(args) == 0
    assert tables.latest_version(spark, features) == read_version + 1

    uri = f"sqlite:///{lake_dir / 'mlflow' / 'mlflow.db'}"
    version = MlflowClient(tracking_uri=uri, registry_uri=uri).get_model_version("segmentation", "1")
    assert int(version.tags["features_delta_version"]) == read_version  # the version read, not the latest
    assert int(version.tags["rows"]) == len(LINES) - 1  # the night as read: 8950 customers, not the 10 written since
    features_run, train_run = _runs(spark, lake_dir)
    assert version.tags["input_version"] == features_run.input_version == train_run.input_version
    assert version.tags["input_version"].startswith("files:sha256:")
    manifest = (lake_dir / "models" / version.tags["bundle_version"] / "manifest.json").read_text()
    assert f"version={read_version}" in manifest


def test_generate_records_its_run_and_may_replace_its_own_output(spark, tmp_path, lake):
    from jobs import generate as generate_job

    output = tmp_path / "generated"
    args = ["--rows", "300", "--seed", "3", "--output", str(output), "--format", "delta", "--run-date", RUN_DATE, *lake]
    assert generate_job.main(args) == 0
    assert generate_job.main(args) == 0  # its own Delta output: replaced, as before
    assert spark.read.format("delta").load(str(output)).count() == 300
    first, second = _runs(spark, tmp_path / "lake")
    assert (first.job, first.status, first.rows_written) == ("generate", "SUCCEEDED", 300)
    assert second.status == "SUCCEEDED" and second.config_digest == first.config_digest and second.user


def test_generate_refuses_to_write_into_a_product_table(spark, tmp_path, lake):
    from jobs import generate as generate_job

    lake_dir = tmp_path / "lake"
    src = tmp_path / "night.csv"
    src.write_text("\n".join(LINES[:21]) + "\n")
    assert features_job.main(["--run-date", RUN_DATE, "--input", str(src), *lake]) == 0
    features = spark.read.format("delta").load(str(lake_dir / "features"))
    before = features.count()
    other = tmp_path / "someone_elses_delta"
    spark.range(3).write.format("delta").save(str(other))
    for output in (lake_dir / "features", lake_dir / "not_yet_a_table", lake_dir / "models" / "x", tmp_path, other):
        code = generate_job.main(["--rows", "50", "--output", str(output), "--format", "parquet",
                                  "--run-date", RUN_DATE, *lake])
        assert code == 2, output
    assert spark.read.format("delta").load(str(lake_dir / "features")).count() == before
    assert not (lake_dir / "not_yet_a_table").exists() and not (lake_dir / "models" / "x").exists()
    assert spark.read.format("delta").load(str(other)).count() == 3
    refused = [r for r in _runs(spark, lake_dir) if r.job == "generate"]
    assert len(refused) == 5 and all(r.status == "FAILED" and r.error.startswith("ProductTableError: refusing to write")
                                     for r in refused)
