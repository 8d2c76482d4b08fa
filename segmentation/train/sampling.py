"""The one Spark-to-pandas boundary: a bounded, seeded sample of the features table."""

from __future__ import annotations

import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from segmentation.core.columns import ID_COLUMN


def driver_sample(df: DataFrame, columns: list[str], max_rows: int, seed: int) -> pd.DataFrame:
    """At most `max_rows` rows, chosen by a seeded hash of CUST_ID, returned in CUST_ID order.

    Hashing the id (not `sample()`) makes the choice independent of partitioning and row
    order, and the top-k by hash is a bounded per-partition reduction, never a full collect.
    """
    if max_rows <= 0:
        raise ValueError("sample max_rows must be positive")
    key = F.xxhash64(F.lit(seed), F.col(ID_COLUMN))
    chosen = df.select(ID_COLUMN, *columns).orderBy(key, F.col(ID_COLUMN)).limit(max_rows)
    pdf = chosen.toPandas()
    return pdf.sort_values(ID_COLUMN, kind="mergesort").reset_index(drop=True)
