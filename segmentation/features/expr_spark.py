"""The Spark backend of `expr`: an expression tree as a pyspark Column, for the nightly job.

Each operation becomes the Column the job built by hand before the definitions were shared,
so the plans (and their cost) are the same.
"""

from __future__ import annotations

from typing import Callable

from pyspark.sql import Column
from pyspark.sql import functions as F

from segmentation.features import expr as E

_BINARY: dict[str, Callable[[Column, Column], Column]] = {
    E.AND: lambda a, b: a & b,
    E.OR: lambda a, b: a | b,
    E.EQ: lambda a, b: a == b,
    E.NE: lambda a, b: a != b,
    E.LT: lambda a, b: a < b,
    E.LE: lambda a, b: a <= b,
    E.GT: lambda a, b: a > b,
    E.GE: lambda a, b: a >= b,
    E.ADD: lambda a, b: a + b,
    E.DIV: lambda a, b: a / b,
}

_UNARY: dict[str, Callable[[Column], Column]] = {
    E.NOT: lambda a: ~a,
    E.ABS: F.abs,
    E.FLOOR: F.floor,
    E.TRIM: F.trim,
    E.SIZE: F.size,
    E.IS_NULL: lambda a: a.isNull(),
    E.IS_NOT_NULL: lambda a: a.isNotNull(),
    E.AS_DOUBLE: lambda a: a.cast("double"),
    E.FINITE: lambda a: F.when(~F.isnan(a) & (F.abs(a) != F.lit(float("inf"))), a),
}


def column(expr: E.Expr) -> Column:
    """The pyspark Column computing `expr`, row by row."""
    if isinstance(expr, E.Col):
        if not isinstance(expr.name, str):
            raise TypeError(f"a block of columns is numpy's: Spark evaluates one column at a time ({expr.name})")
        return F.col(expr.name)
    if isinstance(expr, E.Lit):
        if isinstance(expr.value, tuple):
            raise TypeError(f"a constant per column is numpy's: Spark takes one value ({expr.value})")
        return F.lit(expr.value)
    if isinstance(expr, E.When):
        (first, value), *rest = expr.branches
        out = F.when(column(first), column(value))
        for condition, value in rest:
            out = out.when(column(condition), column(value))
        return out if expr.default is None else out.otherwise(column(expr.default))
    if isinstance(expr, E.Op):
        args = [column(a) for a in expr.args]
        if expr.name == E.GREATEST:
            return F.greatest(*args)
        if expr.name in _BINARY:
            return _BINARY[expr.name](*args)
        return _UNARY[expr.name](*args)
    raise TypeError(f"not an expression: {expr!r}")


def sort_order(order: E.Order) -> Column:
    c = column(order.expr)
    return c.asc_nulls_first() if order.nulls_first else c.asc_nulls_last()
