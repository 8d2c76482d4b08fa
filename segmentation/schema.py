"""The raw customer table's columns and the explicit schema it is read with."""

from pyspark.sql.types import DoubleType, StringType, StructField, StructType

ID_COLUMN = "CUST_ID"
RUN_DATE = "run_date"
CORRUPT_COLUMN = "_corrupt_record"  # Spark's corrupt-record column: the raw line of a malformed row

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

# Counts are read as doubles too: a value like "3.0" from an upstream export must not fail the read.
RAW_SCHEMA = StructType(
    [StructField(ID_COLUMN, StringType(), True)]
    + [StructField(name, DoubleType(), True) for name in RAW_NUMERIC_COLUMNS]
)
