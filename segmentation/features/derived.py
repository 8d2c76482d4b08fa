"""Engineered features of the notebook, as column expressions over the cleaned table."""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from segmentation.core.columns import PURCHASE_TYPES


def limit_usage() -> Column:
    """BALANCE / CREDIT_LIMIT. With no credit limit, any balance counts as the limit fully used."""
    balance, limit = F.col("BALANCE"), F.col("CREDIT_LIMIT")
    return (
        F.when(limit > 0, balance / limit)
        .when(balance > 0, F.lit(1.0))
        .otherwise(F.lit(0.0))
    )


def payment_minpay_ratio(epsilon: float) -> Column:
    """PAYMENTS / (MINIMUM_PAYMENTS + epsilon); a non-positive denominator gives 0."""
    denominator = F.col("MINIMUM_PAYMENTS") + F.lit(epsilon)
    return F.when(denominator > 0, F.col("PAYMENTS") / denominator).otherwise(F.lit(0.0))


def per_month(column: str) -> Column:
    """Monthly average over TENURE; tenure under one month counts as one month."""
    return F.col(column) / F.greatest(F.col("TENURE"), F.lit(1.0))


def purchase_type() -> Column:
    one_off = F.col("ONEOFF_PURCHASES") > 0
    installments = F.col("INSTALLMENTS_PURCHASES") > 0
    return (
        F.when(one_off & installments, F.lit("both"))
        .when(one_off, F.lit("one_off"))
        .when(installments, F.lit("installments"))
        .otherwise(F.lit("none"))
    )


def add_features(df: DataFrame, ratio_epsilon: float = 1e-6) -> DataFrame:
    """Adds the engineered columns; expects imputed raw columns."""
    with_type = df.withColumn("PURCHASE_TYPE", purchase_type())
    return with_type.withColumns(
        {
            "LIMIT_USAGE": limit_usage(),
            "PAYMENT_MINPAY_RATIO": payment_minpay_ratio(ratio_epsilon),
            **{
                f"PURCHASE_{t}": (F.col("PURCHASE_TYPE") == t).cast("double")
                for t in PURCHASE_TYPES
            },
            "MONTHLY_AVG_PURCHASES": per_month("PURCHASES"),
            "MONTHLY_CASH_ADVANCE": per_month("CASH_ADVANCE"),
        }
    )
