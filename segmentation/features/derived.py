"""Engineered features of the notebook as Spark columns over the cleaned table.

The features are defined once, in `features.definitions`; real-time scoring evaluates the same
definitions with numpy.
"""

from __future__ import annotations

from pyspark.sql import DataFrame

from segmentation.features.definitions import feature_stages
from segmentation.features.expr_spark import column


def add_features(df: DataFrame, ratio_epsilon: float = 1e-6) -> DataFrame:
    """Adds the engineered columns; expects imputed raw columns."""
    for stage in feature_stages(ratio_epsilon):
        df = df.withColumns({name: column(definition) for name, definition in stage.items()})
    return df
