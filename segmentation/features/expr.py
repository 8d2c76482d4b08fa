"""A small expression language: the contract rules and the features are written once in it.

Two backends evaluate the same tree: `expr_spark` turns it into pyspark Columns for the nightly
job, `expr_numpy` into arrays for real-time scoring, where there is no JVM. The meaning is Spark
SQL's (nulls, NaN's place in the order, a floor that is a bigint): `expr_numpy` reproduces it, so
a definition means the same whichever engine runs it.

This module is plain Python: importing it loads neither pyspark nor numpy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# The operations (Op.name). Comparisons and logic are Spark's three-valued ones: a comparison
# with a null is null, `and`/`or` follow Kleene's tables.
AND, OR, NOT = "and", "or", "not"
EQ, NE, LT, LE, GT, GE = "eq", "ne", "lt", "le", "gt", "ge"
COMPARISONS = (EQ, NE, LT, LE, GT, GE)
ADD, DIV = "add", "div"
ABS = "abs"
FLOOR = "floor"  # Spark's floor of a double: a bigint, saturated at +-2^63, 0 for NaN
FINITE = "finite"  # the value where it is a finite number, else null
IS_NULL, IS_NOT_NULL = "is_null", "is_not_null"
TRIM = "trim"  # strips spaces only, as Spark's trim does (not tabs or newlines)
GREATEST = "greatest"  # the largest non-null argument (NaN above every number), null if all are
AS_DOUBLE = "as_double"  # a boolean as 1.0 or 0.0
SIZE = "size"  # the length of an array value


class Expr:
    """A node of an expression tree; Python's operators build bigger ones, as on a Spark Column."""

    __slots__ = ()
    __hash__ = object.__hash__  # `==` builds an expression: identity stays the hash

    def __and__(self, other: Any) -> Expr:
        return Op(AND, (self, _expr(other)))

    def __or__(self, other: Any) -> Expr:
        return Op(OR, (self, _expr(other)))

    def __invert__(self) -> Expr:
        return Op(NOT, (self,))

    def __eq__(self, other: object) -> Expr:  # type: ignore[override]
        return Op(EQ, (self, _expr(other)))

    def __ne__(self, other: object) -> Expr:  # type: ignore[override]
        return Op(NE, (self, _expr(other)))

    def __lt__(self, other: Any) -> Expr:
        return Op(LT, (self, _expr(other)))

    def __le__(self, other: Any) -> Expr:
        return Op(LE, (self, _expr(other)))

    def __gt__(self, other: Any) -> Expr:
        return Op(GT, (self, _expr(other)))

    def __ge__(self, other: Any) -> Expr:
        return Op(GE, (self, _expr(other)))

    def __add__(self, other: Any) -> Expr:
        return Op(ADD, (self, _expr(other)))

    def __truediv__(self, other: Any) -> Expr:
        return Op(DIV, (self, _expr(other)))

    def __bool__(self) -> bool:
        raise TypeError("an expression has no truth value: combine conditions with &, | and ~")

    def is_null(self) -> Expr:
        return Op(IS_NULL, (self,))

    def is_not_null(self) -> Expr:
        return Op(IS_NOT_NULL, (self,))

    def as_double(self) -> Expr:
        return Op(AS_DOUBLE, (self,))


@dataclass(frozen=True, eq=False)
class Col(Expr):
    """A column by name; a tuple of names is a block of columns, evaluated at once by numpy."""

    name: str | tuple[str, ...]


@dataclass(frozen=True, eq=False)
class Lit(Expr):
    """A constant; a tuple holds one value per column of a block."""

    value: Any


@dataclass(frozen=True, eq=False)
class Op(Expr):
    name: str
    args: tuple[Expr, ...]


@dataclass(frozen=True, eq=False)
class When(Expr):
    """Spark's CASE WHEN: the first branch whose condition is true (a null one is not), else `default`."""

    branches: tuple[tuple[Expr, Expr], ...]
    default: Expr | None = None

    def when(self, condition: Expr, value: Any) -> When:
        return When((*self.branches, (condition, _expr(value))), self.default)

    def otherwise(self, value: Any) -> When:
        return When(self.branches, _expr(value))


@dataclass(frozen=True, eq=False)
class Order:
    """An ascending sort key; `nulls_first` as Spark's `asc_nulls_first` (`asc()`) or `asc_nulls_last`."""

    expr: Expr
    nulls_first: bool = True


def _expr(value: Any) -> Expr:
    return value if isinstance(value, Expr) else Lit(value)


def col(name: str) -> Col:
    return Col(name)


def lit(value: Any) -> Lit:
    return Lit(value)


def when(condition: Expr, value: Any) -> When:
    return When(((condition, _expr(value)),))


def finite(x: Expr) -> Expr:
    """`x` where it is a finite number, else null: the range rules judge numbers only.

    Spark orders NaN above every number, so `NaN < 0` is false and `NaN > 1` true: without
    this, NaN and +Infinity would pass the money rules and trip unrelated ones.
    """
    return Op(FINITE, (x,))


def floor(x: Expr) -> Expr:
    return Op(FLOOR, (x,))


def abs_(x: Expr) -> Expr:
    return Op(ABS, (x,))


def trim(x: Expr) -> Expr:
    return Op(TRIM, (x,))


def greatest(*args: Any) -> Expr:
    return Op(GREATEST, tuple(_expr(a) for a in args))


def size(x: Expr) -> Expr:
    return Op(SIZE, (x,))


def asc(x: Expr, nulls_first: bool = True) -> Order:
    return Order(x, nulls_first)
