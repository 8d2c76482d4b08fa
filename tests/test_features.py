import pytest
from pyspark.sql.types import DoubleType, StringType, StructField, StructType

from segmentation.core.columns import FEATURE_COLUMNS, INDICATOR_COLUMNS, LOG_COLUMNS
from segmentation.features.derived import add_features

COLUMNS = ["BALANCE", "CREDIT_LIMIT", "PAYMENTS", "MINIMUM_PAYMENTS", "ONEOFF_PURCHASES",
           "INSTALLMENTS_PURCHASES", "PURCHASES", "CASH_ADVANCE", "TENURE"]
SCHEMA = StructType([StructField("CUST_ID", StringType())] + [StructField(c, DoubleType()) for c in COLUMNS])


def _features(spark, rows):
    df = spark.createDataFrame([(f"C{i}", *map(float, r)) for i, r in enumerate(rows)], SCHEMA)
    return {r.CUST_ID: r for r in add_features(df, ratio_epsilon=1e-6).collect()}


def test_limit_usage_including_a_zero_limit(spark):
    out = _features(spark, [
        (500.0, 1000.0, 0, 1, 0, 0, 0, 0, 12),
        (0.0, 0.0, 0, 1, 0, 0, 0, 0, 12),    # no limit, no balance: nothing used
        (50.0, 0.0, 0, 1, 0, 0, 0, 0, 12),   # no limit, a balance: fully used
    ])
    assert [out[f"C{i}"].LIMIT_USAGE for i in range(3)] == [0.5, 0.0, 1.0]


def test_payment_minpay_ratio_with_zero_minimum(spark):
    out = _features(spark, [
        (0, 1000.0, 200.0, 100.0, 0, 0, 0, 0, 12),
        (0, 1000.0, 5.0, 0.0, 0, 0, 0, 0, 12),
    ])
    assert out["C0"].PAYMENT_MINPAY_RATIO == pytest.approx(200.0 / (100.0 + 1e-6))
    assert out["C1"].PAYMENT_MINPAY_RATIO == pytest.approx(5.0 / 1e-6)


def test_monthly_averages_and_zero_tenure(spark):
    out = _features(spark, [
        (0, 1000.0, 0, 1, 0, 0, 120.0, 60.0, 12.0),
        (0, 1000.0, 0, 1, 0, 0, 30.0, 9.0, 0.0),  # under one month counts as one month
    ])
    assert (out["C0"].MONTHLY_AVG_PURCHASES, out["C0"].MONTHLY_CASH_ADVANCE) == (10.0, 5.0)
    assert (out["C1"].MONTHLY_AVG_PURCHASES, out["C1"].MONTHLY_CASH_ADVANCE) == (30.0, 9.0)


def test_purchase_type_one_hot(spark):
    out = _features(spark, [
        (0, 1, 0, 1, 10.0, 5.0, 15, 0, 12),
        (0, 1, 0, 1, 10.0, 0.0, 10, 0, 12),
        (0, 1, 0, 1, 0.0, 5.0, 5, 0, 12),
        (0, 1, 0, 1, 0.0, 0.0, 0, 0, 12),
    ])
    expected = ["both", "one_off", "installments", "none"]
    for i, kind in enumerate(expected):
        row = out[f"C{i}"]
        assert row.PURCHASE_TYPE == kind
        assert [row[c] for c in INDICATOR_COLUMNS] == [1.0 if c == f"PURCHASE_{kind}" else 0.0 for c in INDICATOR_COLUMNS]


def test_feature_lists_follow_the_notebook_order():
    assert len(FEATURE_COLUMNS) == 25
    assert FEATURE_COLUMNS[17:] == ["LIMIT_USAGE", "PAYMENT_MINPAY_RATIO", "PURCHASE_both", "PURCHASE_installments",
                                    "PURCHASE_none", "PURCHASE_one_off", "MONTHLY_AVG_PURCHASES", "MONTHLY_CASH_ADVANCE"]
    assert len(LOG_COLUMNS) == 21 and not set(LOG_COLUMNS) & set(INDICATOR_COLUMNS)
