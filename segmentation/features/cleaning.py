"""Cleaning: the raw table's columns by name and type, and median imputation of gaps."""

from __future__ import annotations

from typing import Mapping

from pyspark.sql import Column, DataFrame, Row
from pyspark.sql import functions as F
from pyspark.sql.types import NumericType, StringType

from segmentation.core import logs
from segmentation.core.columns import CORRUPT_COLUMN, ID_COLUMN, RAW_NUMERIC_COLUMNS
from segmentation.core.config import ImputationConfig
from segmentation.core.errors import InputError
from segmentation.features import rules

log = logs.get("features")
_DEFAULT = ImputationConfig()  # imputation's defaults, for callers that pass none


def select_raw_columns(df: DataFrame) -> DataFrame:
    """Keep the contract's columns by name, ids as strings and behaviour columns as doubles."""
    fields = {f.name: f.dataType for f in df.schema.fields}
    extra = [c for c in fields if c not in (ID_COLUMN, CORRUPT_COLUMN, *RAW_NUMERIC_COLUMNS)]
    if extra:
        log.info("input columns ignored (not in the contract): %s", ", ".join(extra))
    rules.require_columns(fields)
    rules.require_numeric(
        [(c, fields[c].simpleString()) for c in RAW_NUMERIC_COLUMNS if not isinstance(fields[c], NumericType)]
    )
    id_col = F.col(ID_COLUMN)
    if not isinstance(fields[ID_COLUMN], StringType):
        id_col = id_col.cast("string")
    corrupt = [contract_line(df.columns).alias(CORRUPT_COLUMN)] if CORRUPT_COLUMN in fields else []
    return df.select(
        id_col.alias(ID_COLUMN), *[F.col(c).cast("double").alias(c) for c in RAW_NUMERIC_COLUMNS], *corrupt
    )


_LINE_BROKEN = "_line_broken"


def contract_line(header: list[str]) -> Column:
    """A malformed line (Spark's corrupt record) narrowed to the contract's columns, as JSON text.

    Quarantine keeps what a bad row looked like, and the whole line would carry columns the
    contract never reads (an e-mail address, a name). The line is split again by the file's
    header, every field as text, and only the contract's fields are kept, by name. A line that
    does not split into the header's fields (too few or too many, a broken quote) cannot be
    attributed to columns at all: it is kept whole, as before.
    """
    fields = [c for c in header if c != CORRUPT_COLUMN]
    schema = ", ".join(f"`{c.replace('`', '``')}` STRING" for c in fields) + f", `{_LINE_BROKEN}` STRING"
    parsed = F.from_csv(F.col(CORRUPT_COLUMN), schema, {"mode": "PERMISSIVE", "columnNameOfCorruptRecord": _LINE_BROKEN})
    kept = F.to_json(F.struct(*[parsed[c].alias(c) for c in (ID_COLUMN, *RAW_NUMERIC_COLUMNS) if c in fields]))
    return (F.when(F.col(CORRUPT_COLUMN).isNull(), F.lit(None).cast("string"))
            .when(parsed[_LINE_BROKEN].isNull(), kept)
            .otherwise(F.col(CORRUPT_COLUMN)))


def median_expr(column: str | Column, method: str, accuracy: int) -> Column:
    c = F.col(column) if isinstance(column, str) else column
    if method == "exact":
        return F.percentile(c, F.lit(0.5))
    return F.percentile_approx(c, 0.5, accuracy)


def imputation_aggregates(columns: list[str], method: str, accuracy: int, where: Column) -> list[Column]:
    """The median of each column's non-null values and its count of nulls, over the rows `where`
    holds: aggregates to compute alongside a table's other counts, in the same pass."""
    aggs = []
    for c in columns:
        aggs.append(median_expr(F.when(where, F.col(c)), method, accuracy).alias(f"median:{c}"))
        aggs.append(F.count_if(where & F.col(c).isNull()).alias(f"missing:{c}"))
    return aggs


def read_imputation(row: Row, columns: list[str]) -> tuple[dict[str, float], dict[str, int]]:
    """The medians and null counts out of the row `imputation_aggregates` computed."""
    values = {c: row[f"median:{c}"] for c in columns}
    empty = [c for c, v in values.items() if v is None]
    if empty:
        raise InputError(f"cannot impute {', '.join(empty)}: the column has no non-null value")
    return {c: float(v) for c, v in values.items()}, {c: int(row[f"missing:{c}"] or 0) for c in columns}


def compute_medians(
    df: DataFrame, columns: list[str], method: str = _DEFAULT.method, accuracy: int = _DEFAULT.accuracy
) -> dict[str, float]:
    """One Spark pass over the full table; returns {column: median of its non-null values}."""
    if not columns:
        return {}
    row = df.agg(*imputation_aggregates(columns, method, accuracy, F.lit(True))).first()
    return read_imputation(row, columns)[0]


def fill_missing(df: DataFrame, values: Mapping[str, float]) -> DataFrame:
    return df.withColumns({c: F.coalesce(F.col(c), F.lit(float(v))) for c, v in values.items()})
