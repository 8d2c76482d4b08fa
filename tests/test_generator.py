"""The synthetic customer generator: the raw table's contract, and a likeness the model sees."""

import datetime as dt
import logging

import pandas as pd
import pytest
from conftest import BUNDLED_CSV, PROJECT
from pyspark.sql import functions as F

from jobs import generate as generate_job
from segmentation.core.columns import RAW_SCHEMA
from segmentation.core.config import load_config
from segmentation.core.errors import ArgumentError
from segmentation.features.stage import run_features
from segmentation.score.stage import run_score
from segmentation.synthetic.generator import generate_customers, write_customers
from segmentation.train.stage import run_train

ROWS = 20_000
SEED = 7
MONEY = ["BALANCE", "PURCHASES", "ONEOFF_PURCHASES", "INSTALLMENTS_PURCHASES", "CASH_ADVANCE",
         "CREDIT_LIMIT", "PAYMENTS", "MINIMUM_PAYMENTS"]
# Each activity's amount, months share and transaction count (None: the file has no count).
ACTIVITIES = [
    ("PURCHASES", "PURCHASES_FREQUENCY", "PURCHASES_TRX"),
    ("ONEOFF_PURCHASES", "ONEOFF_PURCHASES_FREQUENCY", None),
    ("INSTALLMENTS_PURCHASES", "PURCHASES_INSTALLMENTS_FREQUENCY", None),
    ("CASH_ADVANCE", "CASH_ADVANCE_FREQUENCY", "CASH_ADVANCE_TRX"),
    ("BALANCE", "BALANCE_FREQUENCY", None),
]
SHARES = ["BALANCE_FREQUENCY", "PURCHASES_FREQUENCY", "ONEOFF_PURCHASES_FREQUENCY",
          "PURCHASES_INSTALLMENTS_FREQUENCY", "CASH_ADVANCE_FREQUENCY", "PRC_FULL_PAYMENT"]
ZERO_INFLATED = ["PURCHASES", "ONEOFF_PURCHASES", "INSTALLMENTS_PURCHASES", "CASH_ADVANCE"]


@pytest.fixture(scope="module")
def generated(spark):
    return generate_customers(spark, ROWS, SEED)


@pytest.fixture(scope="module")
def frame(generated):
    return generated.toPandas()  # 20k rows of a test, not the product's scale


@pytest.fixture(scope="module")
def real():
    return pd.read_csv(BUNDLED_CSV)


def test_schema_is_the_raw_contract(generated):
    assert [(f.name, f.dataType) for f in generated.schema.fields] == [(f.name, f.dataType) for f in RAW_SCHEMA.fields]


def test_values_keep_the_data_contract(frame, real):
    assert len(frame) == ROWS
    assert frame.CUST_ID.is_unique
    assert frame.CUST_ID.str.fullmatch(r"G\d{9}").all()
    assert not set(frame.CUST_ID) & set(real.CUST_ID)
    assert frame.drop(columns="MINIMUM_PAYMENTS").notna().all().all()
    assert (frame[MONEY].fillna(0) >= 0).all().all()
    assert frame[SHARES].apply(lambda c: c.between(0, 1)).all().all()
    for count in ["CASH_ADVANCE_TRX", "PURCHASES_TRX"]:
        assert (frame[count] >= 0).all() and (frame[count] == frame[count].round()).all(), count
    assert frame.TENURE.isin(range(6, 13)).all()
    assert (frame.PURCHASES - (frame.ONEOFF_PURCHASES + frame.INSTALLMENTS_PURCHASES)).abs().max() <= 0.01
    for amount, share, count in ACTIVITIES:
        assert ((frame[share] == 0) == (frame[amount] == 0)).all(), share
        if count:
            assert ((frame[count] == 0) == (frame[amount] == 0)).all(), count
    assert (frame.CREDIT_LIMIT > 0).all()


def test_zero_and_missing_shares_are_those_of_the_real_file(frame, real):
    for column in ZERO_INFLATED:
        real_share, generated_share = (real[column] == 0).mean(), (frame[column] == 0).mean()
        assert abs(generated_share - real_share) <= 0.05, (column, real_share, generated_share)
    assert 0.01 <= frame.MINIMUM_PAYMENTS.isna().mean() <= 0.06
    assert (frame.TENURE == 12).mean() == pytest.approx((real.TENURE == 12).mean(), abs=0.03)


def test_a_seed_gives_the_same_rows_whatever_the_partitioning(spark):
    def rows(seed, partitions):
        return sorted(generate_customers(spark, 2000, seed, partitions).collect())  # by CUST_ID, unique

    one = rows(SEED, 1)
    assert rows(SEED, 3) == one  # exactly equal, not within a tolerance
    other = rows(SEED + 1, 1)
    assert [r.CUST_ID for r in other] == [r.CUST_ID for r in one]
    assert sum(a != b for a, b in zip(one, other)) == 2000


def test_parquet_round_trip_keeps_every_row(spark, generated, tmp_path):
    path = str(tmp_path / "customers.parquet")
    write_customers(generated, path, "parquet")
    write_customers(generated, path, "parquet")  # overwrites, never appends
    assert spark.read.parquet(path).count() == ROWS


def test_bad_arguments_are_named_errors(spark, generated, tmp_path):
    with pytest.raises(ArgumentError, match="rows"):
        generate_customers(spark, -1, SEED)
    with pytest.raises(ArgumentError, match="partitions"):
        generate_customers(spark, 10, SEED, partitions=0)
    with pytest.raises(ArgumentError, match="format"):
        write_customers(generated, str(tmp_path / "out"), "csv")


class _Lines(logging.Handler):
    def __init__(self):
        super().__init__()
        self.lines = []

    def emit(self, record):
        self.lines.append(record.getMessage())


def test_generate_job_writes_delta_and_logs_rows_and_seconds(spark, tmp_path, lake):
    output = tmp_path / "generated"
    handler = _Lines()
    logging.getLogger("segmentation").addHandler(handler)
    try:
        status = generate_job.main(["--rows", "500", "--seed", "3", "--output", str(output), "--format", "delta", *lake])
        failed = generate_job.main(["--rows", "-5", "--output", str(tmp_path / "never"), *lake])
    finally:
        logging.getLogger("segmentation").removeHandler(handler)
    assert status == 0
    assert spark.read.format("delta").load(str(output)).count() == 500
    assert any(line.startswith("generate customers: rows=500 seconds=") for line in handler.lines), handler.lines
    assert failed == 2 and not (tmp_path / "never").exists()
    assert spark.conf.get("spark.sql.codegen.hugeMethodLimit") == "65535"  # the session's setting is back


def test_the_model_sees_segment_shares_like_the_real_ones(spark, generated, tmp_path):
    """Train on the real file, score real and generated customers, compare each segment's share."""
    real_date, generated_date = dt.date(2026, 1, 1), dt.date(2026, 1, 2)
    generated_path = tmp_path / "generated.parquet"
    write_customers(generated, str(generated_path), "parquet")

    def config(source):
        return load_config(PROJECT / "conf", ["local"], [
            f"tables.root={tmp_path / 'lake'}",
            f"tables.models_dir={tmp_path / 'lake' / 'models'}",
            f"input.source={source}",
            # One K-Means candidate (k=5, the product's first default) keeps training to seconds.
            "train.clustering.algorithms=[kmeans]",
            "train.clustering.kmeans.k=[5]",
            # Another population on purpose (other ids, other people): the night-to-night guard
            # would rightly refuse it as tonight's input.
            "guard.enabled=false",
        ])

    on_real, on_generated = config(BUNDLED_CSV), config(generated_path)
    run_features(spark, on_real, real_date)
    run_train(spark, on_real, real_date)
    run_score(spark, on_real, real_date)
    run_features(spark, on_generated, generated_date)
    run_score(spark, on_generated, generated_date)

    counts = (
        spark.read.format("delta").load(str(tmp_path / "lake" / "segments"))
        .groupBy("run_date", "segment_id").agg(F.count("*").alias("n"))
        .toPandas()  # one row per date and segment
        .pivot(index="segment_id", columns="run_date", values="n")
        .fillna(0)
    )
    shares = counts / counts.sum()
    difference = (shares[generated_date] - shares[real_date]).abs()
    assert len(shares) >= 3
    assert difference.max() <= 0.05, shares.round(3).to_dict()


@pytest.mark.slow
def test_generated_customers_are_as_hard_to_segment_as_the_real_ones(spark, tmp_path):
    """The notebook's forest (150 full-depth trees) on each data's own default model: held-out
    macro-F1 within 0.01 and bundle size within 15% of the real file's, on as many generated
    customers (the job's default seed). `python -m benchmarks.forest_sizing --generated` prints both."""
    from benchmarks import forests

    def config(source, lake):
        return load_config(PROJECT / "conf", ["local"], [
            f"tables.root={lake}", f"tables.models_dir={lake / 'models'}", f"input.source={source}"])

    generated_path = tmp_path / "generated.parquet"
    write_customers(generate_customers(spark, 9_000, 42), str(generated_path), "parquet")
    real, _ = forests.hardness(spark, config(BUNDLED_CSV, tmp_path / "real"), dt.date(2026, 1, 1))
    generated, _ = forests.hardness(spark, config(generated_path, tmp_path / "generated"), dt.date(2026, 1, 1))
    f1_close, size_close = forests.within_targets(real, generated)
    assert f1_close, (real, generated)
    assert size_close, (real, generated)
