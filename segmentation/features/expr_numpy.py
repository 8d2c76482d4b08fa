"""The numpy backend of `expr`: an expression tree evaluated on arrays, with Spark SQL's meaning.

Real-time scoring has no JVM, yet must give the nightly job's verdicts and feature bits. Spark's
doubles have a null apart from NaN, so a column here is `Values`: its numbers and where they
are known. On that representation every operation does what Spark does:

- three-valued logic: a comparison with a null is null, `and`/`or` follow Kleene's tables, and
  only a definite true breaks a rule (`definitely`, Spark's `coalesce(cond, false)`);
- NaN is a value, above every number and equal to itself; -0.0 equals 0.0;
- `floor` of a double is a bigint: 0 for NaN, saturated at +-2^63;
- `greatest` skips nulls; `when` takes the first branch whose condition is true;
- `trim` strips spaces only; division by zero is null (Spark's non-ANSI division: every
  division in the definitions is guarded, so the ANSI job never divides by zero either).

Every operation works on whole columns, and on blocks of columns (rows x columns) at once:
a family of rules over many columns costs a few array operations, not one per column. A
`Program` compiles expressions once (a node they share is one step) so that a one-customer
request pays for the array operations, not for walking the trees. Numbers are doubles, as
every column they meet is. Importing this module does not import pyspark.
"""

from __future__ import annotations

import itertools
import math
from functools import partial
from typing import Any, Callable, Mapping, NamedTuple, Sequence

import numpy as np

from segmentation.features import expr as E

# Spark's floor of a double is a bigint: beyond +-2^63 it saturates, and comparing it with the
# double casts Long.MaxValue back to 2^63. So Spark calls a count above 2^63 "not a count".
_LONG_RANGE = (-(2.0**63), 2.0**63)

_NUMPY_COMPARISONS = {E.EQ: np.equal, E.NE: np.not_equal, E.LT: np.less, E.LE: np.less_equal,
                      E.GT: np.greater, E.GE: np.greater_equal}


class Values(NamedTuple):
    """A column's values and where they are known (`True`: everywhere).

    A boolean column is False where it is unknown, so its values are where it is definitely true.
    `nan_free` (no known value is NaN) spares a comparison the terms that put NaN in Spark's
    place, and `finite` (every known value is a finite number) spares `finite` its work: most
    requests hold neither NaN nor infinities.
    """

    values: np.ndarray
    known: np.ndarray | bool
    nan_free: bool = True
    finite: bool = False


class Table:
    """What a `Program` reads: a float64 block (rows x the program's `block` columns) and other columns by name."""

    def __init__(self, values: np.ndarray, known: np.ndarray | bool = True,
                 others: Mapping[str, Values] | None = None) -> None:
        self.values, self.known, self.others = values, known, dict(others or {})
        # Per column, whether it holds no null: a fully known column needs no mask, even beside a gap.
        self.full: list[bool] = [] if known is True else known.all(axis=0).tolist()
        finite = np.isfinite(values) if known is True else np.isfinite(values) | ~known
        self.finite = np.count_nonzero(finite) == finite.size
        nan = np.isnan(values) if known is True else np.isnan(values) & known
        self.nan_free = self.finite or not np.count_nonzero(nan)

    @property
    def rows(self) -> int:
        return len(self.values)

    def with_columns(self, others: Mapping[str, Values]) -> Table:
        out = Table.__new__(Table)
        out.__dict__.update(self.__dict__, others={**self.others, **others})
        return out


Step = Callable[..., Values]


class Program:
    """Expressions compiled for tables whose block holds the `block` columns, in that order.

    `run` evaluates every expression; a node they share, by structure, is computed once.
    """

    def __init__(self, exprs: Sequence[E.Expr], block: Sequence[str]) -> None:
        self._index = {name: j for j, name in enumerate(block)}
        self._slots: dict[tuple[Any, ...], int] = {}
        self._initial: list[Values | None] = []  # constants; None where a step fills the slot
        self._steps: list[tuple[int, Step, tuple[int, ...]]] = []
        self.outputs = [self._compile(e) for e in exprs]
        self._run = self._straight_line()

    def run(self, table: Table) -> list[Values]:
        with np.errstate(all="ignore"):  # as in Spark, NaN, infinities and overflow are values, not warnings
            return self._run(table)

    def _straight_line(self) -> Callable[[Table], list[Values]]:
        """The steps as one generated function, `s3 = f3(t, s1, s2)` a line: no loop to pay per step."""
        scope: dict[str, Any] = {f"s{slot}": v for slot, v in enumerate(self._initial) if v is not None}
        lines = ["def run(t):"]
        for slot, step, args in self._steps:
            scope[f"f{slot}"] = step
            lines.append(f"    s{slot} = f{slot}(t{''.join(f', s{a}' for a in args)})")
        lines.append(f"    return [{', '.join(f's{o}' for o in self.outputs)}]")
        exec("\n".join(lines), scope)  # noqa: S102 (our own steps, numbered: no outside text)
        return scope["run"]

    def _compile(self, expr: E.Expr) -> int:
        if isinstance(expr, E.Col):
            return self._add(("col", expr.name), self._column(expr.name), ())
        if isinstance(expr, E.Lit):
            value = _constant(expr.value)
            is_float = np.asarray(value).dtype.kind == "f"
            nan_free, finite = not (is_float and np.isnan(value).any()), is_float and np.isfinite(value).all()
            constant = Values(value, True, nan_free, bool(finite))
            return self._add(("lit", type(expr.value).__name__, repr(expr.value)), constant, ())
        if isinstance(expr, E.When):
            args = tuple(self._compile(x) for branch in expr.branches for x in branch)
            if expr.default is not None:
                args += (self._compile(expr.default),)
            return self._add(("when", *args), partial(_when, expr.default is not None), args)
        if not isinstance(expr, E.Op):
            raise TypeError(f"not an expression: {expr!r}")
        args = tuple(self._compile(a) for a in expr.args)
        step = partial(_compare, _NUMPY_COMPARISONS[expr.name], expr.name) if expr.name in _NUMPY_COMPARISONS \
            else _STEPS[expr.name]
        return self._add((expr.name, *args), step, args)

    def _add(self, key: tuple[Any, ...], step: Step | Values, args: tuple[int, ...]) -> int:
        slot = self._slots.get(key)
        if slot is None:
            slot = self._slots[key] = len(self._initial)
            if isinstance(step, Values):
                self._initial.append(step)
            else:
                self._initial.append(None)
                self._steps.append((slot, step, args))
        return slot

    def _column(self, name: str | tuple[str, ...]) -> Step:
        if isinstance(name, str):
            if name not in self._index:
                return partial(_other_column, name)
            return partial(_block_column, self._index[name])
        at = [self._index[n] for n in name]
        if at == list(range(len(self._index))):
            return _whole_block
        return partial(_block_columns, np.array(at, dtype=np.intp))


def definitely(v: Values, rows: int) -> np.ndarray:
    """Where a condition is true, not false or null: Spark's `coalesce(cond, false)`."""
    return v.values if np.ndim(v.values) else np.full(rows, bool(v.values))


def as_float(v: Values) -> np.ndarray:
    """The values as float64, NaN where unknown (as pandas shows a null)."""
    values = np.asarray(v.values, dtype=np.float64)
    return values if v.known is True else np.where(v.known, values, np.nan)


def sort_keys(orders: Sequence[E.Order], values: Sequence[Values], rows: Sequence[int]) -> list[tuple[Any, ...]]:
    """Per row of `rows`, a key Python sorts as Spark's ascending ORDER BY `orders` sorts.

    `values` are the orders' expressions evaluated (a `Program` of them). Nulls come first or
    last as each order says; NaN is above every number; -0.0 equals 0.0.
    """
    at = np.asarray(rows, dtype=np.intp)
    columns = []
    for order, v in zip(orders, values):
        known = np.broadcast_to(v.known, np.shape(v.values))[at].tolist()
        # (after the nulls?, NaN?, value): a null's value is never compared, nor a NaN's
        columns.append([
            (k == order.nulls_first, *(_nan_last(x) if k else (False, 0)))
            for x, k in zip(np.asarray(v.values)[at].tolist(), known)
        ])
    return [tuple(itertools.chain.from_iterable(parts)) for parts in zip(*columns)]


def _nan_last(x: Any) -> tuple[bool, Any]:
    nan = isinstance(x, float) and math.isnan(x)
    return nan, 0.0 if nan else x


# ---------------------------------------------------------------------------------------------
# The steps: each takes the table, then its arguments' Values


def _constant(value: Any) -> Any:
    """A literal as numpy holds it: numbers as doubles, a tuple (one value per column) as an array.

    Text is held as Python strings (object dtype), as CUST_ID is: cheaper to select and compare
    than numpy's fixed-width strings.
    """
    if isinstance(value, tuple):
        return np.array(value, dtype=np.float64)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return np.float64(value)
    if isinstance(value, str):
        return np.array(value, dtype=object)
    return np.asarray(value)[()]


def _all_known(known: np.ndarray | bool) -> np.ndarray | bool:
    if known is True or np.count_nonzero(known) == np.size(known):
        return True
    return known


def _both(a: np.ndarray | bool, b: np.ndarray | bool) -> np.ndarray | bool:
    if a is True:
        return b
    return a if b is True else a & b


def _block_column(j: int, t: Table) -> Values:
    return Values(t.values[:, j], True if t.known is True or t.full[j] else t.known[:, j], t.nan_free, t.finite)


def _block_columns(at: np.ndarray, t: Table) -> Values:
    full = t.known is True or all(t.full[j] for j in at.tolist())
    return Values(t.values.take(at, axis=1), True if full else t.known.take(at, axis=1), t.nan_free, t.finite)


def _whole_block(t: Table) -> Values:
    return Values(t.values, True if t.known is True or all(t.full) else t.known, t.nan_free, t.finite)


def _other_column(name: str, t: Table) -> Values:
    return t.others[name]


def _compare(compare: np.ufunc, name: str, _: Table, a: Values, b: Values) -> Values:
    """Spark's comparison of two known values: NaN equals NaN and is greater than any number."""
    x, y = a.values, b.values
    out = compare(x, y)
    nan_x, nan_y = not a.nan_free, not b.nan_free
    if nan_x or nan_y:
        if name == E.GT and nan_x:
            out = out | (np.isnan(x) & ~np.isnan(y) if nan_y else np.isnan(x))
        elif name == E.GE and nan_x:
            out = out | np.isnan(x)
        elif name == E.LT and nan_y:
            out = out | (np.isnan(y) & ~np.isnan(x) if nan_x else np.isnan(y))
        elif name == E.LE and nan_y:
            out = out | np.isnan(y)
        elif name == E.EQ and nan_x and nan_y:
            out = out | (np.isnan(x) & np.isnan(y))
        elif name == E.NE and nan_x and nan_y:
            out = out & ~(np.isnan(x) & np.isnan(y))
    known = _both(a.known, b.known)
    return Values(out if known is True else out & known, known)


def _and(_: Table, a: Values, b: Values) -> Values:
    true = a.values & b.values
    if a.known is True and b.known is True:
        return Values(true, True)
    false = (a.known & ~a.values) | (b.known & ~b.values)  # either side is known to be false
    return Values(true, _all_known(true | false))


def _or(_: Table, a: Values, b: Values) -> Values:
    true = a.values | b.values
    if a.known is True and b.known is True:
        return Values(true, True)
    false = (a.known & ~a.values) & (b.known & ~b.values)  # both sides are known to be false
    return Values(true, _all_known(true | false))


def _not(_: Table, a: Values) -> Values:
    return Values(~a.values if a.known is True else a.known & ~a.values, a.known)


def _is_null(_: Table, a: Values) -> Values:
    return Values(np.zeros(np.shape(a.values), bool) if a.known is True else ~a.known, True)


def _is_not_null(_: Table, a: Values) -> Values:
    return Values(np.ones(np.shape(a.values), bool) if a.known is True else a.known, True)


def _finite(_: Table, a: Values) -> Values:
    if a.finite:
        return a
    finite = np.isfinite(a.values)
    return Values(a.values, _all_known(finite if a.known is True else a.known & finite), True, True)


def _add(_: Table, a: Values, b: Values) -> Values:
    return Values(a.values + b.values, _both(a.known, b.known), False)  # inf + -inf is NaN


def _divide(_: Table, a: Values, b: Values) -> Values:
    zero = b.values == 0
    known = _both(a.known, b.known)
    if np.count_nonzero(zero):
        known = ~zero if known is True else known & ~zero
    return Values(a.values / b.values, known, False)  # 0 / 0 is null, but inf / inf is NaN


def _floor(_: Table, a: Values) -> Values:
    out = np.floor(a.values)
    if not a.nan_free:
        out = np.where(np.isnan(out), 0.0, out)  # (long) NaN is 0 in the JVM
    saturated = np.minimum(np.maximum(out, _LONG_RANGE[0]), _LONG_RANGE[1]) + 0.0  # a bigint has no -0.0
    return Values(saturated, a.known, True, True)


def _abs(_: Table, a: Values) -> Values:
    return Values(np.abs(a.values), a.known, a.nan_free, a.finite)


def _as_double(_: Table, a: Values) -> Values:
    return Values(np.asarray(a.values, dtype=np.float64), a.known)


def _trim(_: Table, a: Values) -> Values:
    values = np.asarray(a.values)
    trimmed = [s.strip(" ") if isinstance(s, str) else s for s in values.ravel().tolist()]
    return Values(np.array(trimmed, dtype=object).reshape(values.shape), a.known)


def _size(_: Table, a: Values) -> Values:
    values = np.asarray(a.values)
    sizes = [0 if x is None else len(x) for x in values.ravel().tolist()]
    return Values(np.array(sizes, dtype=np.float64).reshape(values.shape), a.known)


def _greatest(_: Table, *args: Values) -> Values:
    out, *rest = args
    for b in rest:
        # A later argument wins only if greater in Spark's order (NaN above all): a tie keeps the first, -0.0 too.
        later = b.values > out.values
        if not b.nan_free:
            later = later | (np.isnan(b.values) & ~np.isnan(out.values))
        larger = np.where(later, b.values, out.values)
        flags = (out.nan_free and b.nan_free, out.finite and b.finite)
        if out.known is True and b.known is True:
            out = Values(larger, True, *flags)
        elif out.known is True:
            out = Values(np.where(b.known, larger, out.values), True, *flags)
        elif b.known is True:
            out = Values(np.where(out.known, larger, b.values), True, *flags)
        else:
            values = np.where(out.known & b.known, larger, np.where(out.known, out.values, b.values))
            out = Values(values, _all_known(out.known | b.known), *flags)
    return out


def _when(has_default: bool, _: Table, *args: Values) -> Values:
    """CASE WHEN: `args` are condition, value pairs, then the default if there is one."""
    if has_default:
        rest, end = args[-1], len(args) - 1
    else:  # no otherwise: null
        last = args[-1].values
        rest, end = Values(np.zeros_like(last), np.zeros(np.shape(last), bool)), len(args)
    for at in range(end - 2, -1, -2):
        taken, v = args[at].values, args[at + 1]  # a condition is false where null: not taken
        known = True if v.known is True and rest.known is True else _all_known(np.where(taken, v.known, rest.known))
        rest = Values(np.where(taken, v.values, rest.values), known, v.nan_free and rest.nan_free,
                      v.finite and rest.finite)
    return rest


_STEPS: dict[str, Step] = {
    E.AND: _and, E.OR: _or, E.NOT: _not, E.IS_NULL: _is_null, E.IS_NOT_NULL: _is_not_null, E.FINITE: _finite,
    E.ADD: _add, E.DIV: _divide, E.ABS: _abs, E.FLOOR: _floor, E.AS_DOUBLE: _as_double, E.TRIM: _trim, E.SIZE: _size,
    E.GREATEST: _greatest,
}
