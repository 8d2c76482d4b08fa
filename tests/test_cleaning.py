import pytest
from pyspark.sql.types import DoubleType, IntegerType, StringType, StructField, StructType

from segmentation.core.columns import RAW_NUMERIC_COLUMNS
from segmentation.core.errors import InputError
from segmentation.features.cleaning import compute_medians, fill_missing, select_raw_columns

SMALL = StructType(
    [
        StructField("CUST_ID", StringType()),
        StructField("MINIMUM_PAYMENTS", DoubleType()),
        StructField("CREDIT_LIMIT", DoubleType()),
    ]
)


def test_exact_median_interpolates_like_pandas(spark):
    df = spark.createDataFrame(
        [("a", 1.0, 100.0), ("b", 2.0, None), ("c", 10.0, 300.0), ("d", None, 400.0), ("e", 20.0, 200.0)],
        SMALL,
    )
    medians = compute_medians(df, ["MINIMUM_PAYMENTS", "CREDIT_LIMIT"], method="exact")
    # non-null values: [1, 2, 10, 20] -> 6.0 ; [100, 200, 300, 400] -> 250.0
    assert medians == {"MINIMUM_PAYMENTS": 6.0, "CREDIT_LIMIT": 250.0}


def test_approx_median_is_a_middle_element(spark):
    df = spark.createDataFrame([("a", 1.0, 5.0), ("b", 3.0, 5.0), ("c", 9.0, None)], SMALL)
    medians = compute_medians(df, ["MINIMUM_PAYMENTS", "CREDIT_LIMIT"], method="approx")
    assert medians == {"MINIMUM_PAYMENTS": 3.0, "CREDIT_LIMIT": 5.0}


def test_fill_missing_touches_only_nulls(spark):
    df = spark.createDataFrame([("a", None, 7.0), ("b", 2.0, None)], SMALL)
    out = fill_missing(df, {"MINIMUM_PAYMENTS": 6.0, "CREDIT_LIMIT": 250.0}).orderBy("CUST_ID").collect()
    assert [(r.MINIMUM_PAYMENTS, r.CREDIT_LIMIT) for r in out] == [(6.0, 7.0), (2.0, 250.0)]


def test_all_null_column_cannot_be_imputed(spark):
    df = spark.createDataFrame([("a", None, 1.0)], SMALL)
    with pytest.raises(InputError, match="MINIMUM_PAYMENTS"):
        compute_medians(df, ["MINIMUM_PAYMENTS"], method="exact")


def _raw_schema(overrides=None):
    overrides = overrides or {}
    return StructType(
        [StructField("CUST_ID", StringType())]
        + [StructField(c, overrides.get(c, DoubleType())) for c in RAW_NUMERIC_COLUMNS]
    )


def test_select_raw_columns_matches_by_name_and_casts(spark):
    schema = _raw_schema({"TENURE": IntegerType()})
    reordered = StructType(list(reversed(schema.fields)) + [StructField("EXTRA", StringType())])
    row = {f.name: (12 if f.name == "TENURE" else ("x" if f.dataType == StringType() else 1.0)) for f in reordered}
    row["CUST_ID"] = "C1"
    df = spark.createDataFrame([tuple(row[f.name] for f in reordered.fields)], reordered)
    out = select_raw_columns(df)
    assert out.columns == ["CUST_ID", *RAW_NUMERIC_COLUMNS]
    assert dict(out.dtypes)["TENURE"] == "double"
    assert out.first().TENURE == 12.0


def test_missing_and_non_numeric_columns_are_named(spark):
    missing = StructType([f for f in _raw_schema().fields if f.name != "PAYMENTS"])
    with pytest.raises(InputError, match="missing required column.*PAYMENTS"):
        select_raw_columns(spark.createDataFrame([], missing))
    wrong = _raw_schema({"BALANCE": StringType()})
    with pytest.raises(InputError, match=r"BALANCE \(string\)"):
        select_raw_columns(spark.createDataFrame([], wrong))
