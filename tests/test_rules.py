"""The contract and the features are defined once: both engines evaluate the one definition.

A rule changed through config changes the verdict of the Spark job and of real-time scoring
alike; the rule names keep the quarantine's order; and the numpy backend gives Spark's answer
for every operation, on nulls, NaN, infinities, -0.0 and values beyond a bigint.
"""

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pyspark.sql.types import DoubleType, StringType, StructField, StructType
from pyspark.testing import assertDataFrameEqual
from test_realtime import VALID

from segmentation.core.columns import COUNT_COLUMNS, MONEY_COLUMNS, RAW_NUMERIC_COLUMNS, SHARE_COLUMNS
from segmentation.core.config import load_config
from segmentation.features import contract, rules
from segmentation.features.expr import abs_, col, finite, floor, greatest, lit, trim, when
from segmentation.features.expr_numpy import Program, Table, Values
from segmentation.features.expr_spark import column
from segmentation.serving import realtime

CONF = Path(__file__).resolve().parents[1] / "conf"
NULLABLE = ["MINIMUM_PAYMENTS", "CREDIT_LIMIT"]
SCHEMA = StructType(
    [StructField("CUST_ID", StringType()), *[StructField(c, DoubleType()) for c in RAW_NUMERIC_COLUMNS]]
)
REASONS_SCHEMA = "CUST_ID string, _reasons array<string>"

# The real-time tests' valid customer (the bundled file's C10001), eight months a customer.
EIGHT_MONTHS = {**VALID, "TENURE": 8.0}


@pytest.mark.parametrize("overrides, expected", [
    ([], []),  # tenure 6 to 12 by default: eight months keep the rule
    (["contract.tenure_min=9"], ["tenure_out_of_range"]),
    (["contract.tenure_min=1", "contract.tenure_max=7"], ["tenure_out_of_range"]),
], ids=["default", "tenure_min=9", "tenure_max=7"])
def test_a_rule_changed_in_config_changes_both_verdicts(spark, overrides, expected):
    cfg = load_config(CONF, [], overrides).contract
    frame = spark.createDataFrame([tuple(EIGHT_MONTHS[f.name] for f in SCHEMA.fields)], SCHEMA)
    nightly = contract.check_rows(frame, cfg, NULLABLE).select("CUST_ID", contract.REASONS)
    assertDataFrameEqual(nightly, spark.createDataFrame([("C10001", expected)], REASONS_SCHEMA))
    assert realtime.reasons(pd.DataFrame([EIGHT_MONTHS]), cfg, NULLABLE) == [expected]


def test_rule_names_keep_the_quarantine_order(spark):
    required = [c for c in RAW_NUMERIC_COLUMNS if c not in NULLABLE]
    expected = [
        "malformed_line", "missing_cust_id",
        *[f"missing_value:{c}" for c in required],
        *[f"not_finite:{c}" for c in RAW_NUMERIC_COLUMNS],
        *[f"out_of_float32_range:{c}" for c in RAW_NUMERIC_COLUMNS],
        *[f"negative_amount:{c}" for c in MONEY_COLUMNS],
        *[f"out_of_range:{c}" for c in SHARE_COLUMNS],
        *[f"not_a_count:{c}" for c in COUNT_COLUMNS],
        "tenure_out_of_range", "purchases_exceed_parts", "cash_advance_inconsistent",
    ]
    cfg = load_config(CONF).contract
    assert [name for name, _ in contract.rule_conditions(cfg, NULLABLE)] == expected
    limits = rules.ContractLimits.of(cfg)
    assert [n for rule in rules.contract_rules(limits, NULLABLE) for n in rule.names] == expected


# ---------------------------------------------------------------------------------------------
# The numpy backend against Spark, one operation at a time

NAN, INF = float("nan"), float("inf")
EDGES = [None, NAN, INF, -INF, -0.0, 0.0, 0.5, 1.0, -2.5, 1e19, 1.7e308]  # beyond a bigint; a sum that overflows
TEXTS = [None, "", " ", "\t", " a ", "a"]
X, Y, S = col("x"), col("y"), col("s")
EXPRESSIONS = {
    "x < y": X < Y, "x <= y": X <= Y, "x > y": X > Y, "x >= y": X >= Y, "x == y": X == Y, "x != y": X != Y,
    "x > 0": X > 0, "x >= 0": X >= 0, "x < 1": X < 1, "x <= 1": X <= 1, "x == 0": X == 0, "x != 0": X != 0,
    "and": (X > 0) & (Y > 0), "or": (X > 0) | (Y > 0), "not": ~(X > Y),
    "is_null": X.is_null(), "is_not_null": X.is_not_null(),
    "finite": finite(X), "finite compared": finite(X) > finite(Y), "abs": abs_(X), "add": X + Y,
    "floor": floor(X) + 0.0, "not a whole number": X != floor(X), "x + y > 1": X + Y > 1,
    "greatest": greatest(X, Y), "greatest with 1": greatest(X, lit(1.0)),
    "when": when(X > 0, lit("positive")).when(X < 0, lit("negative")).otherwise(lit("neither")),
    "when, no otherwise": when(X > Y, X),
    "guarded division": when(Y > 0, X / Y).otherwise(lit(0.0)),
    "as double": (X > Y).as_double(),
    "blank": trim(S) == "", "missing or blank": S.is_null() | (trim(S) == ""),
}


def _comparable(value):
    """A Spark or numpy answer as a value equal only to the same bits (NaN to NaN, -0.0 apart from 0.0)."""
    if value is None or isinstance(value, (bool, np.bool_, str)):
        return value
    value = float(value)  # a bigint floor as the double every comparison casts it to
    return "NaN" if math.isnan(value) else repr(value)


def test_the_numpy_backend_gives_spark_answers(spark):
    rows = [(x, y, TEXTS[i % len(TEXTS)]) for i, (x, y) in enumerate((x, y) for x in EDGES for y in EDGES)]
    frame = spark.createDataFrame(rows, "x double, y double, s string")
    names = list(EXPRESSIONS)
    nightly = frame.select(*[column(e).alias(f"e{i}") for i, e in enumerate(EXPRESSIONS.values())]).collect()

    numbers = np.array([[np.nan if v is None else v for v in r[:2]] for r in rows], dtype=np.float64)
    known = np.array([[v is not None for v in r[:2]] for r in rows])
    texts = np.array([r[2] for r in rows], dtype=object)
    table = Table(numbers, known, {"s": Values(texts, np.array([t is not None for t in texts]))})
    found = Program(list(EXPRESSIONS.values()), ["x", "y"]).run(table)

    differ = []
    for j, (name, v) in enumerate(zip(names, found)):
        values = np.broadcast_to(v.values, (len(rows),)).tolist()
        where = np.broadcast_to(v.known, (len(rows),)).tolist()
        ours = [_comparable(x) if k else None for x, k in zip(values, where)]
        theirs = [_comparable(r[j]) for r in nightly]
        differ += [(name, rows[i], ours[i], theirs[i]) for i in range(len(rows)) if ours[i] != theirs[i]]
    assert not differ, differ[:10]
