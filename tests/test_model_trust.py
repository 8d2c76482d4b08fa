"""A model is verified whole before it is served or scored; the champion's history survives concurrent writers.

One nightly run registers version 1; the tests that tamper with it or move its registry away put
it back when they end.
"""

import http.client
import json
import os
import shutil
import signal
import subprocess
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import pytest
from conftest import BUNDLED_CSV, PROJECT
from mlflow import MlflowClient

from benchmarks.serving import free_port, request_body
from jobs import nightly as nightly_job
from jobs import promote as promote_job
from jobs import score as score_job
from jobs import serve as serve_job
from segmentation.core.config import load_config
from segmentation.core.errors import ModelIntegrityError, RegistryMissingError
from segmentation.model import registry

RUN_DATE = "2026-04-01"
SMALL_TRAIN = ["--set", "train.clustering.algorithms=[kmeans]", "--set", "train.clustering.kmeans.k=[4]",
               "--set", "train.clustering.stability.resamples=0", "--set", "train.explain.report=false"]


def _lake_args(lake: Path) -> list[str]:
    return ["--set", f"tables.root={lake}", "--set", f"tables.models_dir={lake / 'models'}"]


def _cfg(lake: Path, *overrides: str):
    return load_config(PROJECT / "conf", ["local"], [f"tables.root={lake}", f"tables.models_dir={lake / 'models'}",
                                                     *overrides])


def _client(lake: Path) -> MlflowClient:
    uri = f"sqlite:///{lake / 'mlflow' / 'mlflow.db'}"
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


@pytest.fixture(scope="module")
def trained(spark, tmp_path_factory):
    lake = tmp_path_factory.mktemp("trust") / "lake"
    args = ["--run-date", RUN_DATE, *_lake_args(lake), "--set", "spark.shuffle_partitions=2", *SMALL_TRAIN]
    assert nightly_job.main(args) == 0
    return lake


def _entry(lake: Path) -> Path:
    [entry] = list((lake / "mlflow" / "artifacts").rglob("model/code/segmentation/serving/entry.py"))
    return entry


# ---------------------------------------------------------------------------------------------
# the whole model's digest, and `serve`


def test_registration_records_the_digest_of_the_whole_model(trained):
    mv = _client(trained).get_model_version("segmentation", "1")
    [model] = [p.parent for p in (trained / "mlflow" / "artifacts").rglob("model/MLmodel")]
    assert (model / "code" / "segmentation" / "serving" / "entry.py").is_file()
    assert mv.tags[registry.MODEL_DIGEST_TAG] == registry.model_digest(model)
    assert (trained / "models" / registry.REGISTRY_MARKER).is_file()


def test_serve_refuses_a_model_whose_code_changed_and_imports_none_of_it(trained, tmp_path, caplog):
    entry = _entry(trained)
    original = entry.read_bytes()
    marker = tmp_path / "imported"
    entry.write_bytes(original + f"\nopen({str(marker)!r}, 'w').write('tampered code ran')\n".encode())
    try:
        code = serve_job.main([*_lake_args(trained), "--port", str(free_port())])
    finally:
        entry.write_bytes(original)
    assert code == ModelIntegrityError.exit_code != 0
    assert "ModelIntegrityError" in caplog.text and "changed after registration" in caplog.text
    assert not marker.exists()


def test_serve_refuses_a_version_registered_without_a_whole_model_digest(trained, caplog):
    client = _client(trained)
    digest = client.get_model_version("segmentation", "1").tags[registry.MODEL_DIGEST_TAG]
    client.delete_model_version_tag("segmentation", "1", registry.MODEL_DIGEST_TAG)
    try:
        code = serve_job.main([*_lake_args(trained), "--version", "1"])
    finally:
        client.set_model_version_tag("segmentation", "1", registry.MODEL_DIGEST_TAG, digest)
    assert code == ModelIntegrityError.exit_code
    assert f"no {registry.MODEL_DIGEST_TAG} tag" in caplog.text


@contextmanager
def _serving(lake: Path, *options: str):
    """`./spark-submit.sh serve` on a free port until the block ends."""
    port = free_port()
    log = lake.parent / f"serve-{port}.log"
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
    with open(log, "w") as out:
        server = subprocess.Popen([str(PROJECT / "spark-submit.sh"), "serve", *_lake_args(lake), "--port", str(port),
                                   *options], stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            assert server.poll() is None, f"serve exited {server.returncode}:\n{log.read_text()[-3000:]}"
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                conn.request("GET", "/ping")
                if conn.getresponse().status == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.25)
        yield http.client.HTTPConnection("127.0.0.1", port, timeout=30), log
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


def _post(conn, body, chunked: bool = False) -> tuple[int, dict]:
    headers = {"Content-Type": "application/json"}
    if chunked:
        conn.request("POST", "/invocations", body=iter([body[i:i + 512] for i in range(0, len(body), 512)]),
                     headers=headers, encode_chunked=True)
    else:
        conn.request("POST", "/invocations", body=body, headers=headers)
    response = conn.getresponse()
    return response.status, json.loads(response.read())


def test_serve_verifies_then_answers_within_its_request_limits(trained, spark):
    customers = pd.read_csv(BUNDLED_CSV)
    batch = (spark.read.format("delta").load(str(trained / "segments")).select("CUST_ID", "segment_id").toPandas()
             .set_index("CUST_ID"))
    one = request_body(customers.head(1))
    assert len(one) < 2048 < len(request_body(customers.head(20)))
    with _serving(trained, "--set", "serving.max_rows=2", "--set", "serving.max_bytes=2048") as (conn, log):
        status, answer = _post(conn, one)
        assert status == 200, answer
        assert answer["predictions"][0]["segment_id"] == batch.loc[customers.CUST_ID[0]].segment_id
        status, answer = _post(conn, request_body(customers.head(3)))
        assert status == 413 and "over serving.max_rows=2" in answer["message"], answer
        assert "C10001" not in answer["message"]  # the request is not echoed back
        status, answer = _post(conn, request_body(customers.head(20)))
        assert status == 413 and "serving.max_bytes=2048" in answer["message"], answer
        status, answer = _post(conn, request_body(customers.head(20)), chunked=True)  # no Content-Length
        assert status == 413 and "serving.max_bytes=2048" in answer["message"], answer
        status, _ = _post(conn, one, chunked=True)
        assert status == 200
        assert "verified whole" in log.read_text()


# ---------------------------------------------------------------------------------------------
# a lake that has had a registry needs it


def test_a_lake_that_had_a_registry_refuses_to_score_without_it(trained, tmp_path):
    away = tmp_path / "mlflow-away"
    shutil.move(trained / "mlflow", away)
    try:
        with pytest.raises(RegistryMissingError, match="has had a registry"):
            registry.current(_cfg(trained))
        with pytest.raises(RegistryMissingError):  # maintain would no longer know which bundles are registered
            registry.referenced_bundles(_cfg(trained))
        with pytest.raises(RegistryMissingError, match="registry.enabled=false"):
            registry.load(_cfg(trained, "registry.enabled=false"))
        night = ["--run-date", RUN_DATE, *_lake_args(trained), "--set", "spark.shuffle_partitions=2"]
        assert score_job.main(night) == RegistryMissingError.exit_code
        # Nor does a night train a new model into a new registry in its place.
        assert nightly_job.main([*night, *SMALL_TRAIN]) == RegistryMissingError.exit_code
        assert not list((trained / "mlflow" / "artifacts").rglob("MLmodel"))
    finally:
        shutil.rmtree(trained / "mlflow", ignore_errors=True)  # the empty store the attempt opened
        shutil.move(away, trained / "mlflow")
    assert registry.current(_cfg(trained)) == "1"


def test_a_lake_that_never_had_a_registry_keeps_its_latest_bundle(tmp_path, caplog):
    lake = tmp_path / "lake"
    (lake / "models").mkdir(parents=True)
    (lake / "models" / "LATEST").write_text("20260101T000000Z-abc123\n")
    assert registry.current(_cfg(lake)) == "20260101T000000Z-abc123"
    assert "no registered model segmentation" in caplog.text
    assert not (lake / "models" / registry.REGISTRY_MARKER).exists()


# ---------------------------------------------------------------------------------------------
# the champion's history under concurrent writers


def _registry_with_versions(lake: Path, count: int) -> MlflowClient:
    (lake / "mlflow").mkdir(parents=True)
    client = _client(lake)
    client.create_registered_model("segmentation")
    for v in range(1, count + 1):
        client.create_model_version("segmentation", f"file:///nowhere/{v}", tags={registry.GATES_TAG: "passed",
                                                                               registry.BUNDLE_TAG: f"b{v}"})
    return client


def test_concurrent_promotions_lose_no_champion_history(spark, tmp_path):
    lake = tmp_path / "lake"
    client = _registry_with_versions(lake, 9)
    cfg = _cfg(lake)
    assert registry.promote(cfg, 1)["registry_version"] == 1
    errors = []
    start = threading.Barrier(4)

    def promote(versions):
        try:
            start.wait()
            for v in versions:
                registry.promote(cfg, v)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=promote, args=([v, v + 4],)) for v in (2, 3, 4, 5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    with registry._mlflow(cfg) as c:
        history = registry._history(c, cfg)
    assert history[0] == 1 and sorted(history) == list(range(1, 10))
    champion = int(client.get_model_version_by_alias("segmentation", "champion").version)
    assert champion == history[-1]

    # Each rollback goes to the champion before, in the order recorded.
    for expected in reversed(history[:-1][-3:]):
        assert promote_job.main([*_lake_args(lake), "--previous"]) == 0
        assert int(client.get_model_version_by_alias("segmentation", "champion").version) == expected


def test_a_train_beside_a_rollback_keeps_both_entries(tmp_path):
    lake = tmp_path / "lake"
    client = _registry_with_versions(lake, 4)
    cfg = _cfg(lake)
    for v in (1, 2, 3):
        registry.promote(cfg, v)
    start = threading.Barrier(2)

    def rollback():
        start.wait()
        registry.promote(cfg, previous=True)

    def train():
        start.wait()
        with registry._mlflow(cfg) as c:
            registry._promote(c, cfg, 4)

    threads = [threading.Thread(target=rollback), threading.Thread(target=train)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with registry._mlflow(cfg) as c:
        history = registry._history(c, cfg)
    # Either order: 3 rolled back and 4 trained, or 4 trained and then rolled back; neither change lost.
    assert history in ([1, 2, 4], [1, 2, 3])
    assert int(client.get_model_version_by_alias("segmentation", "champion").version) == history[-1]
    registry.promote(cfg, previous=True)
    assert int(client.get_model_version_by_alias("segmentation", "champion").version) == 2
