import datetime as dt

import pytest
from pyspark.sql.types import DateType, LongType, StructField, StructType

from segmentation import tables
from segmentation.errors import ArgumentError, FeaturesNotFoundError, InputError

SCHEMA = StructType([StructField("id", LongType()), StructField("run_date", DateType())])
D1, D2 = dt.date(2026, 1, 1), dt.date(2026, 1, 2)


def test_replace_run_is_idempotent_and_leaves_other_dates(spark, tmp_path):
    ref = tables.TableRef(path=str(tmp_path / "t"))
    tables.replace_run(spark.createDataFrame([(1, D1), (2, D1)], SCHEMA), ref, D1)
    tables.replace_run(spark.createDataFrame([(3, D2)], SCHEMA), ref, D2)
    tables.replace_run(spark.createDataFrame([(1, D1), (2, D1)], SCHEMA), ref, D1)
    assert tables.read_run(spark, ref, D1).count() == 2
    assert [r.id for r in tables.read_run(spark, ref, D2).collect()] == [3]


def test_reading_a_missing_table_is_a_named_error(spark, tmp_path):
    with pytest.raises(FeaturesNotFoundError, match="run the features job first"):
        tables.read_run(spark, tables.TableRef(path=str(tmp_path / "nope")), D1)
    with pytest.raises(InputError, match="input not found"):
        tables.read_raw(spark, str(tmp_path / "missing.csv"))


@pytest.mark.parametrize("text", ["2026-13-01", "yesterday", "2026-01-01' OR 1=1 --", ""])
def test_run_date_must_parse(text):
    with pytest.raises(ArgumentError, match="YYYY-MM-DD"):
        tables.parse_run_date(text)


@pytest.mark.parametrize("name", ["main.seg.features", "features", "a_b.c"])
def test_identifiers_accepted(name):
    assert tables.check_identifier(name) == name


@pytest.mark.parametrize("name", ["a.b.c.d", "x; DROP TABLE y", "1abc", "a..b", "`x`"])
def test_identifiers_rejected(name):
    with pytest.raises(ArgumentError, match="not a table name"):
        tables.check_identifier(name)


def test_input_kind_detection(tmp_path):
    assert tables.input_kind("data/x.csv", "auto") == "csv"
    assert tables.input_kind("s3a://b/x.parquet", "auto") == "parquet"
    assert tables.input_kind("main.raw.customers", "auto") == "table"
    (tmp_path / "d" / "_delta_log").mkdir(parents=True)
    assert tables.input_kind(str(tmp_path / "d"), "auto") == "delta"
