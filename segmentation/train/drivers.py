"""What drives the segments: the forest's global importances and each segment's separating traits.

Permutation importance (accuracy lost on the held-out rows when a feature is shuffled) is the
figure to read; the forest's impurity importance sits beside it for reference, labelled as
biased toward high-variance, many-valued columns. Per segment, features rank by how far the
segment's mean sits from the population's, in population standard deviations.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from pyspark.sql.types import DoubleType, IntegerType, StringType, StructField, StructType
from sklearn.inspection import permutation_importance

from segmentation.io.rows import row

GLOBAL, SEGMENT = "global", "segment"

DRIVERS_SCHEMA = StructType(
    [
        StructField("model_version", StringType(), False),
        StructField("scope", StringType(), False),  # global | segment
        StructField("segment_id", IntegerType(), True),  # null for global rows
        StructField("feature", StringType(), False),
        StructField("rank", IntegerType(), False),
        StructField("permutation_importance", DoubleType(), True),
        StructField("permutation_std", DoubleType(), True),
        StructField("impurity_importance", DoubleType(), True),
        StructField("std_diff", DoubleType(), True),
    ]
)


def global_drivers(
    forest, X_test: np.ndarray, y_test: np.ndarray, columns: list[str], repeats: int, random_state: int,
) -> pd.DataFrame:
    """Permutation importance on held-out rows, with impurity importance beside it; ranked."""
    result = permutation_importance(
        forest, X_test.astype(np.float32), y_test, n_repeats=repeats, random_state=random_state, n_jobs=1
    )
    frame = pd.DataFrame(
        {
            "feature": columns,
            "permutation_importance": result.importances_mean,
            "permutation_std": result.importances_std,
            "impurity_importance": forest.feature_importances_,
        }
    )
    frame = frame.sort_values(["permutation_importance", "impurity_importance", "feature"],
                              ascending=[False, False, True], kind="mergesort")
    frame["rank"] = np.arange(1, len(frame) + 1)
    return frame.reset_index(drop=True)


def segment_drivers(profiles: pd.DataFrame) -> pd.DataFrame:
    """Every feature of every segment, ranked by |standardized difference| (1 = most separating)."""
    segs = profiles.dropna(subset=["segment_id"])[["segment_id", "feature", "std_diff"]].copy()
    segs["segment_id"] = segs["segment_id"].astype(int)
    segs["_abs"] = segs["std_diff"].abs()
    segs = segs.sort_values(["segment_id", "_abs", "feature"], ascending=[True, False, True], kind="mergesort")
    segs["rank"] = segs.groupby("segment_id").cumcount() + 1
    return segs.drop(columns="_abs").reset_index(drop=True)


def table_rows(global_frame: pd.DataFrame, segment_frame: pd.DataFrame, version: str) -> list[dict]:
    """Rows for DRIVERS_SCHEMA: the global ranking, then each segment's."""
    rows = [
        row(DRIVERS_SCHEMA, model_version=version, scope=GLOBAL, segment_id=None, feature=r.feature, rank=int(r.rank),
            permutation_importance=float(r.permutation_importance), permutation_std=float(r.permutation_std),
            impurity_importance=float(r.impurity_importance), std_diff=None)
        for r in global_frame.itertuples(index=False)
    ]
    rows += [
        row(DRIVERS_SCHEMA, model_version=version, scope=SEGMENT, segment_id=int(r.segment_id), feature=r.feature,
            rank=int(r.rank), permutation_importance=None, permutation_std=None, impurity_importance=None,
            std_diff=float(r.std_diff))
        for r in segment_frame.itertuples(index=False)
    ]
    return rows
