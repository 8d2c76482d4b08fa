"""The tables' column names, the contract's column groups and the raw table's explicit schema.

The names are plain Python: config and the real-time scorer import them where no Spark is
installed, so the Spark schema is built only when it is first asked for.
"""

import numpy as np

ID_COLUMN = "CUST_ID"
RUN_DATE = "run_date"
CORRUPT_COLUMN = "_corrupt_record"  # Spark's corrupt-record column: the raw line of a malformed row
# The segment_id of the rows DBSCAN leaves in no segment: training, lineage and the report read it.
NOISE = -1

# File order of CC_GENERAL.csv; the notebook's feature order starts with these.
RAW_NUMERIC_COLUMNS = [
    "BALANCE",
    "BALANCE_FREQUENCY",
    "PURCHASES",
    "ONEOFF_PURCHASES",
    "INSTALLMENTS_PURCHASES",
    "CASH_ADVANCE",
    "PURCHASES_FREQUENCY",
    "ONEOFF_PURCHASES_FREQUENCY",
    "PURCHASES_INSTALLMENTS_FREQUENCY",
    "CASH_ADVANCE_FREQUENCY",
    "CASH_ADVANCE_TRX",
    "PURCHASES_TRX",
    "CREDIT_LIMIT",
    "PAYMENTS",
    "MINIMUM_PAYMENTS",
    "PRC_FULL_PAYMENT",
    "TENURE",
]

# What kind of quantity each raw column holds: the data contract's rules are stated per kind.
MONEY_COLUMNS = [
    "BALANCE", "PURCHASES", "ONEOFF_PURCHASES", "INSTALLMENTS_PURCHASES",
    "CASH_ADVANCE", "CREDIT_LIMIT", "PAYMENTS", "MINIMUM_PAYMENTS",
]
SHARE_COLUMNS = [
    "BALANCE_FREQUENCY", "PURCHASES_FREQUENCY", "ONEOFF_PURCHASES_FREQUENCY",
    "PURCHASES_INSTALLMENTS_FREQUENCY", "CASH_ADVANCE_FREQUENCY", "PRC_FULL_PAYMENT",
]
COUNT_COLUMNS = ["CASH_ADVANCE_TRX", "PURCHASES_TRX"]

# Scoring compares features in float32: a larger magnitude would become an infinity there.
FLOAT32_MAX = float(np.finfo(np.float32).max)

PURCHASE_TYPES = ["both", "installments", "none", "one_off"]
INDICATOR_COLUMNS = [f"PURCHASE_{t}" for t in PURCHASE_TYPES]

# The model's input, in the notebook's column order.
FEATURE_COLUMNS = [
    *RAW_NUMERIC_COLUMNS,
    "LIMIT_USAGE",
    "PAYMENT_MINPAY_RATIO",
    *INDICATOR_COLUMNS,
    "MONTHLY_AVG_PURCHASES",
    "MONTHLY_CASH_ADVANCE",
]
# Money-like columns that get the log transform; the 0/1 indicators do not.
LOG_COLUMNS = [c for c in FEATURE_COLUMNS if c not in INDICATOR_COLUMNS]


def __getattr__(name: str):
    # RAW_SCHEMA on first use (PEP 562), so importing the names above never imports pyspark.
    if name == "RAW_SCHEMA":
        from pyspark.sql.types import DoubleType, StringType, StructField, StructType

        # Counts are read as doubles too: a value like "3.0" from an upstream export must not fail the read.
        schema = StructType(
            [StructField(ID_COLUMN, StringType(), True)]
            + [StructField(c, DoubleType(), True) for c in RAW_NUMERIC_COLUMNS]
        )
        globals()["RAW_SCHEMA"] = schema
        return schema
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
