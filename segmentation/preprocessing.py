"""Log transform and standard scaling, fitted on the sample and shipped in the bundle."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.preprocessing import StandardScaler


class LogScaler(BaseEstimator, TransformerMixin):
    """log1p (or log(x + offset)) on `log_columns`, then StandardScaler over all columns.

    Works on a pandas frame by column name, so scoring cannot silently reorder features.
    """

    def __init__(self, columns: list[str], log_columns: list[str], kind: str = "log1p", offset: float = 1e-6):
        self.columns = columns
        self.log_columns = log_columns
        self.kind = kind
        self.offset = offset

    def _logged(self, X: pd.DataFrame) -> np.ndarray:
        values = X[self.columns].to_numpy(dtype=np.float64, copy=True)
        idx = [self.columns.index(c) for c in self.log_columns]
        block = values[:, idx]
        if self.kind == "log1p":
            # Negative values are outside the contract; clip so one bad row cannot make NaN.
            values[:, idx] = np.log1p(np.clip(block, 0.0, None))
        elif self.kind == "log":
            values[:, idx] = np.log(np.clip(block + self.offset, np.finfo(float).tiny, None))
        else:
            raise ValueError(f"unknown transform kind {self.kind!r}")
        return values

    def fit(self, X: pd.DataFrame, y=None) -> "LogScaler":
        self.scaler_ = StandardScaler().fit(self._logged(X))
        self.n_features_in_ = len(self.columns)
        return self

    def transform(self, X: pd.DataFrame) -> np.ndarray:
        return self.scaler_.transform(self._logged(X))
