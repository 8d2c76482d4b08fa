"""Scoring in Arrow batches: same answers as the forest itself, ids untouched, names from the bundle."""

import dataclasses
import datetime as dt

import numpy as np
import pyarrow as pa
import pytest
import sklearn
from pyspark.sql.types import DoubleType, StringType, StructField, StructType
from sklearn.ensemble import RandomForestClassifier

from segmentation.core.errors import LibraryMismatchError, NonFiniteFeatureError
from segmentation.model import store
from segmentation.score.scoring import executor_errors, feature_matrix, score, score_batch

COLUMNS = ["A", "B"]


@pytest.fixture(scope="module")
def model():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(200, 2))
    y = np.where(X[:, 0] > 0.5, 2, np.where(X[:, 1] > 0, 1, 0))
    forest = RandomForestClassifier(n_estimators=7, max_depth=4, random_state=0).fit(X.astype(np.float32), y)
    return store.ModelBundle(
        version="v-test", feature_columns=COLUMNS, preprocessor=None, forest=forest,
        segment_names={0: "Zero", 1: "One", 2: "Two"}, imputation={}, metrics={},
    )


def test_feature_matrix_orders_columns_by_name_and_keeps_nulls_as_nan():
    batch = pa.RecordBatch.from_pydict({"B": [1.5, None], "CUST_ID": ["x", "y"], "A": [3.0, 4.0]})
    X = feature_matrix(batch, COLUMNS)
    assert X.dtype == np.float32 and X.flags.c_contiguous
    assert X[:, 0].tolist() == [3.0, 4.0]
    assert X[0, 1] == 1.5 and np.isnan(X[1, 1])


def test_score_batch_matches_predict_proba_and_passes_ids_through(model):
    rng = np.random.default_rng(2)
    values = rng.normal(size=(50, 2))
    batch = pa.RecordBatch.from_pydict(
        {"CUST_ID": [f"C{i:03d}" for i in range(50)], "A": values[:, 0], "B": values[:, 1]}
    )
    out = score_batch(model, batch, COLUMNS)
    proba = model.forest.predict_proba(values.astype(np.float32))
    assert out.column("CUST_ID").to_pylist() == batch.column("CUST_ID").to_pylist()
    assert out.column("segment_id").to_pylist() == model.forest.classes_[proba.argmax(axis=1)].tolist()
    assert np.allclose(out.column("segment_confidence").to_numpy(), proba.max(axis=1))


@pytest.mark.parametrize("n_classes, max_depth", [(3, 4), (6, None)])
def test_forest_proba_is_predict_proba_bit_for_bit(n_classes, max_depth):
    """The per-tree sum replaces scikit-learn's predict_proba: it must give the same bits."""
    rng = np.random.default_rng(n_classes)
    X = rng.normal(size=(3000, 5)).astype(np.float32)
    y = (np.abs(X[:, 0] * 3 + X[:, 1]) * n_classes).astype(int) % n_classes + 10  # ids need not start at 0
    forest = RandomForestClassifier(n_estimators=23, max_depth=max_depth, min_samples_leaf=3,
                                    class_weight="balanced", random_state=0, n_jobs=1).fit(X[:2000], y[:2000])
    for rows in (X[2000:], X[2000:2001], rng.normal(scale=50, size=(500, 5)).astype(np.float32)):
        assert np.array_equal(store.forest_proba(forest, rows), forest.predict_proba(rows))


def test_score_names_segments_and_stamps_the_run(spark, model):
    schema = StructType([StructField("CUST_ID", StringType(), False), StructField("A", DoubleType(), False),
                         StructField("B", DoubleType(), False)])
    rows = [("C1", 2.0, 0.0), ("C2", -1.0, 1.0), ("C3", -1.0, -1.0), ("C4", 0.0, 0.3)]
    features = spark.createDataFrame(rows, schema)
    scored_at = dt.datetime(2026, 3, 1, 2, 0)
    out = {r["CUST_ID"]: r for r in score(features, model, dt.date(2026, 3, 1), scored_at).collect()}
    assert set(out) == {"C1", "C2", "C3", "C4"}
    expected = model.forest.predict(np.array([r[1:] for r in rows], dtype=np.float32))
    for (cid, *_), segment in zip(rows, expected):
        row = out[cid]
        assert row["segment_id"] == segment
        assert row["segment_name"] == model.segment_names[int(segment)]
        assert 0.0 <= row["segment_confidence"] <= 1.0
        assert row["model_version"] == "v-test"
        assert row["run_date"] == dt.date(2026, 3, 1) and row["scored_at"] == scored_at


@pytest.mark.parametrize(
    "value, what",
    [(float("nan"), "not finite"), (float("inf"), "not finite"), (-float("inf"), "not finite"),
     (1e39, "beyond float32's range"), (None, "missing")],
)
def test_score_batch_refuses_non_finite_features_by_name(model, value, what):
    batch = pa.RecordBatch.from_pydict({"CUST_ID": ["C1", "C2"], "A": [0.5, 1.0], "B": [0.0, value]})
    with pytest.raises(NonFiniteFeatureError, match=f"feature B of customer C2 is {what}"):
        score_batch(model, batch, COLUMNS)


SCHEMA = StructType([StructField("CUST_ID", StringType(), False), StructField("A", DoubleType(), True),
                     StructField("B", DoubleType(), True)])


def test_scoring_in_spark_raises_the_executors_named_error(spark, model):
    features = spark.createDataFrame([("C1", 2.0, 0.0), ("C2", float("inf"), 1.0)], SCHEMA)
    with pytest.raises(NonFiniteFeatureError, match="feature A of customer C2 is not finite"):
        with executor_errors():
            score(features, model, dt.date(2026, 3, 1), dt.datetime(2026, 3, 1, tzinfo=dt.timezone.utc)).collect()


def test_executors_refuse_a_bundle_from_other_library_versions(spark, model):
    # Another version string: a Python worker keeps the last bundle it unpickled, by version.
    other = dataclasses.replace(model, version="v-other-libraries",
                                library_versions={"scikit-learn": "0.24.2", "numpy": np.__version__})
    features = spark.createDataFrame([("C1", 2.0, 0.0)], SCHEMA)
    expected = f"trained with scikit-learn 0.24.2; this executor has scikit-learn {sklearn.__version__}"
    with pytest.raises(LibraryMismatchError, match=expected):
        with executor_errors():
            score(features, other, dt.date(2026, 3, 1), dt.datetime(2026, 3, 1, tzinfo=dt.timezone.utc)).collect()
    old_numpy = dataclasses.replace(model, version="v-other-numpy",
                                    library_versions={"scikit-learn": sklearn.__version__, "numpy": "1.26.4"})
    with pytest.raises(LibraryMismatchError, match=f"numpy 1.26.4; this executor has numpy {np.__version__}"):
        with executor_errors():
            score(features, old_numpy, dt.date(2026, 3, 1), dt.datetime(2026, 3, 1, tzinfo=dt.timezone.utc)).collect()
