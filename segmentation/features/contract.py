"""The data contract of the raw customer table, checked by Spark over the nightly input.

The rules themselves are written once in `features.rules` (real-time scoring evaluates the same
definitions with numpy); here they become Spark columns. Row rules mark a row with the names of
the rules it breaks; such rows go to quarantine with their raw values. Table-level problems (no
rows, missing columns, too many bad rows) stop the job before anything is written.
"""

from __future__ import annotations

import functools

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from segmentation.core.columns import CORRUPT_COLUMN, ID_COLUMN
from segmentation.core.config import ContractConfig
from segmentation.core.errors import InputError
from segmentation.features.expr_spark import column, sort_order
from segmentation.features.rules import (  # REASONS and FLOAT32_MAX: the contract's vocabulary, for its callers
    DUPLICATE_RULE,
    FLOAT32_MAX,
    REASONS,
    ContractLimits,
    contract_rules,
    survivor_order,
)

__all__ = ["FLOAT32_MAX", "REASONS", "REASONS_TYPE", "QuarantineLimitError", "check_rows", "check_share",
           "raw_text", "rule_conditions"]

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


def rule_conditions(cfg: ContractConfig, nullable: list[str]) -> list[tuple[str, Column]]:
    """Every rule of `rules.contract_rules` as (name, condition under which a row breaks it); it may be null."""
    return [(name, column(broken)) for rule in contract_rules(ContractLimits.of(cfg), nullable)
            for name, broken in rule.conditions()]


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
    """Ranks each CUST_ID's rows by `rules.survivor_order`: fewest broken rules, then smallest values, nulls last."""
    order = [sort_order(o) for o in survivor_order()]
    rank = F.row_number().over(Window.partitionBy(ID_COLUMN).orderBy(*order))
    duplicate = F.when(F.col(ID_COLUMN).isNotNull() & (rank > 1), F.array(F.lit(DUPLICATE_RULE)))
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
