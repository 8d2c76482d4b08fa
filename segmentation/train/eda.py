"""Exploratory profile of the training sample: the notebook's opening look at the data.

Missing shares come from the night's counts (rows imputed plus rows quarantined for a missing
value, over all rows read), since the sample itself is already imputed and checked.
"""

from __future__ import annotations

import pandas as pd

EDA_COLUMNS = ["column", "missing_share", "zero_share", "p01", "p25", "p50", "p75", "p99", "skew"]


def column_profile(sample: pd.DataFrame, columns: list[str], missing: dict[str, int], rows_read: int) -> pd.DataFrame:
    """Per column: missing share before imputation, zero share, quantiles and skew."""
    values = sample[columns].astype(float)
    q = values.quantile([0.01, 0.25, 0.5, 0.75, 0.99])
    frame = pd.DataFrame(
        {
            "column": columns,
            "missing_share": [missing.get(c, 0) / rows_read if rows_read else 0.0 for c in columns],
            "zero_share": (values == 0).mean().to_numpy(),
            "p01": q.loc[0.01].to_numpy(),
            "p25": q.loc[0.25].to_numpy(),
            "p50": q.loc[0.5].to_numpy(),
            "p75": q.loc[0.75].to_numpy(),
            "p99": q.loc[0.99].to_numpy(),
            "skew": values.skew().fillna(0.0).to_numpy(),
        }
    )
    return frame[EDA_COLUMNS]


def correlation(sample: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """Pearson correlation of the model features; constant columns correlate 0, not NaN."""
    return sample[columns].astype(float).corr().fillna(0.0)
