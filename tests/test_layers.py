"""The package's shape: layers that import only downward, and models saved by older layouts still load."""

import shutil
import subprocess
import sys

from pathlib import Path

import numpy as np
import pandas as pd

from conftest import BUNDLED_CSV, PROJECT
from segmentation.core.columns import FEATURE_COLUMNS
from segmentation.model import store
from segmentation.train.preprocessing import ClusteringSpace, LogScaler

# Saved by the flat package (0.1.0, before the stage subpackages): its pickle names
# `segmentation.bundle.ModelBundle` and `segmentation.preprocessing.*`.
FLAT_PACKAGE_BUNDLE = PROJECT / "tests" / "fixtures" / "models" / "20261201T000000Z-fixture"


def test_every_import_points_down_the_layers():
    # Its own process: import-linter's command line changes logging for the process it runs in.
    linter = Path(sys.executable).parent / "lint-imports"
    done = subprocess.run([str(linter), "--config", str(PROJECT / ".importlinter"), "--no-cache"],
                          cwd=PROJECT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Contracts: 1 kept, 0 broken." in done.stdout


def test_a_bundle_saved_by_the_flat_package_loads_and_scores(tmp_path):
    assert b"segmentation.bundle" in (FLAT_PACKAGE_BUNDLE / store.BUNDLE_FILE).read_bytes()
    shutil.copytree(FLAT_PACKAGE_BUNDLE, tmp_path / FLAT_PACKAGE_BUNDLE.name)
    bundle = store.load(str(tmp_path), FLAT_PACKAGE_BUNDLE.name)
    assert isinstance(bundle, store.ModelBundle)
    assert isinstance(bundle.preprocessor, LogScaler) and isinstance(bundle.clustering_space, ClusteringSpace)
    assert bundle.feature_columns == FEATURE_COLUMNS and bundle.classes == [0, 1, 2, 3]
    raw = pd.read_csv(BUNDLED_CSV, nrows=200).fillna(0.0)
    frame = pd.DataFrame({c: raw[c] if c in raw else 0.0 for c in FEATURE_COLUMNS})
    segment, confidence = bundle.predict(frame)
    assert set(np.unique(segment)) <= {0, 1, 2, 3} and len(segment) == 200
    assert ((confidence > 0) & (confidence <= 1)).all()
