"""Bad rows, bad files, bad arguments, bad config and bad model bundles: each gets a named
error and a non-zero exit, or a quarantine row with its reason, and rows are never lost."""

import csv
import io
import json

import pandas as pd
import pytest
from conftest import BUNDLED_CSV, TEST_SESSION
from pyspark.sql import functions as F

from jobs import features as features_job
from jobs import score as score_job
from jobs import train as train_job
from segmentation.model import store

RUN_DATE = "2026-03-01"
HEADER = BUNDLED_CSV.read_text().splitlines()[0]
GOOD_LINES = BUNDLED_CSV.read_text().splitlines()[1:201]  # 200 real customers


def _line(cust_id, **changes):
    """A real customer's line with some fields changed."""
    names = HEADER.split(",")
    values = dict(zip(names, next(csv.reader([GOOD_LINES[0]]))))
    values.update({"CUST_ID": cust_id, **{k: str(v) for k, v in changes.items()}})
    return ",".join(values[n] for n in names)


def _write(path, lines, header=HEADER, newline="\n", bom=False):
    text = newline.join([header, *lines]) + newline
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode())
    return path


def _read(spark, lake, table):
    return spark.read.format("delta").load(str(lake / table))


def _runs(spark, lake):
    return _read(spark, lake, "runs").orderBy("started_at").collect()


BAD_ROWS = {
    "X1": (_line("X1", BALANCE=-5), "negative_amount:BALANCE"),
    "X2": (_line("X2", PURCHASES_FREQUENCY=1.7), "out_of_range:PURCHASES_FREQUENCY"),
    "X3": (_line("X3", PURCHASES_TRX=2.5), "not_a_count:PURCHASES_TRX"),
    "X4": (_line("X4", TENURE=40), "tenure_out_of_range"),
    "X5": (_line("X5", PURCHASES=5000), "purchases_exceed_parts"),
    "X6": (_line("X6", CASH_ADVANCE=0, CASH_ADVANCE_TRX=3), "cash_advance_inconsistent"),
    "X7": (_line("X7", BALANCE="lots"), "malformed_line"),
    "X8": (",".join(_line("X8").split(",")[:5]), "malformed_line"),  # too few fields
    "X9": (_line("X9", PAYMENTS=""), "missing_value:PAYMENTS"),
    "": (_line("", BALANCE=1), "missing_cust_id"),
}


def test_bad_rows_are_quarantined_with_their_reasons(spark, tmp_path, lake):
    dup_id, original_balance = GOOD_LINES[3].split(",")[0], float(GOOD_LINES[3].split(",")[1])
    lines = GOOD_LINES + [line for line, _ in BAD_ROWS.values()] + [_line(dup_id, BALANCE=1.0)]
    src = _write(tmp_path / "bad_rows.csv", lines)
    args = ["--run-date", RUN_DATE, "--input", str(src), *lake, "--set", "contract.max_quarantine_share=0.1"]
    assert features_job.main(args) == 0

    lake_dir = tmp_path / "lake"
    quarantine = {(r.CUST_ID or ""): r for r in _read(spark, lake_dir, "quarantine").collect()}
    for cust_id, (_, reason) in BAD_ROWS.items():
        assert reason in quarantine[cust_id].reasons, (cust_id, quarantine[cust_id].reasons)
    # A malformed line keeps the contract's fields as text, by name; one that does not split into
    # the header's fields is kept whole (docs/security.md#secrets-and-personal-data).
    assert json.loads(quarantine["X7"].raw) == {k: v for k, v in zip(HEADER.split(","), BAD_ROWS["X7"][0].split(",")) if v}
    assert quarantine["X8"].raw == BAD_ROWS["X8"][0]
    assert json.loads(quarantine["X1"].raw)["BALANCE"] == -5.0
    assert quarantine[dup_id].reasons == ["duplicate_cust_id"]
    # Two valid rows for one customer: the one with the smaller values survives, whatever the order.
    assert json.loads(quarantine[dup_id].raw)["BALANCE"] == max(original_balance, 1.0)
    features = _read(spark, lake_dir, "features")
    assert [r.BALANCE for r in features.where(F.col("CUST_ID") == dup_id).collect()] == [min(original_balance, 1.0)]

    # Accounting: every line read is either a feature row or a quarantine row, and the job says so.
    (run,) = _runs(spark, lake_dir)
    assert run.status == "SUCCEEDED" and run.job == "features"
    assert run.rows_read == len(lines) == features.count() + len(quarantine)
    assert run.rows_written == features.count() and run.rows_quarantined == len(quarantine)

    # The same night again: identical tables, not twice the rows.
    assert features_job.main(args) == 0
    assert _read(spark, lake_dir, "features").count() == features.count()
    assert _read(spark, lake_dir, "quarantine").count() == len(quarantine)
    assert len(_runs(spark, lake_dir)) == 2

    # Upstream fixes the file and the night is run again: its quarantine partition is emptied
    # (a clean night writes it without reading the input a second time) and the features replaced.
    clean = _write(tmp_path / "fixed.csv", GOOD_LINES)
    assert features_job.main([*args[:2], "--input", str(clean), *args[4:]]) == 0
    assert _read(spark, lake_dir, "quarantine").count() == 0
    assert _read(spark, lake_dir, "features").count() == len(GOOD_LINES)
    last = _runs(spark, lake_dir)[-1]
    assert (last.rows_read, last.rows_written, last.rows_quarantined) == (len(GOOD_LINES), len(GOOD_LINES), 0)

    # The clean night once more: nothing to empty, so no commit to quarantine at all.
    from delta.tables import DeltaTable

    before = DeltaTable.forPath(spark, str(lake_dir / "quarantine")).history(1).first()["version"]
    assert features_job.main([*args[:2], "--input", str(clean), *args[4:]]) == 0
    assert DeltaTable.forPath(spark, str(lake_dir / "quarantine")).history(1).first()["version"] == before
    assert _runs(spark, lake_dir)[-1].rows_quarantined == 0


def test_spreadsheet_exports_reordered_and_extra_columns_read_by_name(spark, tmp_path, lake):
    frame = pd.read_csv(io.StringIO("\n".join([HEADER, *GOOD_LINES[:50]])), dtype=str)
    shuffled = frame[list(reversed(frame.columns))].assign(NOTES="vip")
    src = tmp_path / "export.csv"
    text = shuffled.to_csv(index=False, lineterminator="\r\n")
    src.write_bytes(b"\xef\xbb\xbf" + text.encode())
    assert features_job.main(["--run-date", RUN_DATE, "--input", str(src), *lake]) == 0
    features = _read(spark, tmp_path / "lake", "features")
    assert features.count() == 50
    assert _read(spark, tmp_path / "lake", "quarantine").count() == 0
    first = features.where(F.col("CUST_ID") == frame.CUST_ID[0]).first()
    assert first.BALANCE == float(frame.BALANCE[0]) and first.TENURE == float(frame.TENURE[0])


@pytest.mark.parametrize(
    "kind, make, code",
    [
        ("missing file", lambda d: d / "absent.csv", 3),
        ("empty file", lambda d: (d / "empty.csv").write_bytes(b"") or d / "empty.csv", 3),
        ("header only", lambda d: _write(d / "header.csv", []), 3),
        ("missing column", lambda d: _write(d / "nocol.csv", [",".join(l.split(",")[:-1]) for l in GOOD_LINES[:5]],
                                            header=",".join(HEADER.split(",")[:-1])), 3),
        ("too many bad rows", lambda d: _write(d / "bad.csv", GOOD_LINES[:20] + [_line(f"N{i}", BALANCE=-1) for i in range(5)]), 3),
    ],
)
def test_bad_files_stop_before_anything_is_written(spark, tmp_path, lake, kind, make, code):
    src = make(tmp_path)
    assert features_job.main(["--run-date", RUN_DATE, "--input", str(src), *lake]) == code, kind
    assert not (tmp_path / "lake" / "features").exists()
    assert not (tmp_path / "lake" / "quarantine").exists()
    if kind != "missing file":
        (run,) = _runs(spark, tmp_path / "lake")
        assert run.status == "FAILED" and "Error" in run.error


def test_impossible_column_type_is_named(spark, tmp_path, lake):
    frame = pd.read_csv(BUNDLED_CSV, nrows=20).astype({"CREDIT_LIMIT": str})
    frame["CREDIT_LIMIT"] = "high"
    path = tmp_path / "typed.parquet"
    frame.to_parquet(path)
    assert features_job.main(["--run-date", RUN_DATE, "--input", str(path), *lake]) == 3
    (run,) = _runs(spark, tmp_path / "lake")
    assert "CREDIT_LIMIT (string)" in run.error


@pytest.mark.parametrize(
    "extra, code",
    [
        (["--run-date", "2026-02-30"], 2),
        (["--run-date", "2026-01-01' OR 1=1 --"], 2),
        (["--input", "customers; DROP TABLE x"], 2),
        (["--set", "train.forest.n_trees=5"], 2),
        (["--set", "contract.max_quarantine_share=lots"], 2),
        (["--profile", "../../etc/passwd"], 2),
    ],
)
def test_bad_arguments_and_config_are_named_errors(tmp_path, lake, extra, code):
    assert features_job.main([*lake, *extra]) == code
    assert not (tmp_path / "lake" / "features").exists()


def test_invalid_config_file_is_a_named_error(tmp_path, lake):
    bad = tmp_path / "overlay.yaml"
    bad.write_text("train: [unclosed\n")
    assert features_job.main([*lake, "--config", str(bad)]) == 2


SMALL_TRAIN = ["--set", "train.clustering.algorithms=[kmeans]", "--set", "train.clustering.kmeans.k=[4]",
               "--set", "train.clustering.stability.resamples=0"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory, spark):
    lake_dir = tmp_path_factory.mktemp("model_lake")
    args = ["--run-date", RUN_DATE, "--set", f"tables.root={lake_dir}",
            "--set", f"tables.models_dir={lake_dir / 'models'}", *SMALL_TRAIN, *TEST_SESSION]
    assert train_job.main(args) == 0
    assert score_job.main(args) == 0
    return lake_dir, args


def _tamper(models, how):
    version = store.latest(str(models))
    folder = models / version
    if how == "bytes":
        payload = bytearray((folder / "bundle.pkl").read_bytes())
        payload[len(payload) // 2] ^= 0xFF
        (folder / "bundle.pkl").write_bytes(bytes(payload))
    elif how == "sklearn":
        manifest = json.loads((folder / "manifest.json").read_text())
        manifest["library_versions"]["scikit-learn"] = "0.24.2"
        (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


@pytest.mark.parametrize("how, message", [("bytes", "sha256"), ("sklearn", "scikit-learn 0.24.2")])
def test_tampered_or_incompatible_bundle_touches_no_table(spark, trained, how, message, tmp_path):
    lake_dir, args = trained
    import shutil

    models = tmp_path / "models"
    shutil.copytree(lake_dir / "models", models)
    folder = _tamper(models, how)
    before = _read(spark, lake_dir, "segments").count()
    version_before = len(list((lake_dir / "segments" / "_delta_log").glob("*.json")))
    # The bundle folder by name (the registry's own copy is tampered with in test_registry.py).
    assert score_job.main([*args, "--set", f"tables.models_dir={models}", "--set",
                           f"score.model_version={folder.name}"]) == 4
    assert _read(spark, lake_dir, "segments").count() == before
    assert len(list((lake_dir / "segments" / "_delta_log").glob("*.json"))) == version_before
    last = _runs(spark, lake_dir)[-1]
    assert last.status == "FAILED" and message in last.error


def test_model_that_does_not_match_the_features_is_refused(spark, trained, tmp_path):
    lake_dir, args = trained
    bundle = store.load(str(lake_dir / "models"))
    bundle.version = "mismatch-1"
    bundle.feature_columns = [*bundle.feature_columns, "DAYS_SINCE_LAST_PAYMENT"]
    store.save(bundle, str(tmp_path / "models"))
    assert score_job.main([*args, "--set", f"tables.models_dir={tmp_path / 'models'}",
                           "--set", "score.model_version=mismatch-1"]) == 4
    assert "DAYS_SINCE_LAST_PAYMENT" in _runs(spark, lake_dir)[-1].error
