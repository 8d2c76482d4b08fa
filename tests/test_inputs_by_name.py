"""The raw input is read by column name, whatever its form: CSV folders, compressed CSV."""

import bz2
import gzip

import pandas as pd
import pytest
from conftest import BUNDLED_CSV
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from segmentation.core.columns import CORRUPT_COLUMN
from segmentation.core.errors import InputError
from segmentation.io import tables

FRAME = pd.read_csv(BUNDLED_CSV, nrows=12, dtype=str)
NAMES = list(FRAME.columns)


def _csv(frame: pd.DataFrame) -> str:
    return frame.to_csv(index=False)


def _expected(spark, frame: pd.DataFrame):
    """The frame as read by name: every value in its own column, typed by the contract."""
    rows = [tuple(None if pd.isna(v) else (v if n == "CUST_ID" else float(v)) for n, v in zip(NAMES, r)) + (None,)
            for r in frame[NAMES].itertuples(index=False)]
    return spark.createDataFrame(rows, tables.csv_schema(NAMES))


def test_a_csv_folder_is_read_by_each_files_own_header(spark, tmp_path):
    folder = tmp_path / "night"
    folder.mkdir()
    (folder / "part-1.csv").write_text(_csv(FRAME.iloc[:6]))
    (folder / "part-2.csv").write_text(_csv(FRAME.iloc[6:][list(reversed(NAMES))]))  # columns reversed
    (folder / "_SUCCESS").write_text("")
    assert tables.input_kind(str(folder), "auto") == "csv"  # a folder of CSV files, no longer taken as Parquet
    for fmt in ("auto", "csv"):
        read = tables.read_raw(spark, str(folder), fmt)
        assertDataFrameEqual(read.select(*NAMES, CORRUPT_COLUMN), _expected(spark, FRAME))


def test_files_naming_other_columns_are_refused_naming_both(spark, tmp_path):
    folder = tmp_path / "night"
    folder.mkdir()
    (folder / "a.csv").write_text(_csv(FRAME.iloc[:6]))
    (folder / "b.csv").write_text(_csv(FRAME.iloc[6:].rename(columns={"BALANCE": "BALANCE_EUR"})))
    with pytest.raises(InputError, match=r"b\.csv has the header .*BALANCE_EUR.* but .*a\.csv has .*BALANCE,") as exc:
        tables.read_raw(spark, str(folder), "csv")
    assert "Traceback" not in str(exc.value)


@pytest.mark.parametrize("suffix, compress", [(".csv.gz", gzip.compress), (".csv.bz2", bz2.compress)])
def test_compressed_csv_is_read_as_csv(spark, tmp_path, suffix, compress):
    path = tmp_path / f"customers{suffix}"
    path.write_bytes(compress(_csv(FRAME[list(reversed(NAMES))]).encode()))
    assert tables.input_kind(str(path), "auto") == "csv"
    assert tables.input_kind(f"s3a://bucket/in/customers{suffix.upper()}", "auto") == "csv"
    read = tables.read_raw(spark, str(path))
    assertDataFrameEqual(read.select(*NAMES, CORRUPT_COLUMN), _expected(spark, FRAME))
    assert read.where(F.col("CUST_ID").isNull()).count() == 0


def test_a_folder_of_gzipped_csv_in_two_orders(spark, tmp_path):
    folder = tmp_path / "night"
    folder.mkdir()
    (folder / "a.csv.gz").write_bytes(gzip.compress(_csv(FRAME.iloc[:5]).encode()))
    (folder / "b.csv.gz").write_bytes(gzip.compress(_csv(FRAME.iloc[5:][NAMES[1:] + NAMES[:1]]).encode()))
    read = tables.read_raw(spark, str(folder))
    assertDataFrameEqual(read.select(*NAMES, CORRUPT_COLUMN), _expected(spark, FRAME))


def test_an_empty_csv_folder_is_a_named_error(spark, tmp_path):
    folder = tmp_path / "night"
    folder.mkdir()
    (folder / "a.csv").write_text("")
    with pytest.raises(InputError, match="is empty"):
        tables.read_raw(spark, str(folder), "csv")

