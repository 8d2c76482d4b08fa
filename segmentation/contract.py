"""The data contract of the raw customer table: one place for every rule a row must meet.

Row rules mark a row with the names of the rules it breaks; such rows go to quarantine with
their raw values. Table-level problems (no rows, missing columns, too many bad rows) stop the
job before anything is written.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from segmentation.config import ContractConfig
from segmentation.errors import InputError
from segmentation.schema import (  # the column groups and FLOAT32_MAX are the contract's vocabulary
    COUNT_COLUMNS,
    CORRUPT_COLUMN,
    FLOAT32_MAX,
    ID_COLUMN,
    MONEY_COLUMNS,
    RAW_NUMERIC_COLUMNS,
    SHARE_COLUMNS,
)

REASONS = "_reasons"


class QuarantineLimitError(InputError):
    """More rows broke the contract than the configured share: an upstream break, not noise."""


def _rule(name: str, broken: Column) -> Column:
    # A comparison with null is null, not true: only a definite break names the rule.
    return F.when(F.coalesce(broken, F.lit(False)), F.lit(name))


def _finite(name: str) -> Column:
    """The column where it is a finite number, else null: range rules judge numbers only.

    Spark orders NaN above every number, so `NaN < 0` is false and `NaN > 1` true: without
    this, NaN and +Infinity would pass the money rules and trip unrelated ones.
    """
    c = F.col(name)
    return F.when(~F.isnan(c) & (F.abs(c) != F.lit(float("inf"))), c)


def row_rules(cfg: ContractConfig, nullable: list[str]) -> list[Column]:
    """One column per rule: the rule's name where the row breaks it, else null."""
    c, v = F.col, _finite
    rules = [_rule("malformed_line", c(CORRUPT_COLUMN).isNotNull())]
    rules.append(_rule("missing_cust_id", c(ID_COLUMN).isNull() | (F.trim(c(ID_COLUMN)) == "")))
    rules += [_rule(f"missing_value:{col}", c(col).isNull()) for col in RAW_NUMERIC_COLUMNS if col not in nullable]
    # NaN and infinities are values no rule below can judge, and beyond float32 the scoring matrix overflows.
    rules += [_rule(f"not_finite:{col}", c(col).isNotNull() & v(col).isNull()) for col in RAW_NUMERIC_COLUMNS]
    rules += [_rule(f"out_of_float32_range:{col}", F.abs(v(col)) > F.lit(FLOAT32_MAX)) for col in RAW_NUMERIC_COLUMNS]
    rules += [_rule(f"negative_amount:{col}", v(col) < 0) for col in MONEY_COLUMNS]
    for col in SHARE_COLUMNS:
        top = cfg.max_cash_advance_frequency if col == "CASH_ADVANCE_FREQUENCY" else 1.0
        rules.append(_rule(f"out_of_range:{col}", (v(col) < 0) | (v(col) > top)))
    rules += [_rule(f"not_a_count:{col}", (v(col) < 0) | (v(col) != F.floor(v(col)))) for col in COUNT_COLUMNS]
    tenure = v("TENURE")
    rules.append(_rule(
        "tenure_out_of_range",
        (tenure < cfg.tenure_min) | (tenure > cfg.tenure_max) | (tenure != F.floor(tenure)),
    ))
    rules.append(_rule(
        "purchases_exceed_parts",
        v("PURCHASES") > v("ONEOFF_PURCHASES") + v("INSTALLMENTS_PURCHASES") + F.lit(cfg.purchases_tolerance),
    ))
    rules.append(_rule(
        "cash_advance_inconsistent",
        ((v("CASH_ADVANCE") == 0) != (v("CASH_ADVANCE_TRX") == 0))
        | ((v("CASH_ADVANCE") == 0) & (v("CASH_ADVANCE_FREQUENCY") > 0)),
    ))
    return rules


def check_rows(df: DataFrame, cfg: ContractConfig, nullable: list[str]) -> DataFrame:
    """Adds `_reasons`: every rule the row breaks, duplicates of a CUST_ID included.

    Of rows sharing a CUST_ID the survivor is the one that is otherwise valid and smallest
    by its values, so the choice does not depend on file order or partitioning.
    """
    if CORRUPT_COLUMN not in df.columns:
        df = df.withColumn(CORRUPT_COLUMN, F.lit(None).cast("string"))
    own = F.filter(F.array(*row_rules(cfg, nullable)), lambda x: x.isNotNull())
    checked = df.withColumn(REASONS, own)
    order = [F.size(REASONS).asc(), *[F.col(col).asc_nulls_last() for col in RAW_NUMERIC_COLUMNS],
             F.col(CORRUPT_COLUMN).asc_nulls_first()]
    rank = F.row_number().over(Window.partitionBy(ID_COLUMN).orderBy(*order))
    duplicate = F.when(F.col(ID_COLUMN).isNotNull() & (rank > 1), F.array(F.lit("duplicate_cust_id")))
    return checked.withColumn(REASONS, F.concat(F.col(REASONS), F.coalesce(duplicate, F.array().cast("array<string>"))))


def raw_text(columns: list[str]) -> Column:
    """What the row looked like when read: the raw line if it was malformed, else its values."""
    return F.coalesce(F.col(CORRUPT_COLUMN), F.to_json(F.struct(*[F.col(c) for c in columns])))


def check_share(rows_read: int, rows_bad: int, max_share: float, source: str) -> None:
    if rows_read and rows_bad / rows_read > max_share:
        raise QuarantineLimitError(
            f"{rows_bad} of {rows_read} rows of {source} ({rows_bad / rows_read:.1%}) break the data contract, "
            f"above contract.max_quarantine_share={max_share:.1%}: stopping before anything is written"
        )
