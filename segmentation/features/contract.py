"""The data contract of the raw customer table: one place for every rule a row must meet.

Row rules mark a row with the names of the rules it breaks; such rows go to quarantine with
their raw values. Table-level problems (no rows, missing columns, too many bad rows) stop the
job before anything is written.
"""

from __future__ import annotations

import functools

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from segmentation.core.columns import (  # the column groups and FLOAT32_MAX are the contract's vocabulary
    CORRUPT_COLUMN,
    COUNT_COLUMNS,
    FLOAT32_MAX,
    ID_COLUMN,
    MONEY_COLUMNS,
    RAW_NUMERIC_COLUMNS,
    SHARE_COLUMNS,
)
from segmentation.core.config import ContractConfig
from segmentation.core.errors import InputError

REASONS = "_reasons"
REASONS_TYPE = "array<string>"
# Ids held more than once beyond this many are ranked by a window over every row instead of
# broadcast (a broadcast of about 100 bytes an id would weigh on the driver).
MAX_BROADCAST_DUPLICATE_IDS = 1_000_000


class QuarantineLimitError(InputError):
    """More rows broke the contract than the configured share: an upstream break, not noise."""


def _rule(name: str, broken: Column) -> Column:
    # A comparison with null is null, not true: only a definite break names the rule.
    return F.when(_definitely(broken), F.lit(name))


def _definitely(broken: Column) -> Column:
    return F.coalesce(broken, F.lit(False))


def _finite(name: str) -> Column:
    """The column where it is a finite number, else null: range rules judge numbers only.

    Spark orders NaN above every number, so `NaN < 0` is false and `NaN > 1` true: without
    this, NaN and +Infinity would pass the money rules and trip unrelated ones.
    """
    c = F.col(name)
    return F.when(~F.isnan(c) & (F.abs(c) != F.lit(float("inf"))), c)


def rule_conditions(cfg: ContractConfig, nullable: list[str]) -> list[tuple[str, Column]]:
    """Every rule as (name, condition under which a row breaks it); the condition may be null."""
    c, v = F.col, _finite
    rules = [("malformed_line", c(CORRUPT_COLUMN).isNotNull())]
    rules.append(("missing_cust_id", c(ID_COLUMN).isNull() | (F.trim(c(ID_COLUMN)) == "")))
    rules += [(f"missing_value:{col}", c(col).isNull()) for col in RAW_NUMERIC_COLUMNS if col not in nullable]
    # NaN and infinities are values no rule below can judge, and beyond float32 the scoring matrix overflows.
    rules += [(f"not_finite:{col}", c(col).isNotNull() & v(col).isNull()) for col in RAW_NUMERIC_COLUMNS]
    rules += [(f"out_of_float32_range:{col}", F.abs(v(col)) > F.lit(FLOAT32_MAX)) for col in RAW_NUMERIC_COLUMNS]
    rules += [(f"negative_amount:{col}", v(col) < 0) for col in MONEY_COLUMNS]
    for col in SHARE_COLUMNS:
        top = cfg.max_cash_advance_frequency if col == "CASH_ADVANCE_FREQUENCY" else 1.0
        rules.append((f"out_of_range:{col}", (v(col) < 0) | (v(col) > top)))
    rules += [(f"not_a_count:{col}", (v(col) < 0) | (v(col) != F.floor(v(col)))) for col in COUNT_COLUMNS]
    tenure = v("TENURE")
    rules.append((
        "tenure_out_of_range",
        (tenure < cfg.tenure_min) | (tenure > cfg.tenure_max) | (tenure != F.floor(tenure)),
    ))
    rules.append((
        "purchases_exceed_parts",
        v("PURCHASES") > v("ONEOFF_PURCHASES") + v("INSTALLMENTS_PURCHASES") + F.lit(cfg.purchases_tolerance),
    ))
    rules.append((
        "cash_advance_inconsistent",
        ((v("CASH_ADVANCE") == 0) != (v("CASH_ADVANCE_TRX") == 0))
        | ((v("CASH_ADVANCE") == 0) & (v("CASH_ADVANCE_FREQUENCY") > 0)),
    ))
    return rules


def check_rows(df: DataFrame, cfg: ContractConfig, nullable: list[str]) -> DataFrame:
    """Adds `_reasons`: every rule the row breaks, duplicates of a CUST_ID included.

    Of rows sharing a CUST_ID the survivor is the one that is otherwise valid and smallest
    by its values, so the choice does not depend on file order or partitioning. Finding the
    repeated ids runs one Spark job over the id column; the rows themselves stay lazy.
    """
    if CORRUPT_COLUMN not in df.columns:
        df = df.withColumn(CORRUPT_COLUMN, F.lit(None).cast("string"))
    rules = rule_conditions(cfg, nullable)
    # The list of names is built only for a row that breaks a rule: most rows keep every rule,
    # and one OR of the conditions costs a fraction of assembling and filtering ~100 names.
    broken = functools.reduce(lambda a, b: a | b, [_definitely(b) for _, b in rules])
    names = F.array_compact(F.array(*[_rule(name, b) for name, b in rules]))
    own = F.when(broken, names).otherwise(F.array()).cast(REASONS_TYPE)
    return _flag_duplicates(df.withColumn(REASONS, own))


def _flag_duplicates(checked: DataFrame) -> DataFrame:
    """Adds `duplicate_cust_id` to the `_reasons` of every row of a CUST_ID but its survivor.

    Only the ids are shuffled to find those that occur more than once (usually none, then no
    row moves); only the rows of those ids are ranked, the others pass by a broadcast anti-join.
    A duplicate set too large to broadcast is ranked with one window over every row.
    """
    counts = checked.where(F.col(ID_COLUMN).isNotNull()).groupBy(ID_COLUMN).agg(F.count(F.lit(1)).alias("_rows"))
    repeated = counts.where(F.col("_rows") > 1).select(ID_COLUMN)
    found = repeated.count()  # a shuffle of the id column alone
    if found == 0:
        return checked
    if found > MAX_BROADCAST_DUPLICATE_IDS:
        return _rank_duplicates(checked)
    ids = F.broadcast(repeated)
    others = checked.join(ids, ID_COLUMN, "left_anti")
    ranked = _rank_duplicates(checked.join(ids, ID_COLUMN, "left_semi"))
    return others.unionByName(ranked.select(*checked.columns))


def _rank_duplicates(checked: DataFrame) -> DataFrame:
    """The survivor order: fewest broken rules, then smallest values, nulls last."""
    order = [F.size(REASONS).asc(), *[F.col(col).asc_nulls_last() for col in RAW_NUMERIC_COLUMNS],
             F.col(CORRUPT_COLUMN).asc_nulls_first()]
    rank = F.row_number().over(Window.partitionBy(ID_COLUMN).orderBy(*order))
    duplicate = F.when(F.col(ID_COLUMN).isNotNull() & (rank > 1), F.array(F.lit("duplicate_cust_id")))
    return checked.withColumn(REASONS, F.concat(F.col(REASONS), F.coalesce(duplicate, F.array().cast(REASONS_TYPE))))


def raw_text(columns: list[str]) -> Column:
    """What the row looked like when read: the raw line if it was malformed, else its values."""
    return F.coalesce(F.col(CORRUPT_COLUMN), F.to_json(F.struct(*[F.col(c) for c in columns])))


def check_share(rows_read: int, rows_bad: int, max_share: float, source: str) -> None:
    if rows_read and rows_bad / rows_read > max_share:
        raise QuarantineLimitError(
            f"{rows_bad} of {rows_read} rows of {source} ({rows_bad / rows_read:.1%}) break the data contract, "
            f"above contract.max_quarantine_share={max_share:.1%}: stopping before anything is written"
        )
