"""The engineered features of the notebook, written once over the cleaned, imputed raw columns.

`features.derived.add_features` evaluates them as Spark columns for the nightly `features`
table; `serving.realtime` evaluates the same definitions with numpy (`features.expr_numpy`),
bit for bit. Plain Python: importing it does not import pyspark.
"""

from __future__ import annotations

from segmentation.core.columns import PURCHASE_TYPES
from segmentation.features.expr import Expr, col, greatest, lit, when

PURCHASE_TYPE = "PURCHASE_TYPE"
MIN_MONTHS = 1.0  # tenure under one month counts as one month

# One node for every monthly average: a numpy evaluation computes it once.
_MONTHS = greatest(col("TENURE"), lit(MIN_MONTHS))


def limit_usage() -> Expr:
    """BALANCE / CREDIT_LIMIT. With no credit limit, any balance counts as the limit fully used."""
    balance, limit = col("BALANCE"), col("CREDIT_LIMIT")
    return when(limit > 0, balance / limit).when(balance > 0, lit(1.0)).otherwise(lit(0.0))


def payment_minpay_ratio(epsilon: float) -> Expr:
    """PAYMENTS / (MINIMUM_PAYMENTS + epsilon); a non-positive denominator gives 0."""
    denominator = col("MINIMUM_PAYMENTS") + lit(epsilon)
    return when(denominator > 0, col("PAYMENTS") / denominator).otherwise(lit(0.0))


def per_month(column: str) -> Expr:
    """Monthly average over TENURE; tenure under one month counts as one month."""
    return col(column) / _MONTHS


def purchase_type() -> Expr:
    one_off = col("ONEOFF_PURCHASES") > 0
    installments = col("INSTALLMENTS_PURCHASES") > 0
    return (
        when(one_off & installments, lit("both"))
        .when(one_off, lit("one_off"))
        .when(installments, lit("installments"))
        .otherwise(lit("none"))
    )


def feature_stages(ratio_epsilon: float) -> list[dict[str, Expr]]:
    """The engineered columns, stage by stage: a stage may read the columns of the stages before it."""
    return [
        {PURCHASE_TYPE: purchase_type()},
        {
            "LIMIT_USAGE": limit_usage(),
            "PAYMENT_MINPAY_RATIO": payment_minpay_ratio(ratio_epsilon),
            **{f"PURCHASE_{t}": (col(PURCHASE_TYPE) == t).as_double() for t in PURCHASE_TYPES},
            "MONTHLY_AVG_PURCHASES": per_month("PURCHASES"),
            "MONTHLY_CASH_ADVANCE": per_month("CASH_ADVANCE"),
        },
    ]
