"""Log transform and standard scaling, fitted on the sample and shipped in the bundle."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.preprocessing import StandardScaler

from segmentation.core.config import SpaceConfig, TransformConfig

# train.transform's and train.space's defaults, for callers that pass none.
_TRANSFORM, _SPACE = TransformConfig(), SpaceConfig()


class LogScaler(BaseEstimator, TransformerMixin):
    """log1p (or log(x + offset)) on `log_columns`, then StandardScaler over all columns.

    Works on a pandas frame by column name, so scoring cannot silently reorder features.
    """

    def __init__(self, columns: list[str], log_columns: list[str], kind: str = _TRANSFORM.kind,
                 offset: float = _TRANSFORM.offset):
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


class ClusteringSpace(BaseEstimator, TransformerMixin):
    """The columns and weights the clusterers measure distance in, from scaled features.

    With `kind="families"` each family's columns get weight 1/sqrt(len(family)), so every family
    adds the same total variance to a squared distance however many columns describe it, and
    columns in no family (the purchase-type indicators, functions of columns already in one) are
    left out. `kind="all"` keeps every column at weight 1.
    """

    def __init__(self, columns: list[str], families: dict[str, list[str]], kind: str = _SPACE.kind):
        self.columns = columns
        self.families = families
        self.kind = kind

    def fit(self, X=None, y=None) -> "ClusteringSpace":
        if self.kind == "all":
            self.weights_ = {c: 1.0 for c in self.columns}
        elif self.kind == "families":
            unknown = [c for cols in self.families.values() for c in cols if c not in self.columns]
            if unknown:
                raise ValueError(f"clustering families name columns that are not model features: {unknown}")
            self.weights_ = {c: 1.0 / np.sqrt(len(cols)) for cols in self.families.values() for c in cols}
        else:
            raise ValueError(f"unknown clustering space {self.kind!r}")
        self.space_columns_ = [c for c in self.columns if c in self.weights_]
        self._idx = np.array([self.columns.index(c) for c in self.space_columns_])
        self._w = np.array([self.weights_[c] for c in self.space_columns_])
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        return X[:, self._idx] * self._w
