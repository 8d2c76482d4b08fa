"""The registered pyfunc, in process and behind `mlflow models serve`, against the batch segments."""

import http.client
import json

import numpy as np
import pandas as pd
import pytest
from conftest import BUNDLED_CSV

from benchmarks.serving import ask, registry_env, request_body, served
from jobs import nightly as nightly_job
from segmentation.core.columns import ID_COLUMN, RAW_NUMERIC_COLUMNS

RUN_DATE = "2026-03-01"
SMALL_TRAIN = ["--set", "train.clustering.algorithms=[kmeans]", "--set", "train.clustering.kmeans.k=[4]",
               "--set", "train.clustering.stability.resamples=0", "--set", "train.explain.report=false"]


@pytest.fixture(scope="module")
def served_lake(spark, tmp_path_factory):
    """One nightly run on the bundled file: version 1 is champion, every customer is scored."""
    lake = tmp_path_factory.mktemp("serving") / "lake"
    args = ["--run-date", RUN_DATE, "--set", f"tables.root={lake}", "--set", f"tables.models_dir={lake / 'models'}",
            "--set", "spark.shuffle_partitions=2", *SMALL_TRAIN]
    assert nightly_job.main(args) == 0
    batch = (spark.read.format("delta").load(str(lake / "segments"))
             .select(ID_COLUMN, "segment_id", "segment_name", "segment_confidence").toPandas())  # 8,950 rows: a test
    return lake, batch.set_index(ID_COLUMN)


def _customers() -> pd.DataFrame:
    # Gaps read as NaN: the served model takes a NaN (what MLflow makes of a JSON null) as a gap.
    return pd.read_csv(BUNDLED_CSV)


def test_the_pyfunc_gives_every_customer_the_batch_segment(served_lake):
    import mlflow

    lake, batch = served_lake
    uri = registry_env(lake)["MLFLOW_REGISTRY_URI"]
    # Both URIs: with only the registry's set, MLflow opens its default tracking store,
    # ./mlflow.db in the working directory, to resolve the version's run.
    before = mlflow.get_registry_uri(), mlflow.get_tracking_uri()
    mlflow.set_registry_uri(uri)
    mlflow.set_tracking_uri(uri)
    try:
        model = mlflow.pyfunc.load_model("models:/segmentation@champion")
    finally:
        mlflow.set_registry_uri(before[0])
        mlflow.set_tracking_uri(before[1])
    customers = _customers()
    # The signature's columns are doubles; MLflow refuses to cast int64 (the CSV's counts) in process.
    customers[RAW_NUMERIC_COLUMNS] = customers[RAW_NUMERIC_COLUMNS].astype("float64")
    answers = model.predict(customers).set_index(ID_COLUMN)
    assert len(answers) == len(batch) == 8950
    joined = answers.join(batch, rsuffix="_batch", how="inner")
    assert len(joined) == 8950
    assert (joined.segment_id == joined.segment_id_batch).all()
    assert (joined.segment_name == joined.segment_name_batch).all()
    assert np.array_equal(joined.segment_confidence.to_numpy(), joined.segment_confidence_batch.to_numpy())


def test_the_served_model_answers_one_customer_as_the_batch_did(served_lake):
    lake, batch = served_lake
    customers = _customers()
    gaps = customers[customers.MINIMUM_PAYMENTS.isna()].head(10)  # imputed with the training medians
    chosen = pd.concat([customers.sample(100, random_state=7), gaps])
    with served(lake) as port:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        for _, row in chosen.iterrows():
            status, answer = ask(conn, request_body(row.to_frame().T))
            assert status == 200, answer
            (got,) = answer["predictions"]
            expected = batch.loc[row[ID_COLUMN]]
            assert (got["segment_id"], got["segment_name"]) == (expected.segment_id, expected.segment_name)
            assert got["segment_confidence"] == expected.segment_confidence

        # A customer that breaks the data contract gets the rule's name, not a guess.
        broken = customers.head(1).copy()
        broken["BALANCE"] = -5.0
        broken["TENURE"] = 3
        status, answer = ask(conn, request_body(broken))
        assert status == 400
        assert "ContractViolationError" in answer["message"]
        assert "negative_amount:BALANCE" in answer["message"] and "tenure_out_of_range" in answer["message"]
        missing = customers.head(1).drop(columns=["PAYMENTS"])
        conn.request("POST", "/invocations", body=json.dumps({"dataframe_split": missing.to_dict(orient="split")
                                                              | {"index": None}}, default=str).encode(),
                     headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        assert response.status == 400 and "PAYMENTS" in json.loads(response.read())["message"]
        conn.close()


def test_the_registered_model_carries_every_module_of_the_package(served_lake):
    """The served model imports its code from its own `code/` folder: every subpackage must be there."""
    from conftest import PROJECT

    lake, _ = served_lake
    [code] = list((lake / "mlflow" / "artifacts").rglob("model/code/segmentation"))
    package = PROJECT / "segmentation"
    ours = {p.relative_to(package).as_posix() for p in package.rglob("*.py")}
    carried = {p.relative_to(code).as_posix() for p in code.rglob("*.py")}
    assert ours == carried
    assert {"serving/entry.py", "serving/pyfunc.py", "model/store.py", "core/config.py"} <= carried
