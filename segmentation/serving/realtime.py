"""Customers scored one request at a time, without Spark, exactly as the nightly job scores them.

A model server has no JVM: this module redoes the data contract (`contract.rule_conditions`), the
imputation (`cleaning.fill_missing`) and the features (`features.add_features`) on numpy arrays,
rule for rule and branch for branch, and gives the forest the float32 matrix that
`scoring.feature_matrix` builds. `tests/test_realtime.py` holds the two implementations to the
same verdicts, the same bits and the same segments.

Spark's doubles have a null apart from NaN; a numpy float64 column does not. Here a missing
value is None or pd.NA (an object column, or a nullable dtype such as Float64 or Int64), and NaN
is a value, refused as `not_finite:<col>` as the nightly job refuses it. A one-customer frame built
from a JSON object keeps the two apart; a frame read with `pd.read_csv` needs
`dtype_backend="numpy_nullable"` to. Behind a model server, MLflow's schema enforcement has
already turned every JSON null into NaN (and JSON has no NaN), so the pyfunc asks for
`nan_is_missing`: there a NaN is a gap. Columns beyond the contract's are ignored, as the nightly read
ignores them, and `malformed_line` has no counterpart here: a request has no raw line to garble.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from numbers import Integral, Real

import numpy as np
import pandas as pd

from segmentation.core.columns import (
    COUNT_COLUMNS,
    FEATURE_COLUMNS,
    FLOAT32_MAX,
    ID_COLUMN,
    MONEY_COLUMNS,
    PURCHASE_TYPES,
    RAW_NUMERIC_COLUMNS,
    SHARE_COLUMNS,
)
from segmentation.core.config import ContractConfig
from segmentation.core.errors import ContractViolationError, InputError, ModelError, NonFiniteFeatureError
from segmentation.model.store import ModelBundle

SEGMENT_COLUMNS = [ID_COLUMN, "segment_id", "segment_name", "segment_confidence"]

RAW_INDEX = {c: j for j, c in enumerate(RAW_NUMERIC_COLUMNS)}
FEATURE_INDEX = {c: j for j, c in enumerate(FEATURE_COLUMNS)}
MONEY = np.array([RAW_INDEX[c] for c in MONEY_COLUMNS])
SHARES = np.array([RAW_INDEX[c] for c in SHARE_COLUMNS])
COUNTS = np.array([RAW_INDEX[c] for c in COUNT_COLUMNS])

# Spark's floor of a double is a bigint: beyond +-2^63 it saturates, and comparing it with the
# double casts Long.MaxValue back to 2^63. So Spark calls a count above 2^63 "not a count".
_LONG_RANGE = (-(2.0**63), 2.0**63)

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
    out = pd.DataFrame(_features(_impute(request, imputation), ratio_epsilon), columns=FEATURE_COLUMNS,
                       index=frame.index)
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
    features = _features(_impute(request, bundle.imputation), ratio_epsilon)
    X = _model_matrix(bundle, features, request.ids)
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
    if not frame.columns.is_unique:
        raise InputError(f"input has duplicate column name(s): {', '.join(frame.columns[frame.columns.duplicated()])}")
    missing = [c for c in [ID_COLUMN, *RAW_NUMERIC_COLUMNS] if c not in frame.columns]
    if missing:
        raise InputError(f"input is missing required column(s): {', '.join(missing)}")
    values = np.empty((len(frame), len(RAW_NUMERIC_COLUMNS)), dtype=np.float64)
    null = np.zeros(values.shape, dtype=bool)
    wrong = []
    for j, name in enumerate(RAW_NUMERIC_COLUMNS):
        problem = _numbers(frame[name], values[:, j], null[:, j], nan_is_missing)
        if problem:
            wrong.append(f"{name} ({problem})")
    if wrong:
        raise InputError(f"input column(s) must be numeric: {', '.join(wrong)}")
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
# The data contract: contract.rule_conditions and check_rows' duplicates, on arrays


@lru_cache(maxsize=32)
def _rule_plan(contract: ContractConfig, nullable: tuple[str, ...]) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(rule names in rule_conditions' order, columns that may not be null, upper bound per share column)."""
    required = [c for c in RAW_NUMERIC_COLUMNS if c not in nullable]
    names = [
        "missing_cust_id",
        *[f"missing_value:{c}" for c in required],
        *[f"not_finite:{c}" for c in RAW_NUMERIC_COLUMNS],
        *[f"out_of_float32_range:{c}" for c in RAW_NUMERIC_COLUMNS],
        *[f"negative_amount:{c}" for c in MONEY_COLUMNS],
        *[f"out_of_range:{c}" for c in SHARE_COLUMNS],
        *[f"not_a_count:{c}" for c in COUNT_COLUMNS],
        "tenure_out_of_range",
        "purchases_exceed_parts",
        "cash_advance_inconsistent",
    ]
    tops = [contract.max_cash_advance_frequency if c == "CASH_ADVANCE_FREQUENCY" else 1.0 for c in SHARE_COLUMNS]
    return names, np.array([RAW_INDEX[c] for c in required], dtype=np.intp), np.array(tops, dtype=np.float64)


def _spark_floor(x: np.ndarray) -> np.ndarray:
    return np.clip(np.floor(x), *_LONG_RANGE)


def _broken(request: _Request, contract: ContractConfig, nullable: tuple[str, ...]) -> tuple[list[str], np.ndarray]:
    """(rule names, rows x rules: the row breaks the rule).

    Spark judges ranges on `_finite` values, where NaN, infinities and nulls are null and a
    comparison with null never breaks a rule: here every such comparison is and-ed with `ok`.
    """
    names, required, tops = _rule_plan(contract, nullable)
    x, null = request.values, request.null
    ok = np.isfinite(x)  # false at nulls too: they hold NaN

    def col(name: str) -> tuple[np.ndarray, np.ndarray]:
        return x[:, RAW_INDEX[name]], ok[:, RAW_INDEX[name]]

    # Spark's trim strips spaces only, not tabs or newlines.
    missing_id = np.array([i is None or i.strip(" ") == "" for i in request.ids], dtype=bool)
    with np.errstate(invalid="ignore", over="ignore"):
        shares, counts = x[:, SHARES], x[:, COUNTS]
        tenure, tenure_ok = col("TENURE")
        purchases, purchases_ok = col("PURCHASES")
        one_off, one_off_ok = col("ONEOFF_PURCHASES")
        installments, installments_ok = col("INSTALLMENTS_PURCHASES")
        cash, cash_ok = col("CASH_ADVANCE")
        trx, trx_ok = col("CASH_ADVANCE_TRX")
        frequency, frequency_ok = col("CASH_ADVANCE_FREQUENCY")
        cash_zero = cash == 0
        parts = [
            missing_id[:, None],
            null[:, required],
            ~null & ~ok,
            ok & (np.abs(x) > FLOAT32_MAX),
            ok[:, MONEY] & (x[:, MONEY] < 0),
            ok[:, SHARES] & ((shares < 0) | (shares > tops)),
            ok[:, COUNTS] & ((counts < 0) | (counts != _spark_floor(counts))),
            (tenure_ok & ((tenure < contract.tenure_min) | (tenure > contract.tenure_max)
                          | (tenure != _spark_floor(tenure))))[:, None],
            (purchases_ok & one_off_ok & installments_ok
             & (purchases > one_off + installments + contract.purchases_tolerance))[:, None],
            ((cash_ok & trx_ok & (cash_zero != (trx == 0)))
             | (cash_ok & cash_zero & frequency_ok & (frequency > 0)))[:, None],
        ]
    return names, np.concatenate(parts, axis=1)


def _reasons(request: _Request, contract: ContractConfig, nullable: tuple[str, ...]) -> list[list[str]]:
    names, broken = _broken(request, contract, nullable)
    found: list[list[str]] = [[] for _ in request.ids]
    rows, rules = np.nonzero(broken)
    for row, rule in zip(rows.tolist(), rules.tolist()):
        found[row].append(names[rule])
    for row in _duplicates(request, broken.sum(axis=1)):
        found[row].append("duplicate_cust_id")
    return found


def _duplicates(request: _Request, own: np.ndarray) -> list[int]:
    """Rows whose CUST_ID an earlier-ranked row holds, ranked as check_rows ranks them.

    The survivor breaks the fewest rules, then has the smallest values in column order (Spark's
    ascending order: nulls last, NaN above every number, -0.0 equal to 0.0).
    """
    rows_of: dict[str, list[int]] = {}
    for row, cid in enumerate(request.ids):
        if cid is not None:
            rows_of.setdefault(cid, []).append(row)
    duplicates: list[int] = []
    for rows in rows_of.values():
        if len(rows) > 1:
            ranked = sorted(rows, key=lambda r: (int(own[r]), *_sort_key(request, r)))  # stable: ties keep request order
            duplicates += ranked[1:]
    return sorted(duplicates)


def _sort_key(request: _Request, row: int) -> list[tuple[bool, bool, float]]:
    return [
        (bool(null), bool(math.isnan(v)), 0.0 if math.isnan(v) else v + 0.0)
        for v, null in zip(request.values[row].tolist(), request.null[row].tolist())
    ]


def _check(request: _Request, contract: ContractConfig, nullable: tuple[str, ...]) -> None:
    violations = [(row, request.ids[row], found) for row, found in enumerate(_reasons(request, contract, nullable))
                  if found]
    if not violations:
        return
    lines = [f"{_who(row, cid)} breaks the data contract: {', '.join(found)}"
             for row, cid, found in violations[:_MESSAGE_CUSTOMERS]]
    if len(violations) > _MESSAGE_CUSTOMERS:
        lines.append(f"and {len(violations) - _MESSAGE_CUSTOMERS} more customer(s)")
    raise ContractViolationError("; ".join(lines), violations)


def _who(row: int, cid: str | None) -> str:
    if cid is None or cid.strip(" ") == "":
        return f"the customer in row {row} of the request (no {ID_COLUMN})"
    return f"customer {cid}"


# ---------------------------------------------------------------------------------------------
# Imputation and features: cleaning.fill_missing and features.add_features, on arrays


def _impute(request: _Request, imputation: dict[str, float]) -> np.ndarray:
    values = request.values
    for name, median in imputation.items():
        j = RAW_INDEX.get(name)
        if j is not None and request.null[:, j].any():
            if values is request.values:
                values = values.copy()
            values[request.null[:, j], j] = float(median)
    return values


def _features(x: np.ndarray, ratio_epsilon: float) -> np.ndarray:
    """FEATURE_COLUMNS of imputed raw values; a NaN left by a null acts as Spark's null does.

    Each np.where is a `when` of features.py, nested in the same order: NaN fails every
    comparison as a null condition does and falls through to the next branch.
    """
    def col(name: str) -> np.ndarray:
        return x[:, RAW_INDEX[name]]

    out = np.empty((len(x), len(FEATURE_COLUMNS)), dtype=np.float64)
    out[:, : len(RAW_NUMERIC_COLUMNS)] = x
    balance, limit = col("BALANCE"), col("CREDIT_LIMIT")
    one_off, installments = col("ONEOFF_PURCHASES") > 0, col("INSTALLMENTS_PURCHASES") > 0
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):  # the branch not taken may divide by 0
        denominator = col("MINIMUM_PAYMENTS") + ratio_epsilon
        # greatest() skips a null as fmax skips the NaN standing for one
        months = np.fmax(col("TENURE"), 1.0)
        purchase_type = np.where(
            one_off & installments, "both",
            np.where(one_off, "one_off", np.where(installments, "installments", "none")),
        )
        engineered = {
            "LIMIT_USAGE": np.where(limit > 0, balance / limit, np.where(balance > 0, 1.0, 0.0)),
            "PAYMENT_MINPAY_RATIO": np.where(denominator > 0, col("PAYMENTS") / denominator, 0.0),
            **{f"PURCHASE_{t}": purchase_type == t for t in PURCHASE_TYPES},
            "MONTHLY_AVG_PURCHASES": col("PURCHASES") / months,
            "MONTHLY_CASH_ADVANCE": col("CASH_ADVANCE") / months,
        }
    for name, values in engineered.items():
        out[:, FEATURE_INDEX[name]] = values
    return out


# ---------------------------------------------------------------------------------------------
# The forest's input: scoring.feature_matrix and scoring.check_finite


def _model_matrix(bundle: ModelBundle, features: np.ndarray, ids: list[str | None]) -> np.ndarray:
    unknown = [c for c in bundle.feature_columns if c not in FEATURE_INDEX]
    if unknown:
        raise ModelError(f"model {bundle.version} expects feature column(s) this scorer does not compute: "
                         f"{', '.join(unknown)}")
    chosen = features[:, [FEATURE_INDEX[c] for c in bundle.feature_columns]]
    with np.errstate(over="ignore"):  # beyond float32 becomes an infinity, refused below
        X = chosen.astype(np.float32)
    bad = ~np.isfinite(X)
    if bad.any():
        row, j = (int(i) for i in np.argwhere(bad)[0])
        value = chosen[row, j]
        what = "missing" if math.isnan(value) else (
            "beyond float32's range" if math.isfinite(value) else f"not finite ({value})"
        )
        raise NonFiniteFeatureError(
            f"feature {bundle.feature_columns[j]} of customer {ids[row]} is {what} "
            f"({int(bad.any(axis=1).sum())} such row(s) in this request of {len(X)}); refusing to score it"
        )
    return X
