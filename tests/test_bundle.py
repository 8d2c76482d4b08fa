import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import RandomForestClassifier

from segmentation.core.errors import ModelError
from segmentation.model import store


def _bundle(version="v1", columns=("A", "B")):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, len(columns)))
    y = (X[:, 0] > 0).astype(int)
    forest = RandomForestClassifier(n_estimators=5, random_state=0).fit(X, y)
    return store.ModelBundle(
        version=version, feature_columns=list(columns), preprocessor=None, forest=forest,
        segment_names={0: "Low A", 1: "High A"}, imputation={"A": 0.0}, metrics={"m": 1.0},
        library_versions=store.library_versions(),
    )


def test_save_then_load_latest_predicts_the_same(tmp_path):
    saved = _bundle()
    store.save(saved, str(tmp_path))
    assert store.latest(str(tmp_path)) == "v1"
    loaded = store.load(str(tmp_path))
    frame = pd.DataFrame({"B": [0.0, 0.0], "A": [-2.0, 2.0]})  # columns by name, not position
    segment, confidence = loaded.predict(frame)
    assert list(segment) == [0, 1]
    assert ((confidence >= 0) & (confidence <= 1)).all()


def test_tampered_or_truncated_bundle_is_refused(tmp_path):
    store.save(_bundle(), str(tmp_path))
    path = tmp_path / "v1" / store.BUNDLE_FILE
    payload = path.read_bytes()
    path.write_bytes(payload[: len(payload) // 2])
    with pytest.raises(ModelError, match="sha256"):
        store.load(str(tmp_path))


def test_missing_model_and_unknown_version_are_named(tmp_path):
    with pytest.raises(ModelError, match="run the train job first"):
        store.load(str(tmp_path))
    store.save(_bundle(), str(tmp_path))
    with pytest.raises(ModelError, match="not found"):
        store.load(str(tmp_path), "v9")
    with pytest.raises(ModelError, match="not found"):
        store.load(str(tmp_path), "../v1")


def test_feature_mismatch_is_named():
    with pytest.raises(ModelError, match="lacks: B"):
        store.check_features(_bundle(), ["CUST_ID", "A"])
