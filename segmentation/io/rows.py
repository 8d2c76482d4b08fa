"""Rows of the product's tables, built by column name against the table's declared schema.

Kept apart from `tables` (Delta I/O) so that a module whose code also runs on executors
(`downstream.drift`) can build its rows without importing Delta or the config.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pyspark.sql.types import StructType


def row(schema: StructType, **values: Any) -> dict[str, Any]:
    """One row of a table whose schema is `schema`: its values by field name, in the schema's order.

    Every field must be given (None for a null) and no other, so a column added to a schema
    fails where its rows are built instead of arriving as a silent null. The dict goes to
    `spark.createDataFrame(rows, schema)`, which matches it to the schema by name.
    """
    names = schema.fieldNames()
    missing = [n for n in names if n not in values]
    extra = sorted(set(values) - set(names))
    if missing or extra:
        problems = [f"missing {', '.join(missing)}"] if missing else []
        problems += [f"not in the schema: {', '.join(extra)}"] if extra else []
        raise TypeError(f"a row of ({', '.join(names)}) must give every field and no other: {'; '.join(problems)}")
    return {n: values[n] for n in names}
