"""Customers scored one request at a time, without Spark, exactly as the nightly job scores them.

A model server has no JVM. The data contract (`features.rules`) and the features
(`features.definitions`) are defined once, as expressions: this module evaluates those same
definitions with numpy (`features.expr_numpy`, Spark SQL's nulls, NaN order and floor on arrays),
fills gaps as `cleaning.fill_missing` does and gives the forest the float32 matrix that
`scoring.feature_matrix` builds, refused as `store.check_finite` refuses it.
`tests/test_realtime.py` holds the two engines to the same verdicts, the same bits and the same
segments.

Spark's doubles have a null apart from NaN; a numpy float64 column does not. Here a missing
value is None or pd.NA (an object column, or a nullable dtype such as Float64 or Int64), and NaN
is a value, refused as `not_finite:<col>` as the nightly job refuses it. A one-customer frame built
from a JSON object keeps the two apart; a frame read with `pd.read_csv` needs
`dtype_backend="numpy_nullable"` to. Behind a model server, MLflow's schema enforcement has
already turned every JSON null into NaN (and JSON has no NaN), so the pyfunc asks for
`nan_is_missing`: there a NaN is a gap. Columns beyond the contract's are ignored, as the nightly read
ignores them, and `malformed_line` never fires here: a request has no raw line to garble.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from numbers import Integral, Real

import numpy as np
import pandas as pd

from segmentation.core.columns import CORRUPT_COLUMN, FEATURE_COLUMNS, ID_COLUMN, RAW_NUMERIC_COLUMNS
from segmentation.core.config import ContractConfig
from segmentation.core.errors import ContractViolationError, InputError, ModelError
from segmentation.features import rules
from segmentation.features.definitions import feature_stages
from segmentation.features.expr_numpy import Program, Table, Values, as_float, definitely, sort_keys
from segmentation.model.store import ModelBundle, check_finite

SEGMENT_COLUMNS = [ID_COLUMN, "segment_id", "segment_name", "segment_confidence"]

RAW_INDEX = {c: j for j, c in enumerate(RAW_NUMERIC_COLUMNS)}
FEATURE_INDEX = {c: j for j, c in enumerate(FEATURE_COLUMNS)}
ENGINEERED_COLUMNS = FEATURE_COLUMNS[len(RAW_NUMERIC_COLUMNS):]  # the model's input starts with the raw columns
_SURVIVOR_ORDER = rules.survivor_order()
_SURVIVOR_KEYS = Program([order.expr for order in _SURVIVOR_ORDER], RAW_NUMERIC_COLUMNS)

# Enough customers in an error message to act on; `violations` holds them all.
_MESSAGE_CUSTOMERS = 10


@dataclass(frozen=True)
class _Request:
    ids: list[str | None]
    values: np.ndarray  # rows x RAW_NUMERIC_COLUMNS, float64, NaN where null
    null: np.ndarray  # rows x RAW_NUMERIC_COLUMNS: the value was missing (None, pd.NA)


def reasons(frame: pd.DataFrame, contract: ContractConfig, nullable: list[str]) -> list[list[str]]:
    """Per row of `frame`, every contract rule it breaks, named and ordered as the quarantine names them."""
    return _reasons(_read(frame), contract, tuple(nullable))


def check_customers(frame: pd.DataFrame, contract: ContractConfig, nullable: list[str]) -> None:
    """Raises `ContractViolationError` naming each customer the nightly job would quarantine, and why."""
    _check(_read(frame), contract, tuple(nullable))


def customer_features(frame: pd.DataFrame, imputation: dict[str, float], ratio_epsilon: float) -> pd.DataFrame:
    """CUST_ID and FEATURE_COLUMNS (float64) of customers that passed `check_customers`."""
    request = _read(frame)
    features, _ = _features(*_impute(request, imputation), ratio_epsilon)
    out = pd.DataFrame(features, columns=FEATURE_COLUMNS, index=frame.index)
    out.insert(0, ID_COLUMN, request.ids)
    return out


def assign(
    bundle: ModelBundle, frame: pd.DataFrame, contract: ContractConfig, nullable: list[str], ratio_epsilon: float,
    nan_is_missing: bool = False,
) -> pd.DataFrame:
    """CUST_ID, segment_id, segment_name and segment_confidence: the nightly scores, for these customers now.

    Gaps are filled with the medians the bundle was trained with (`bundle.imputation`).
    `nan_is_missing`: a NaN in a float column is a gap, for callers (a model server's JSON
    decoding) that cannot keep the two apart.
    """
    request = _read(frame, nan_is_missing)
    _check(request, contract, tuple(nullable))
    features, known = _features(*_impute(request, bundle.imputation), ratio_epsilon)
    X = _model_matrix(bundle, features, known, request.ids)
    segment, confidence = bundle.predict_matrix(X)
    names = bundle.segment_names
    return pd.DataFrame(
        {
            ID_COLUMN: request.ids,
            "segment_id": segment.astype(np.int32),
            "segment_name": [names.get(s) for s in segment.tolist()],
            "segment_confidence": confidence.astype(np.float64),
        },
        index=frame.index,
    )


# ---------------------------------------------------------------------------------------------
# Reading the request: what cleaning.select_raw_columns does to the raw table


def _read(frame: pd.DataFrame, nan_is_missing: bool = False) -> _Request:
    """The contract's columns of a request, checked as the nightly read checks them (`rules.require_*`)."""
    if not frame.columns.is_unique:
        raise InputError(f"input has duplicate column name(s): {', '.join(frame.columns[frame.columns.duplicated()])}")
    rules.require_columns(frame.columns)
    values = np.empty((len(frame), len(RAW_NUMERIC_COLUMNS)), dtype=np.float64)
    null = np.zeros(values.shape, dtype=bool)
    wrong = []
    for j, name in enumerate(RAW_NUMERIC_COLUMNS):
        problem = _numbers(frame[name], values[:, j], null[:, j], nan_is_missing)
        if problem:
            wrong.append((name, problem))
    rules.require_numeric(wrong)
    return _Request(_ids(frame[ID_COLUMN]), values, null)


def _numbers(column: pd.Series, values: np.ndarray, null: np.ndarray, nan_is_missing: bool = False) -> str | None:
    """Fills `values` and `null` from one column; returns what is wrong with it, if anything."""
    dtype = column.dtype
    if dtype == object:
        for i, v in enumerate(column.tolist()):
            if v is None or v is pd.NA:
                null[i], values[i] = True, np.nan
            elif isinstance(v, Real) and not isinstance(v, bool):  # numpy's bool is no Real
                try:
                    values[i] = float(v)
                except OverflowError:  # an integer beyond double's range: Spark reads such digits as Infinity
                    values[i] = math.copysign(math.inf, v)
            else:
                return f"{v!r} is a {type(v).__name__}"
        return None
    if pd.api.types.is_bool_dtype(dtype) or not (
        pd.api.types.is_float_dtype(dtype) or pd.api.types.is_integer_dtype(dtype)
    ):
        return str(dtype)
    if isinstance(dtype, np.dtype):
        values[:] = column.to_numpy(dtype=np.float64)
        if nan_is_missing:
            null[:] = np.isnan(values)
    else:  # a nullable dtype: its mask is the null, a NaN inside it stays a NaN
        null[:] = column.isna().to_numpy()
        values[:] = column.to_numpy(dtype=np.float64, na_value=np.nan)
    return None


def _ids(column: pd.Series) -> list[str | None]:
    ids: list[str | None] = []
    for v in column.tolist():
        if isinstance(v, str):
            ids.append(v)
        elif v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)):
            ids.append(None)  # NaN is how pandas marks a gap in a text column
        elif isinstance(v, Integral) and not isinstance(v, bool):
            ids.append(str(int(v)))
        else:
            # Spark would print a double id its own way (1.0E20): text or integers only, so ids match.
            raise InputError(f"{ID_COLUMN} must be text or an integer: got {v!r} ({type(v).__name__})")
    return ids


# ---------------------------------------------------------------------------------------------
# The data contract: `rules.contract_rules` and `rules.survivor_order`, on arrays


def _table(values: np.ndarray, null: np.ndarray, ids: list[str | None] | None = None) -> Table:
    """The raw columns (and CUST_ID) for `expr_numpy`; a request has no raw line, so no corrupt record."""
    rows = len(values)
    others = {}
    if ids is not None:
        id_known = np.fromiter((i is not None for i in ids), dtype=bool, count=rows)
        others = {
            ID_COLUMN: Values(np.array(ids, dtype=object).reshape(rows), True if id_known.all() else id_known),
            CORRUPT_COLUMN: Values(np.full(rows, None, dtype=object), np.zeros(rows, dtype=bool)),
        }
    return Table(values, True if not null.any() else ~null, others)


@lru_cache(maxsize=32)
def _rule_plan(limits: rules.ContractLimits, nullable: tuple[str, ...]) -> tuple[list[str], Program]:
    """(rule names in the quarantine's order, one condition per rule or family of rules over a block of columns)."""
    contract = [rule for rule in rules.contract_rules(limits, nullable) if rule.names]
    return ([name for rule in contract for name in rule.names],
            Program([rule.block() for rule in contract], RAW_NUMERIC_COLUMNS))


def _broken(request: _Request, contract: ContractConfig, nullable: tuple[str, ...]) -> tuple[list[str], np.ndarray]:
    """(rule names, rows x rules: the row definitely breaks the rule, as Spark's coalesce(cond, false) says)."""
    names, conditions = _rule_plan(rules.ContractLimits.of(contract), nullable)
    rows = len(request.ids)
    found = [definitely(v, rows) for v in conditions.run(_table(request.values, request.null, request.ids))]
    return names, np.concatenate([b if b.ndim == 2 else b[:, None] for b in found], axis=1)


def _reasons(request: _Request, contract: ContractConfig, nullable: tuple[str, ...]) -> list[list[str]]:
    names, broken = _broken(request, contract, nullable)
    found: list[list[str]] = [[] for _ in request.ids]
    rows, broken_rules = np.nonzero(broken)
    for row, rule in zip(rows.tolist(), broken_rules.tolist()):
        found[row].append(names[rule])
    for row in _duplicates(request, found):
        found[row].append(rules.DUPLICATE_RULE)
    return found


def _duplicates(request: _Request, found: list[list[str]]) -> list[int]:
    """Rows whose CUST_ID a row earlier in `rules.survivor_order` holds, ranked as check_rows ranks them.

    Spark's ties are in no particular order; here they keep the request's order.
    """
    rows_of: dict[str, list[int]] = {}
    for row, cid in enumerate(request.ids):
        if cid is not None:
            rows_of.setdefault(cid, []).append(row)
    repeated = [rows for rows in rows_of.values() if len(rows) > 1]
    if not repeated:
        return []
    reasons = np.empty(len(found), dtype=object)
    for row, own in enumerate(found):
        reasons[row] = own
    table = _table(request.values, request.null, request.ids).with_columns({rules.REASONS: Values(reasons, True)})
    candidates = sorted(row for rows in repeated for row in rows)
    key = dict(zip(candidates, sort_keys(_SURVIVOR_ORDER, _SURVIVOR_KEYS.run(table), candidates)))
    return sorted(row for rows in repeated for row in sorted(rows, key=key.__getitem__)[1:])


def _check(request: _Request, contract: ContractConfig, nullable: tuple[str, ...]) -> None:
    violations = [(row, request.ids[row], found) for row, found in enumerate(_reasons(request, contract, nullable))
                  if found]
    if not violations:
        return
    lines = [f"{_who(row, cid, rules.MISSING_ID_RULE in found)} breaks the data contract: {', '.join(found)}"
             for row, cid, found in violations[:_MESSAGE_CUSTOMERS]]
    if len(violations) > _MESSAGE_CUSTOMERS:
        lines.append(f"and {len(violations) - _MESSAGE_CUSTOMERS} more customer(s)")
    raise ContractViolationError("; ".join(lines), violations)


def _who(row: int, cid: str | None, missing_id: bool) -> str:
    if missing_id:
        return f"the customer in row {row} of the request (no {ID_COLUMN})"
    return f"customer {cid}"


# ---------------------------------------------------------------------------------------------
# Imputation and features: cleaning.fill_missing, and `definitions.feature_stages` on arrays


def _impute(request: _Request, imputation: dict[str, float]) -> tuple[np.ndarray, np.ndarray]:
    """(raw values with gaps filled by the medians, as fill_missing's coalesce fills them; the gaps left)."""
    values, null = request.values, request.null
    for name, median in imputation.items():
        j = RAW_INDEX.get(name)
        if j is not None and null[:, j].any():
            if values is request.values:
                values, null = values.copy(), null.copy()
            values[null[:, j], j] = float(median)
            null[:, j] = False
    return values, null


@lru_cache(maxsize=8)
def _feature_plan(ratio_epsilon: float) -> list[tuple[list[str], Program]]:
    """Per stage of `definitions.feature_stages`, (its column names, a program computing them)."""
    stages = feature_stages(ratio_epsilon)
    return [(list(stage), Program(list(stage.values()), RAW_NUMERIC_COLUMNS)) for stage in stages]


def _features(values: np.ndarray, null: np.ndarray, ratio_epsilon: float) -> tuple[np.ndarray, np.ndarray | bool]:
    """(FEATURE_COLUMNS of imputed raw values, float64 and NaN where null; where each is known, True: everywhere)."""
    table, found = _table(values, null), {}
    for names, program in _feature_plan(ratio_epsilon):
        found.update(zip(names, program.run(table)))
        table = table.with_columns(found)  # a later stage reads the columns before it (PURCHASE_TYPE)
    engineered = [found[c] for c in ENGINEERED_COLUMNS]
    out = np.column_stack([values, *[as_float(v) for v in engineered]])
    if not null.any() and all(v.known is True for v in engineered):
        return out, True
    rows = len(values)
    return out, np.column_stack([~null, *[np.broadcast_to(v.known, (rows,)) for v in engineered]])


# ---------------------------------------------------------------------------------------------
# The forest's input: scoring.feature_matrix, refused as scoring refuses it (store.check_finite)


def _model_matrix(
    bundle: ModelBundle, features: np.ndarray, known: np.ndarray | bool, ids: list[str | None],
) -> np.ndarray:
    unknown = [c for c in bundle.feature_columns if c not in FEATURE_INDEX]
    if unknown:
        raise ModelError(f"model {bundle.version} expects feature column(s) this scorer does not compute: "
                         f"{', '.join(unknown)}")
    at = [FEATURE_INDEX[c] for c in bundle.feature_columns]
    chosen = features[:, at]
    with np.errstate(over="ignore"):  # beyond float32 becomes an infinity, refused below
        X = chosen.astype(np.float32)

    def value(row: int, j: int) -> float | None:
        return float(chosen[row, j]) if known is True or known[row, at[j]] else None

    check_finite(X, list(bundle.feature_columns), value, ids.__getitem__, "request")
    return X
