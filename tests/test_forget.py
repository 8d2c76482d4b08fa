"""`forget --ids PATH`: the listed customers erased from every product table, the others untouched."""

import pytest
import yaml
from lake_of_nights import build_lake, lake_args
from pyspark.sql import functions as F

from jobs import audiences as audiences_job
from jobs import forget as forget_job
from segmentation.core.columns import ID_COLUMN
from segmentation.core.config import TABLE_KEYS
from segmentation.io.forget import IdsNotFoundError


def _tables(spark, root):
    """Every product table under `root` that holds a CUST_ID: {name: rows}."""
    found = {}
    for key in TABLE_KEYS:
        path = root / key
        if (path / "_delta_log").is_dir():
            df = spark.read.format("delta").load(str(path))
            if ID_COLUMN in df.columns:
                found[key] = df
    return found


def _rows(df):
    return sorted(tuple(str(v) for v in r) for r in df.collect())


@pytest.fixture(scope="module")
def lake(spark, tmp_path_factory):
    work = tmp_path_factory.mktemp("forget")
    root, dates, _ = build_lake(spark, work, nights=1, bad={1: 3})
    config = work / "audiences.yaml"
    config.write_text(yaml.safe_dump({"audiences": [
        {"name": "everyone", "segments": [0, 1, 2, 3], "holdout_share": 0.2, "salt": "s"}]}))
    args = ["--run-date", dates[-1].isoformat(), *lake_args(root), "--config", str(config)]
    assert audiences_job.main(args) == 0
    return work, root, dates


def test_forget_removes_the_listed_customers_from_every_table_and_nothing_else(spark, lake, capsys):
    work, root, dates = lake
    before = _tables(spark, root)
    assert {"features", "segments", "segments_current", "quarantine", "segment_events", "audience_members",
            "audience_events"} <= set(before)
    customer = before["segments_current"].orderBy(ID_COLUMN).first()[ID_COLUMN]
    quarantined = before["quarantine"].orderBy(ID_COLUMN).first()[ID_COLUMN]
    gone = [customer, quarantined]
    kept = {name: _rows(df.where(~F.col(ID_COLUMN).isin(gone))) for name, df in before.items()}
    had = {name: df.where(F.col(ID_COLUMN).isin(gone)).count() for name, df in before.items()}
    assert all(had[t] for t in ("features", "segments", "segments_current", "audience_members", "quarantine"))
    ids = work / "erase.csv"
    ids.write_text(f"CUST_ID,reason\n{customer},request 1\n{quarantined},request 2\n{customer},again\n")
    capsys.readouterr()

    assert forget_job.main(["--ids", str(ids), "--run-date", dates[-1].isoformat(), *lake_args(root)]) == 0

    printed = dict(line.split("\t") for line in capsys.readouterr().out.splitlines() if "\t" in line)
    after = _tables(spark, root)
    for name, df in after.items():
        assert df.where(F.col(ID_COLUMN).isin(gone)).count() == 0, name
        assert _rows(df) == kept[name], f"{name}: other customers' rows changed"
        assert int(printed[name]) == had[name], name
    runs = spark.read.format("delta").load(str(root / "runs")).where(F.col("job") == "forget").collect()
    assert [(r.status, r.rows_read) for r in runs] == [("SUCCEEDED", 2)]
    # The next night still applies only its events to segments_current: the night holds its new version.
    night = spark.read.format("delta").load(str(root / "nights")).orderBy(F.col("run_date").desc()).first()
    assert night.current_version == spark.sql(f"DESCRIBE HISTORY delta.`{root / 'segments_current'}`") \
        .agg(F.max("version")).first()[0]


def test_a_missing_ids_file_is_a_named_error(spark, lake):
    work, root, dates = lake
    args = ["--ids", str(work / "no-such.csv"), "--run-date", dates[-1].isoformat(), *lake_args(root)]
    assert forget_job.main(args) == IdsNotFoundError.exit_code != 0
    failed = (spark.read.format("delta").load(str(root / "runs"))
              .where((F.col("job") == "forget") & (F.col("status") == "FAILED")).collect())
    assert len(failed) == 1 and failed[0].error.startswith("IdsNotFoundError: forget --ids") \
        and "no such file" in failed[0].error
