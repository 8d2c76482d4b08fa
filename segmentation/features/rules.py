"""The data contract's rules, written once: what a raw table and each of its rows must meet.

`features.contract` evaluates the row rules as Spark columns over the nightly input;
`serving.realtime` evaluates the same rules with numpy over a request (`features.expr_numpy`).
A rule's name is what the quarantine table records, in the order `contract_rules` lists them:
keep both stable. Plain Python: the real-time scorer imports this without pyspark.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Collection, NamedTuple, Sequence

from segmentation.core.columns import (  # the column groups and FLOAT32_MAX are the contract's vocabulary
    CORRUPT_COLUMN,
    COUNT_COLUMNS,
    FLOAT32_MAX,
    ID_COLUMN,
    MONEY_COLUMNS,
    RAW_NUMERIC_COLUMNS,
    SHARE_COLUMNS,
)
from segmentation.core.errors import InputError
from segmentation.features.expr import Col, Expr, Lit, Order, abs_, asc, col, finite, floor, size, trim

# The column check_rows fills with the names of the rules a row breaks.
REASONS = "_reasons"
REQUIRED_COLUMNS = [ID_COLUMN, *RAW_NUMERIC_COLUMNS]
SHARE_MAX = 1.0  # a share is at most the whole; CASH_ADVANCE_FREQUENCY has its own ceiling
DUPLICATE_RULE = "duplicate_cust_id"
MISSING_ID_RULE = "missing_cust_id"


class ContractLimits(NamedTuple):
    """The contract's configurable bounds (from `ContractConfig`): hashable, so a compiled plan can be cached."""

    tenure_min: float
    tenure_max: float
    max_cash_advance_frequency: float
    purchases_tolerance: float

    @classmethod
    def of(cls, cfg: Any) -> ContractLimits:
        """The bounds a `ContractConfig` sets, read by attribute."""
        return cls(cfg.tenure_min, cfg.tenure_max, cfg.max_cash_advance_frequency, cfg.purchases_tolerance)


@dataclass(frozen=True)
class Rule:
    """One rule, or with `columns` a family of one shape named `<name>:<column>`.

    `broken` builds the condition under which a row breaks the rule (it may be null: only a
    definite true breaks it). A family's `broken` takes the column and, for each tuple of
    `per_column`, that column's value.
    """

    name: str
    broken: Callable[..., Expr]
    columns: tuple[str, ...] | None = None
    per_column: tuple[tuple[Any, ...], ...] = ()

    @property
    def names(self) -> list[str]:
        return [self.name] if self.columns is None else [f"{self.name}:{c}" for c in self.columns]

    def conditions(self) -> list[tuple[str, Expr]]:
        """(name, condition) per rule, each over single columns: how Spark evaluates them."""
        if self.columns is None:
            return [(self.name, self.broken())]
        return [
            (f"{self.name}:{c}", self.broken(col(c), *[Lit(values[j]) for values in self.per_column]))
            for j, c in enumerate(self.columns)
        ]

    def block(self) -> Expr:
        """The whole family as one condition over a block of its columns (rows x columns): how numpy evaluates it."""
        if self.columns is None:
            return self.broken()
        return self.broken(Col(self.columns), *[Lit(tuple(values)) for values in self.per_column])


def contract_rules(limits: ContractLimits, nullable: Collection[str]) -> list[Rule]:
    """Every row rule of the contract, in the quarantine's order; `nullable` columns may be null (imputed)."""
    tenure = finite(col("TENURE"))
    cash_zero = finite(col("CASH_ADVANCE")) == 0
    tops = tuple(limits.max_cash_advance_frequency if c == "CASH_ADVANCE_FREQUENCY" else SHARE_MAX
                 for c in SHARE_COLUMNS)
    raw = tuple(RAW_NUMERIC_COLUMNS)

    def out_of_range(x: Expr, top: Expr) -> Expr:
        v = finite(x)
        return (v < 0) | (v > top)

    def not_a_count(x: Expr) -> Expr:
        v = finite(x)
        return (v < 0) | (v != floor(v))

    return [
        Rule("malformed_line", lambda: col(CORRUPT_COLUMN).is_not_null()),
        Rule(MISSING_ID_RULE, lambda: col(ID_COLUMN).is_null() | (trim(col(ID_COLUMN)) == "")),
        Rule("missing_value", lambda x: x.is_null(), tuple(c for c in raw if c not in nullable)),
        # NaN and infinities are values no rule below can judge, and beyond float32 the scoring matrix overflows.
        Rule("not_finite", lambda x: x.is_not_null() & finite(x).is_null(), raw),
        Rule("out_of_float32_range", lambda x: abs_(finite(x)) > Lit(FLOAT32_MAX), raw),
        Rule("negative_amount", lambda x: finite(x) < 0, tuple(MONEY_COLUMNS)),
        Rule("out_of_range", out_of_range, tuple(SHARE_COLUMNS), (tops,)),
        Rule("not_a_count", not_a_count, tuple(COUNT_COLUMNS)),
        Rule("tenure_out_of_range", lambda: (
            (tenure < limits.tenure_min) | (tenure > limits.tenure_max) | (tenure != floor(tenure))
        )),
        Rule("purchases_exceed_parts", lambda: (
            finite(col("PURCHASES"))
            > finite(col("ONEOFF_PURCHASES")) + finite(col("INSTALLMENTS_PURCHASES")) + Lit(limits.purchases_tolerance)
        )),
        Rule("cash_advance_inconsistent", lambda: (
            (cash_zero != (finite(col("CASH_ADVANCE_TRX")) == 0))
            | (cash_zero & (finite(col("CASH_ADVANCE_FREQUENCY")) > 0))
        )),
    ]


def survivor_order() -> list[Order]:
    """Of rows sharing a CUST_ID the first in this order survives: fewest broken rules, then smallest values.

    Values compare in column order, nulls last, so the choice depends on neither file order
    nor partitioning.
    """
    return [asc(size(col(REASONS))), *[asc(col(c), nulls_first=False) for c in RAW_NUMERIC_COLUMNS],
            asc(col(CORRUPT_COLUMN))]


# ---------------------------------------------------------------------------------------------
# Table-level: the columns a table must have, whichever engine reads it


def require_columns(present: Collection[str]) -> None:
    """Raises InputError naming the contract's columns missing from `present`."""
    missing = [c for c in REQUIRED_COLUMNS if c not in present]
    if missing:
        raise InputError(f"input is missing required column(s): {', '.join(missing)}")


def require_numeric(problems: Sequence[tuple[str, str]]) -> None:
    """Raises InputError naming each (behaviour column, what it holds instead of numbers)."""
    if problems:
        raise InputError(f"input column(s) must be numeric: {', '.join(f'{c} ({what})' for c, what in problems)}")
