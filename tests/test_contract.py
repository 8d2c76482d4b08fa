"""The data contract's row rules on tiny inline frames: NaN, infinities, float32's range and duplicates."""

import pytest
from pyspark.sql.types import DoubleType, StringType, StructField, StructType
from pyspark.testing import assertDataFrameEqual

from segmentation.core.columns import RAW_NUMERIC_COLUMNS
from segmentation.core.config import ContractConfig
from segmentation.features import contract
from segmentation.features.contract import FLOAT32_MAX, check_rows

SCHEMA = StructType([StructField("CUST_ID", StringType())] + [StructField(c, DoubleType()) for c in RAW_NUMERIC_COLUMNS])
NULLABLE = ["MINIMUM_PAYMENTS", "CREDIT_LIMIT"]

# A customer that keeps every rule (the bundled file's C10001).
VALID = {
    "BALANCE": 40.900749, "BALANCE_FREQUENCY": 0.818182, "PURCHASES": 95.4, "ONEOFF_PURCHASES": 0.0,
    "INSTALLMENTS_PURCHASES": 95.4, "CASH_ADVANCE": 0.0, "PURCHASES_FREQUENCY": 0.166667,
    "ONEOFF_PURCHASES_FREQUENCY": 0.0, "PURCHASES_INSTALLMENTS_FREQUENCY": 0.083333, "CASH_ADVANCE_FREQUENCY": 0.0,
    "CASH_ADVANCE_TRX": 0.0, "PURCHASES_TRX": 2.0, "CREDIT_LIMIT": 1000.0, "PAYMENTS": 201.802084,
    "MINIMUM_PAYMENTS": 139.509787, "PRC_FULL_PAYMENT": 0.0, "TENURE": 12.0,
}


CASES = [  # (values changed from VALID, the reasons expected in order)
        # Spark sorts NaN above every number: `NaN < 0` is false, so the money rule alone let it through.
        ({"BALANCE": float("nan")}, ["not_finite:BALANCE"]),
        ({"PAYMENTS": float("inf")}, ["not_finite:PAYMENTS"]),
        ({"CASH_ADVANCE": float("-inf")}, ["not_finite:CASH_ADVANCE"]),
        # Non-finite values trip no unrelated rule (NaN > 1 is true in Spark, a frequency is judged once).
        ({"PURCHASES_FREQUENCY": float("nan")}, ["not_finite:PURCHASES_FREQUENCY"]),
        ({"TENURE": float("nan")}, ["not_finite:TENURE"]),
        # Imputed columns may be null, never NaN.
        ({"MINIMUM_PAYMENTS": float("nan")}, ["not_finite:MINIMUM_PAYMENTS"]),
        ({"CREDIT_LIMIT": 1e39}, ["out_of_float32_range:CREDIT_LIMIT"]),
        ({"PAYMENTS": 3.5e38}, ["out_of_float32_range:PAYMENTS"]),
        ({"BALANCE": -1e39}, ["out_of_float32_range:BALANCE", "negative_amount:BALANCE"]),
        # Every numeric column has both rules.
        ({c: float("nan") for c in RAW_NUMERIC_COLUMNS}, [f"not_finite:{c}" for c in RAW_NUMERIC_COLUMNS]),
        # The largest float32 is still a number scoring can compare; a null in an imputed column is a gap.
        ({"CREDIT_LIMIT": FLOAT32_MAX, "PAYMENTS": FLOAT32_MAX}, []),
        ({"MINIMUM_PAYMENTS": None}, []),
        ({}, []),
]


@pytest.fixture(scope="module")
def checked(spark):
    """Every case as one row of one frame, checked in one pass: case index -> reasons."""
    rows = [(str(i), *[changes.get(c, VALID[c]) for c in RAW_NUMERIC_COLUMNS]) for i, (changes, _) in enumerate(CASES)]
    out = check_rows(spark.createDataFrame(rows, SCHEMA), ContractConfig(), nullable=NULLABLE).collect()
    return {int(r["CUST_ID"]): r["_reasons"] for r in out}


@pytest.mark.parametrize("case", range(len(CASES)))
def test_non_finite_and_beyond_float32_values_are_named(checked, case):
    assert checked[case] == CASES[case][1], CASES[case][0]


def test_every_numeric_column_is_checked_against_float32(spark):
    row = ("C1", *[1e300] * len(RAW_NUMERIC_COLUMNS))
    (out,) = check_rows(spark.createDataFrame([row], SCHEMA), ContractConfig(), nullable=NULLABLE).collect()
    assert {f"out_of_float32_range:{c}" for c in RAW_NUMERIC_COLUMNS} <= set(out["_reasons"])


DUPLICATES = [  # (CUST_ID, BALANCE, the reasons expected): one CUST_ID's rows are spread over partitions
    ("A", 5.0, ["duplicate_cust_id"]),
    ("A", 3.0, []),  # the smallest of three valid rows survives
    ("A", 4.0, ["duplicate_cust_id"]),
    ("B", -1.0, ["negative_amount:BALANCE", "duplicate_cust_id"]),
    ("B", 10.0, []),  # valid beats smaller but invalid
    ("C", 7.0, []),  # two identical rows: exactly one survives
    ("C", 7.0, ["duplicate_cust_id"]),
    ("D", 1.0, []),
    (None, 2.0, ["missing_cust_id"]),  # rows without an id are no one's duplicates
    (None, 2.0, ["missing_cust_id"]),
]


@pytest.mark.parametrize("broadcast_limit", [1_000_000, 1], ids=["broadcast", "window"])
def test_duplicates_across_partitions_keep_the_smallest_valid_row(spark, monkeypatch, broadcast_limit):
    monkeypatch.setattr(contract, "MAX_BROADCAST_DUPLICATE_IDS", broadcast_limit)
    rows = [(cust_id, *[balance if c == "BALANCE" else VALID[c] for c in RAW_NUMERIC_COLUMNS])
            for cust_id, balance, _ in DUPLICATES]
    frame = spark.createDataFrame(rows, SCHEMA).repartition(3)  # round robin: each id's rows apart
    out = check_rows(frame, ContractConfig(), nullable=NULLABLE).select("CUST_ID", "BALANCE", "_reasons")
    expected = spark.createDataFrame(DUPLICATES, "CUST_ID string, BALANCE double, _reasons array<string>")
    assertDataFrameEqual(out, expected)  # any row order
