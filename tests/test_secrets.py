"""Secrets stay out of what the product records: MLflow params, RegistryError, runs.error, logs."""

import datetime as dt

import pytest
import yaml
from conftest import PROJECT
from mlflow import MlflowClient
from pyspark.sql import functions as F

from jobs import promote as promote_job
from segmentation.core import redact
from segmentation.core.config import load_config
from segmentation.core.errors import RegistryError
from segmentation.model import registry

ACCOUNT_KEY = "AZ-ACCOUNT-KEY-0123456789"
AUTH_SECRET = "SPARK-AUTH-SECRET-987"
PASSWORD = "pa55-w0rd-XYZ"
SECRETS = (ACCOUNT_KEY, AUTH_SECRET, PASSWORD)
EXTRA = {
    "fs.azure.account.key.acct.dfs.core.windows.net": ACCOUNT_KEY,
    "spark.authenticate.secret": AUTH_SECRET,  # a core setting: the running session refuses it
    "spark.sql.ansi.enabled": "true",
}


def _no_secret(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text


def test_redaction_masks_secret_keys_and_uri_user_info():
    assert redact.flat({
        "spark.extra.fs.azure.account.key.acct.dfs.core.windows.net": "k1",
        "spark.hadoop.fs.s3a.access.key": "k2", "spark.hadoop.fs.s3a.secret.key": "k3",
        "db.PASSWORD": "k4", "api_token": "k5", "gcp.credentials": "k6",
        "spark.sql.shuffle.partitions": "8", "tables.schema": "main.x", "registry.model_name": "m",
        "registry.tracking_uri": f"https://svc:{PASSWORD}@mlflow.example.com:5000/x?sig=abc&v=1",
    }) == {
        "spark.extra.fs.azure.account.key.acct.dfs.core.windows.net": "***",
        "spark.hadoop.fs.s3a.access.key": "***", "spark.hadoop.fs.s3a.secret.key": "***",
        "db.PASSWORD": "***", "api_token": "***", "gcp.credentials": "***",
        "spark.sql.shuffle.partitions": "8", "tables.schema": "main.x", "registry.model_name": "m",
        "registry.tracking_uri": "https://mlflow.example.com:5000/x?sig=***&v=1",
    }
    assert redact.text("no uri here: a@b.c") == "no uri here: a@b.c"
    # Azure's container is a name, not a credential; a password beside it is not.
    assert redact.text("abfss://raw@acct.dfs.core.windows.net/x") == "abfss://raw@acct.dfs.core.windows.net/x"
    assert redact.text(f"wasbs://raw:{PASSWORD}@acct.blob.core.windows.net/x") == "wasbs://acct.blob.core.windows.net/x"
    assert redact.text("https://ghp_TOKEN@github.com/x") == "https://github.com/x"
    assert redact.text(f"at postgresql://u:{PASSWORD}@db/x, then s3a://bucket/p") == "at postgresql://db/x, then s3a://bucket/p"


def test_the_mlflow_runs_params_hold_no_secret(tmp_path):
    lake = tmp_path / "lake"
    overlay = tmp_path / "secrets.yaml"
    overlay.write_text(yaml.safe_dump({
        "spark": {"extra": EXTRA},
        "input": {"source": f"abfss://svc:{PASSWORD}@container.dfs.core.windows.net/raw"},
    }))
    cfg = load_config(PROJECT / "conf", ["local"], [f"tables.root={lake}", f"tables.models_dir={lake / 'models'}"],
                      [overlay])
    # folder=None: the run is logged (config as params, metrics) and no model is registered.
    assert registry.log_training(cfg, dt.date(2026, 2, 1), {}, None, {}, "no clustering passed") is None
    uri = f"sqlite:///{lake / 'mlflow' / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    [run] = client.search_runs([client.get_experiment_by_name("segmentation").experiment_id])
    params = run.data.params
    assert params["spark.extra.fs.azure.account.key.acct.dfs.core.windows.net"] == "***"
    assert params["spark.extra.spark.authenticate.secret"] == "***"
    assert params["spark.extra.spark.sql.ansi.enabled"] == "true"  # an ordinary setting is kept
    assert params["input.source"] == "abfss://container.dfs.core.windows.net/raw"
    _no_secret(repr(params))


def test_a_tracking_uri_with_a_password_stays_out_of_the_error_the_runs_table_and_the_log(
        spark, tmp_path, lake, monkeypatch, segmentation_log):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
    tracking = f"http://svc:{PASSWORD}@127.0.0.1:9/"  # nothing listens on the discard port
    overlay = tmp_path / "secrets.yaml"
    overlay.write_text(yaml.safe_dump({"spark": {"extra": EXTRA}, "registry": {"tracking_uri": tracking}}))
    cfg = load_config(PROJECT / "conf", ["local"], [f"tables.root={tmp_path / 'lake'}"], [overlay])
    with pytest.raises(RegistryError) as raised:
        registry.promote(cfg, 1)
    assert "127.0.0.1:9" in str(raised.value)  # the message still says where
    _no_secret(str(raised.value))

    segmentation_log.clear()
    try:
        assert promote_job.main(["--version", "1", *lake, "--config", str(overlay)]) == RegistryError.exit_code
    finally:
        spark.conf.unset("fs.azure.account.key.acct.dfs.core.windows.net")
    [row] = (spark.read.format("delta").load(str(tmp_path / "lake" / "runs"))
             .where(F.col("job") == "promote").collect())
    assert row.status == "FAILED" and row.error.startswith("RegistryError: MLflow registry at http://127.0.0.1:9/")
    _no_secret(row.error)
    lines = [r.getMessage() for r in segmentation_log.records]
    refused = [m for m in lines if "spark.authenticate.secret" in m and "not applied" in m]
    assert refused and "spark.authenticate.secret=***" in refused[0]
    assert any("promote FAILED (RegistryError)" in m for m in lines)
    _no_secret("\n".join(lines) + segmentation_log.text)
