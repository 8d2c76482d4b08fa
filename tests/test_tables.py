import datetime as dt

import pytest
from pyspark.sql.types import DateType, DoubleType, LongType, StructField, StructType

from segmentation.core.errors import ArgumentError, FeaturesNotFoundError, InputError
from segmentation.io import tables

SCHEMA = StructType([StructField("id", LongType()), StructField("run_date", DateType())])
D1, D2 = dt.date(2026, 1, 1), dt.date(2026, 1, 2)


def test_replace_run_is_idempotent_and_leaves_other_dates(spark, tmp_path):
    ref = tables.TableRef(path=str(tmp_path / "t"))
    tables.replace_run(spark.createDataFrame([(1, D1), (2, D1)], SCHEMA), ref, D1)
    tables.replace_run(spark.createDataFrame([(3, D2)], SCHEMA), ref, D2)
    tables.replace_run(spark.createDataFrame([(1, D1), (2, D1)], SCHEMA), ref, D1)
    assert tables.read_run(spark, ref, D1).count() == 2
    assert [r.id for r in tables.read_run(spark, ref, D2).collect()] == [3]


def test_holds_run_answers_from_the_log_and_none_without_a_table(spark, tmp_path):
    ref = tables.TableRef(path=str(tmp_path / "t"))
    assert tables.holds_run(spark, ref, D1) is None
    tables.replace_run(spark.createDataFrame([(1, D1)], SCHEMA), ref, D1)
    tables.replace_run(spark.createDataFrame([], SCHEMA), ref, D2)  # an emptied night leaves no file
    assert (tables.holds_run(spark, ref, D1), tables.holds_run(spark, ref, D2)) == (True, False)
    tables.replace_run(spark.createDataFrame([], SCHEMA), ref, D1)
    assert tables.holds_run(spark, ref, D1) is False


def _file_stats(path):
    import json

    stats = []
    for log in sorted((path / "_delta_log").glob("*.json")):
        for line in log.read_text().splitlines():
            action = json.loads(line)
            if "add" in action:
                stats.append(json.loads(action["add"]["stats"]))
    return stats


@pytest.mark.parametrize("columns, kept", [(["score"], {"score"}), ([], set())])
def test_new_tables_keep_statistics_only_on_the_named_columns(spark, tmp_path, columns, kept):
    schema = StructType([StructField("id", LongType()), StructField("score", DoubleType()),
                         StructField("run_date", DateType())])
    ref = tables.TableRef(path=str(tmp_path / "t"))
    tables.replace_run(spark.createDataFrame([(1, 0.5, D1), (2, 0.9, D1)], schema), ref, D1, stats_columns=columns)
    tables.replace_run(spark.createDataFrame([(1, 0.5, D1), (2, 0.9, D1)], schema), ref, D1, stats_columns=columns)
    assert tables.read_run(spark, ref, D1).count() == 2
    stats = _file_stats(tmp_path / "t")
    assert stats and sum(s["numRecords"] for s in stats[-1:]) >= 1
    assert all(set(s.get("minValues", {})) == kept for s in stats)


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


def test_only_deltas_own_conflicts_count_as_write_conflicts(spark):
    from py4j.protocol import Py4JJavaError

    jvm = spark.sparkContext._jvm
    # java.util's own exception is the parent of Delta's conflicts, and no conflict itself.
    plain = jvm.java.util.ConcurrentModificationException("a HashMap changed while iterated")
    assert not tables.is_write_conflict(Py4JJavaError("o1.save", plain))
    for cls in (jvm.io.delta.exceptions.ConcurrentAppendException, jvm.io.delta.exceptions.MetadataChangedException,
                jvm.org.apache.spark.sql.delta.ConcurrentWriteException):
        assert tables.is_write_conflict(Py4JJavaError("o1.save", cls("another writer committed first")))
    # Found as the cause of a wrapping Spark error too.
    wrapped = jvm.org.apache.spark.SparkException("job aborted", jvm.io.delta.exceptions.ConcurrentAppendException("x"))
    assert tables.is_write_conflict(Py4JJavaError("o1.save", wrapped))
    assert not tables.is_write_conflict(Py4JJavaError("o1.save", jvm.org.apache.spark.SparkException("x", plain)))


def test_restore_run_puts_back_one_night_and_leaves_the_others(spark, tmp_path):
    ref = tables.TableRef(path=str(tmp_path / "t"))
    tables.replace_run(spark.createDataFrame([(1, D1), (2, D1)], SCHEMA), ref, D1)
    assert not tables.restore_run(spark, ref, D1, "never-written")  # nothing of that tag to put back
    tables.replace_run(spark.createDataFrame([(9, D1)], SCHEMA), ref, D1, tag="run-a")
    tables.replace_run(spark.createDataFrame([(3, D2)], SCHEMA), ref, D2, tag="other-run")  # another night, meanwhile
    tables.replace_run(spark.createDataFrame([(8, D1)], SCHEMA), ref, D1, tag="run-a")
    assert tables.restore_run(spark, ref, D1, "run-a")
    assert sorted(r.id for r in tables.read_run(spark, ref, D1).collect()) == [1, 2]
    assert [r.id for r in tables.read_run(spark, ref, D2).collect()] == [3]
    # A table this run created: its night is emptied.
    new = tables.TableRef(path=str(tmp_path / "new"))
    tables.replace_run(spark.createDataFrame([(5, D1)], SCHEMA), new, D1, tag="run-b")
    assert tables.restore_run(spark, new, D1, "run-b")
    assert tables.read_run(spark, new, D1).count() == 0


def test_written_rows_are_the_tagged_commits_own_metric(spark, tmp_path):
    ref = tables.TableRef(path=str(tmp_path / "t"))
    tables.replace_run(spark.createDataFrame([(1, D1), (2, D1), (3, D1)], SCHEMA), ref, D1, tag="run-a")
    tables.replace_run(spark.createDataFrame([(4, D2)], SCHEMA), ref, D2, tag="run-b")  # another run, later
    tables.replace_run(spark.createDataFrame([], SCHEMA), ref, D2, tag="run-c")  # no file, no row metric
    assert tables.written_rows(spark, ref, D1, "run-a") == 3
    assert tables.written_rows(spark, ref, D2, "run-b") == 1
    assert tables.written_rows(spark, ref, D2, "run-c") == 0


def test_written_rows_are_counted_without_the_metric(spark, tmp_path):
    ref = tables.TableRef(path=str(tmp_path / "t"))
    spark.conf.set("spark.databricks.delta.history.metricsEnabled", "false")
    try:
        tables.replace_run(spark.createDataFrame([(1, D1), (2, D1)], SCHEMA), ref, D1, tag="run-a")
    finally:
        spark.conf.unset("spark.databricks.delta.history.metricsEnabled")
    assert tables.written_rows(spark, ref, D1, "run-a") == 2
    assert tables.written_rows(spark, ref, D1, "never-committed") == 2  # beyond the history looked at
    # The count is the table's, not the (absent) metric's: a row removed since is not counted.
    tables.delta_table(spark, ref).delete("id = 2")
    assert tables.written_rows(spark, ref, D1, "run-a") == 1
