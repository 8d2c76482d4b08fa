"""Real-time scoring against the nightly job: the same contract verdicts, feature bits and segments.

Every rule and feature is defined once (`features.rules`, `features.definitions`); Spark and
`segmentation.serving.realtime` (numpy) evaluate those definitions. These tests run both engines on
the bundled customers, on a seeded corruption of them and on one broken customer per rule.
"""

import datetime as dt
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from conftest import BUNDLED_CSV, PROJECT
from pyspark.sql import functions as F
from pyspark.sql.types import DoubleType, IntegerType, StringType, StructField, StructType
from sklearn.cluster import KMeans

from segmentation.core.columns import (
    CORRUPT_COLUMN,
    FEATURE_COLUMNS,
    FLOAT32_MAX,
    ID_COLUMN,
    LOG_COLUMNS,
    RAW_NUMERIC_COLUMNS,
)
from segmentation.core.config import ContractConfig, FeaturesConfig, ForestConfig, ImputationConfig, TransformConfig
from segmentation.core.errors import ContractViolationError, InputError, NonFiniteFeatureError
from segmentation.features.cleaning import compute_medians, fill_missing, select_raw_columns
from segmentation.features.contract import REASONS, check_rows
from segmentation.features.derived import add_features
from segmentation.io import tables
from segmentation.model import store
from segmentation.score.scoring import score
from segmentation.serving import realtime
from segmentation.train.classifier import train_forest
from segmentation.train.preprocessing import LogScaler

CONTRACT = ContractConfig()
IMPUTATION = ImputationConfig()
NULLABLE = list(IMPUTATION.columns)
EPSILON = FeaturesConfig().ratio_epsilon
COLUMNS = [ID_COLUMN, *RAW_NUMERIC_COLUMNS]
# Rows keyed by their place in the request: ids repeat or are missing in the corrupted frames.
SCHEMA = StructType(
    [StructField(ID_COLUMN, StringType()), *[StructField(c, DoubleType()) for c in RAW_NUMERIC_COLUMNS],
     StructField("_row", IntegerType(), False)]
)
NAN, INF = float("nan"), float("inf")

# A customer that keeps every rule (the bundled file's C10001).
VALID = {
    "CUST_ID": "C10001", "BALANCE": 40.900749, "BALANCE_FREQUENCY": 0.818182, "PURCHASES": 95.4,
    "ONEOFF_PURCHASES": 0.0, "INSTALLMENTS_PURCHASES": 95.4, "CASH_ADVANCE": 0.0, "PURCHASES_FREQUENCY": 0.166667,
    "ONEOFF_PURCHASES_FREQUENCY": 0.0, "PURCHASES_INSTALLMENTS_FREQUENCY": 0.083333, "CASH_ADVANCE_FREQUENCY": 0.0,
    "CASH_ADVANCE_TRX": 0.0, "PURCHASES_TRX": 2.0, "CREDIT_LIMIT": 1000.0, "PAYMENTS": 201.802084,
    "MINIMUM_PAYMENTS": 139.509787, "PRC_FULL_PAYMENT": 0.0, "TENURE": 12.0,
}


def _object_frame(rows: list[dict]) -> pd.DataFrame:
    """Rows as a request whose columns keep None (a gap) apart from NaN (a value), as Spark does."""
    return pd.DataFrame({c: pd.Series([r[c] for r in rows], dtype=object) for c in COLUMNS})


def _spark_reasons(spark, rows: list[dict]) -> list[list[str]]:
    frame = spark.createDataFrame([(*[r[c] for c in COLUMNS], i) for i, r in enumerate(rows)], SCHEMA)
    found = {r["_row"]: r[REASONS] for r in check_rows(frame, CONTRACT, NULLABLE).select("_row", REASONS).collect()}
    return [found[i] for i in range(len(rows))]


def _spark_features(checked):
    """The features stage as pipeline.run_features runs it: good rows, their medians, fill, features."""
    good = checked.where(F.size(REASONS) == 0).drop(REASONS, CORRUPT_COLUMN)
    medians = compute_medians(good, NULLABLE, IMPUTATION.method, IMPUTATION.accuracy)
    return medians, good.transform(fill_missing, medians).transform(add_features, EPSILON)


def _assert_same_features(spark_features: pd.DataFrame, ours: pd.DataFrame) -> None:
    assert ours[ID_COLUMN].tolist() == spark_features[ID_COLUMN].tolist()
    for name in FEATURE_COLUMNS:
        # Bit for bit: the float64 each side computed, then the float32 the forest compares.
        expected = spark_features[name].to_numpy(dtype=np.float64)
        np.testing.assert_array_equal(ours[name].to_numpy(), expected, err_msg=name, strict=True)
    with np.errstate(over="ignore"):
        assert np.array_equal(ours[FEATURE_COLUMNS].to_numpy(np.float32),
                              spark_features[FEATURE_COLUMNS].to_numpy(np.float32), equal_nan=True)


# ---------------------------------------------------------------------------------------------
# The bundled customers through both implementations


@pytest.fixture(scope="module")
def customers() -> pd.DataFrame:
    """The bundled file as a model server would be sent it: gaps as pd.NA, doubles parsed exactly."""
    return pd.read_csv(BUNDLED_CSV, dtype_backend="numpy_nullable", float_precision="round_trip")


@pytest.fixture(scope="module")
def night(spark):
    """The nightly features stage on the bundled file: (medians, reasons by id, features frame, its rows)."""
    raw = select_raw_columns(tables.read_raw(spark, str(BUNDLED_CSV), "csv"))
    checked = check_rows(raw, CONTRACT, NULLABLE).persist()
    medians, features = _spark_features(checked)
    features = features.persist()
    verdicts = {r[ID_COLUMN]: r[REASONS] for r in checked.select(ID_COLUMN, REASONS).collect()}  # 8,950 rows
    rows = features.select(ID_COLUMN, *FEATURE_COLUMNS).toPandas().sort_values(ID_COLUMN, ignore_index=True)
    yield medians, verdicts, features, rows
    features.unpersist()
    checked.unpersist()


def test_realtime_module_runs_without_pyspark():
    code = ("import sys, segmentation.serving.realtime, segmentation.core.config; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('pyspark', 'py4j', 'delta')))")
    env = {**os.environ, "PYTHONPATH": str(PROJECT)}
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=PROJECT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_bundled_customers_get_the_same_verdicts_and_feature_bits(night, customers):
    medians, verdicts, _, spark_rows = night
    assert len(customers) == len(verdicts) == 8950
    ours = dict(zip(customers[ID_COLUMN], realtime.reasons(customers, CONTRACT, NULLABLE)))
    assert ours == verdicts
    assert not any(ours.values())  # the bundled file keeps every rule: the corruption test below breaks them
    features = realtime.customer_features(customers, medians, EPSILON)
    _assert_same_features(spark_rows, features.sort_values(ID_COLUMN, ignore_index=True))


# ---------------------------------------------------------------------------------------------
# A seeded corruption of the bundled customers: every rule broken many times, edges kept valid

# Values that break a rule somewhere, and values on the edge of one that break none.
VALUES = [None, NAN, INF, -INF, -1.0, -0.0, 0.0, 0.5, 1.0, 1.01, 1.5, 1.51, 2.5, 5.0, 6.0, 12.0, 12.5, 13.0,
          2.0**63, 1e19, FLOAT32_MAX, 3.5e38, 1e39, -1e39, 1e300]
IDS = [None, "", "  ", "\t", " C10001"]


def _corrupted(customers: pd.DataFrame, seed: int = 7) -> list[dict]:
    rng = np.random.default_rng(seed)
    rows = [{c: v if v is None or c == ID_COLUMN else float(v) for c, v in r.items()}
            for r in customers[COLUMNS].astype(object).replace({pd.NA: None}).to_dict("records")]
    for i in rng.choice(len(rows), size=len(rows) // 3, replace=False).tolist():
        row, kind = rows[i], int(rng.integers(6))
        if kind <= 2:  # one raw value, or two
            for c in rng.choice(RAW_NUMERIC_COLUMNS, size=1 + (kind == 1), replace=False).tolist():
                row[c] = VALUES[int(rng.integers(len(VALUES)))]
        elif kind == 3:  # the cross-column rules, at and beyond their edges
            row["PURCHASES"] = row["ONEOFF_PURCHASES"] + row["INSTALLMENTS_PURCHASES"] + [0.0, 0.01, 0.02][i % 3]
            row["CASH_ADVANCE"] = [0.0, row["CASH_ADVANCE"]][i % 2]
        elif kind == 4:  # another customer's id: a duplicate within the request
            row[ID_COLUMN] = rows[int(rng.integers(len(rows)))][ID_COLUMN]
        else:
            row[ID_COLUMN] = IDS[int(rng.integers(len(IDS)))]
    return rows


def test_corrupted_customers_get_the_same_verdicts_and_feature_bits(spark, customers):
    rows = _corrupted(customers)
    request = _object_frame(rows)
    expected = _spark_reasons(spark, rows)
    ours = realtime.reasons(request, CONTRACT, NULLABLE)
    differ = [(i, rows[i], ours[i], expected[i]) for i in range(len(rows)) if ours[i] != expected[i]]
    assert not differ, differ[:3]
    # Every rule was broken: 15 missing_value, 17 not_finite, 17 out_of_float32_range, 8 negative_amount,
    # 6 out_of_range, 2 not_a_count, missing id, tenure, the two cross-column rules and duplicates.
    assert len({r for found in expected for r in found}) == 70

    frame = spark.createDataFrame([(*[r[c] for c in COLUMNS], i) for i, r in enumerate(rows)], SCHEMA)
    medians, features = _spark_features(check_rows(frame, CONTRACT, NULLABLE))
    spark_rows = features.orderBy("_row").select(ID_COLUMN, *FEATURE_COLUMNS).toPandas()
    good = [i for i, found in enumerate(expected) if not found]
    ours = realtime.customer_features(request.iloc[good], medians, EPSILON).reset_index(drop=True)
    assert len(ours) == len(spark_rows) > 5000
    _assert_same_features(spark_rows, ours)


# ---------------------------------------------------------------------------------------------
# The same segments as the nightly scoring


@pytest.fixture(scope="module")
def bundle(night):
    """A production-sized forest (ForestConfig) taught a 4-means clustering of the night's features."""
    medians, _, _, rows = night
    space = LogScaler(FEATURE_COLUMNS, LOG_COLUMNS, TransformConfig().kind).fit(rows).transform(rows)
    labels = KMeans(n_clusters=4, n_init=1, random_state=0).fit_predict(space)
    forest, _ = train_forest(rows[FEATURE_COLUMNS].to_numpy(dtype=float), labels, ForestConfig())
    return store.ModelBundle(
        version="v-realtime", feature_columns=list(FEATURE_COLUMNS), preprocessor=None, forest=forest,
        segment_names={k: f"Segment {k}" for k in range(4)}, imputation=medians, metrics={},
    )


def test_every_bundled_customer_gets_the_nightly_segment_and_confidence(night, customers, bundle):
    _, _, features, _ = night
    nightly = (
        score(features, bundle, dt.date(2026, 3, 1), dt.datetime(2026, 3, 1, 2))
        .select(ID_COLUMN, "segment_id", "segment_name", "segment_confidence")
        .toPandas().sort_values(ID_COLUMN, ignore_index=True)
    )
    ours = realtime.assign(bundle, customers, CONTRACT, NULLABLE, EPSILON)
    assert list(ours.columns) == realtime.SEGMENT_COLUMNS
    assert ours["segment_id"].dtype == np.int32 and ours["segment_confidence"].dtype == np.float64
    ours = ours.sort_values(ID_COLUMN, ignore_index=True)
    assert len(ours) == len(nightly) == 8950
    assert ours[ID_COLUMN].tolist() == nightly[ID_COLUMN].tolist()
    assert ours["segment_id"].tolist() == nightly["segment_id"].tolist()
    assert ours["segment_name"].tolist() == nightly["segment_name"].tolist()
    np.testing.assert_array_equal(ours["segment_confidence"].to_numpy(), nightly["segment_confidence"].to_numpy())
    assert nightly["segment_id"].nunique() == 4

    # One customer per request, as a model server calls it: the same answer as in the batch.
    by_id = nightly.set_index(ID_COLUMN)
    for i in range(0, len(customers), 45):
        (answer,) = realtime.assign(bundle, customers.iloc[[i]], CONTRACT, NULLABLE, EPSILON).itertuples(index=False)
        assert answer[1:] == tuple(by_id.loc[answer[0]]), answer


# ---------------------------------------------------------------------------------------------
# One broken customer per rule: the error names exactly the rule the quarantine names

CASES = [  # (case, changes to VALID per row of the request, rule the last row breaks or None)
    ("negative amount", [{"BALANCE": -0.01}], "negative_amount:BALANCE"),
    ("NaN", [{"PAYMENTS": NAN}], "not_finite:PAYMENTS"),
    ("NaN in an imputed column", [{"MINIMUM_PAYMENTS": NAN}], "not_finite:MINIMUM_PAYMENTS"),
    ("infinity", [{"CASH_ADVANCE": INF}], "not_finite:CASH_ADVANCE"),
    ("minus infinity", [{"CREDIT_LIMIT": -INF}], "not_finite:CREDIT_LIMIT"),
    ("NaN tenure", [{"TENURE": NAN}], "not_finite:TENURE"),
    ("beyond float32", [{"CREDIT_LIMIT": 1e39}], "out_of_float32_range:CREDIT_LIMIT"),
    ("share above 1", [{"PRC_FULL_PAYMENT": 1.01}], "out_of_range:PRC_FULL_PAYMENT"),
    ("negative share", [{"BALANCE_FREQUENCY": -0.1}], "out_of_range:BALANCE_FREQUENCY"),
    ("cash-advance frequency above 1.5",
     [{"CASH_ADVANCE": 10.0, "CASH_ADVANCE_TRX": 1.0, "CASH_ADVANCE_FREQUENCY": 1.51}],
     "out_of_range:CASH_ADVANCE_FREQUENCY"),
    ("fractional count", [{"PURCHASES_TRX": 2.5}], "not_a_count:PURCHASES_TRX"),
    ("negative count", [{"PURCHASES_TRX": -1.0}], "not_a_count:PURCHASES_TRX"),
    # Spark's floor is a bigint, saturated at 2^63: a larger count is "not a count" there too.
    ("count beyond a bigint", [{"PURCHASES_TRX": 1e19}], "not_a_count:PURCHASES_TRX"),
    ("tenure 5", [{"TENURE": 5.0}], "tenure_out_of_range"),
    ("tenure 12.5", [{"TENURE": 12.5}], "tenure_out_of_range"),
    ("purchases exceed parts", [{"PURCHASES": 95.42}], "purchases_exceed_parts"),
    ("cash advance without transactions", [{"CASH_ADVANCE": 10.0}], "cash_advance_inconsistent"),
    ("transactions without cash advance", [{"CASH_ADVANCE_TRX": 1.0}], "cash_advance_inconsistent"),
    ("frequency without cash advance", [{"CASH_ADVANCE_FREQUENCY": 0.1}], "cash_advance_inconsistent"),
    ("missing id", [{"CUST_ID": None}], "missing_cust_id"),
    ("blank id", [{"CUST_ID": "  "}], "missing_cust_id"),
    ("missing value", [{"BALANCE": None}], "missing_value:BALANCE"),
    ("duplicate id in one request", [{}, {"BALANCE": 41.0}], "duplicate_cust_id"),
    # Edges that keep the contract, on both sides.
    ("largest float32", [{"CREDIT_LIMIT": FLOAT32_MAX}], None),
    ("count of 2^63", [{"PURCHASES_TRX": 2.0**63}], None),
    ("tenure 6", [{"TENURE": 6.0}], None),
    ("cash-advance frequency 1.5",
     [{"CASH_ADVANCE": 10.0, "CASH_ADVANCE_TRX": 1.0, "CASH_ADVANCE_FREQUENCY": 1.5}], None),
    ("purchases at the tolerance", [{"PURCHASES": 95.41}], None),
    ("negative zero", [{"BALANCE": -0.0}], None),
    ("id with a tab (Spark's trim keeps it)", [{"CUST_ID": "\t"}], None),
    ("gap in an imputed column", [{"MINIMUM_PAYMENTS": None, "CREDIT_LIMIT": None}], None),
]


def _case_rows(case: int) -> list[dict]:
    _, changes, _ = CASES[case]
    return [{**VALID, ID_COLUMN: f"R{case}", **change} for change in changes]


@pytest.fixture(scope="module")
def spark_cases(spark):
    """Every case checked by Spark in one frame (ids differ between cases): case -> reasons per row."""
    rows = [(case, row) for case in range(len(CASES)) for row in _case_rows(case)]
    found = _spark_reasons(spark, [row for _, row in rows])
    out: dict[int, list[list[str]]] = {}
    for (case, _), reasons in zip(rows, found):
        out.setdefault(case, []).append(reasons)
    return out


@pytest.mark.parametrize("case", range(len(CASES)), ids=[c[0] for c in CASES])
def test_a_broken_customer_is_refused_by_the_rule_the_quarantine_names(spark_cases, case):
    _, changes, rule = CASES[case]
    rows = _case_rows(case)
    expected = [[] for _ in rows[:-1]] + [[rule] if rule else []]
    assert spark_cases[case] == expected
    request = pd.DataFrame(rows)  # as a server builds it from JSON objects
    if rule is None:
        realtime.check_customers(request, CONTRACT, NULLABLE)
        return
    with pytest.raises(ContractViolationError) as caught:
        realtime.check_customers(request, CONTRACT, NULLABLE)
    cid = rows[-1][ID_COLUMN]
    who = f"customer {cid}" if rule != "missing_cust_id" else f"the customer in row 0 of the request (no {ID_COLUMN})"
    assert str(caught.value) == f"{who} breaks the data contract: {rule}"
    assert caught.value.violations == [(len(rows) - 1, cid, [rule])]


def test_every_broken_rule_is_named_in_the_quarantine_order():
    request = pd.DataFrame([{**VALID, "BALANCE": -1.0, "TENURE": 5.0}, {**VALID, "CUST_ID": "C2", "PAYMENTS": NAN}])
    with pytest.raises(ContractViolationError) as caught:
        realtime.check_customers(request, CONTRACT, NULLABLE)
    assert str(caught.value) == (
        "customer C10001 breaks the data contract: negative_amount:BALANCE, tenure_out_of_range; "
        "customer C2 breaks the data contract: not_finite:PAYMENTS"
    )


# ---------------------------------------------------------------------------------------------
# Gaps, and requests that are not customers


@pytest.mark.parametrize("gap", [None, pd.NA], ids=["None", "pd.NA"])
def test_a_gap_in_minimum_payments_is_imputed_with_the_given_median(gap):
    request = pd.DataFrame([{**VALID, "MINIMUM_PAYMENTS": gap}])
    realtime.check_customers(request, CONTRACT, NULLABLE)
    (row,) = realtime.customer_features(request, {"MINIMUM_PAYMENTS": 312.343947, "CREDIT_LIMIT": 3000.0},
                                        EPSILON).to_dict("records")
    assert row["MINIMUM_PAYMENTS"] == 312.343947
    assert row["PAYMENT_MINPAY_RATIO"] == 201.802084 / (312.343947 + 1e-6)
    assert row["CREDIT_LIMIT"] == 1000.0 and row["LIMIT_USAGE"] == 40.900749 / 1000.0


def test_a_gap_is_scored_as_the_bundle_median(bundle):
    median = bundle.imputation["MINIMUM_PAYMENTS"]
    gap = realtime.assign(bundle, pd.DataFrame([{**VALID, "MINIMUM_PAYMENTS": None}]), CONTRACT, NULLABLE, EPSILON)
    filled = realtime.assign(bundle, pd.DataFrame([{**VALID, "MINIMUM_PAYMENTS": median}]), CONTRACT, NULLABLE, EPSILON)
    assert gap.to_dict("records") == filled.to_dict("records")


def test_a_feature_beyond_float32_is_refused_as_scoring_refuses_it(bundle):
    request = pd.DataFrame([{**VALID, "BALANCE": 3e38, "CREDIT_LIMIT": 0.5}])  # LIMIT_USAGE 6e38
    realtime.check_customers(request, CONTRACT, NULLABLE)
    with pytest.raises(NonFiniteFeatureError, match="feature LIMIT_USAGE of customer C10001 is beyond float32's range"):
        realtime.assign(bundle, request, CONTRACT, NULLABLE, EPSILON)


NOT_CUSTOMERS = [  # (case, request, message)
    ("missing column", pd.DataFrame([VALID]).drop(columns="TENURE"), "input is missing required column(s): TENURE"),
    ("text", pd.DataFrame([{**VALID, "BALANCE": "12x"}]), "input column(s) must be numeric: BALANCE ('12x' is a str)"),
    ("boolean", pd.DataFrame([{**VALID, "BALANCE": True}]), "input column(s) must be numeric: BALANCE (bool)"),
    ("float id", pd.DataFrame([{**VALID, "CUST_ID": 10001.0}]), "CUST_ID must be text or an integer: got 10001.0 (float)"),
]


@pytest.mark.parametrize("request_, message", [c[1:] for c in NOT_CUSTOMERS], ids=[c[0] for c in NOT_CUSTOMERS])
def test_a_request_that_is_not_a_customer_table_is_refused_by_name(request_, message):
    with pytest.raises(InputError) as caught:
        realtime.check_customers(request_, CONTRACT, NULLABLE)
    assert not isinstance(caught.value, ContractViolationError)
    assert str(caught.value) == message


def test_an_integer_id_is_read_as_spark_casts_it():
    request = pd.DataFrame([{**VALID, "CUST_ID": 10001}])
    (row,) = realtime.customer_features(request, {}, EPSILON).to_dict("records")
    assert row[ID_COLUMN] == "10001" and row["MONTHLY_AVG_PURCHASES"] == 95.4 / 12
