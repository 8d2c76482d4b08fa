"""The synthetic customer generator: the raw table's contract, and a likeness the model sees; its
nights: movement, profile switches, departures, arrivals and drift, each night on its own."""

import datetime as dt
import logging

import numpy as np
import pandas as pd
import pytest
from conftest import BUNDLED_CSV, PROJECT
from pyspark.sql import functions as F

from jobs import generate as generate_job
from segmentation.core.columns import RAW_SCHEMA
from segmentation.core.config import load_config
from segmentation.core.errors import ArgumentError
from segmentation.features import contract
from segmentation.features.stage import run_features
from segmentation.score.stage import run_score
from segmentation.synthetic.generator import (
    MAX_DRIFT_SCALE,
    NightParams,
    generate_customers,
    night,
    night_path,
    night_profiles,
    night_size,
    write_customers,
)
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
    _assert_valid(frame)
    assert not set(frame.CUST_ID) & set(real.CUST_ID)


def _assert_valid(frame):
    """The generator's promises on one table: the contract's ranges and the columns consistent."""
    assert frame.CUST_ID.is_unique
    assert frame.CUST_ID.str.fullmatch(r"G\d{9}").all()
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


# ---------------------------------------------------------------------------------------------
# nights

NIGHT_ROWS = 5_000
MOVING = NightParams(movement=0.02, move_share=0.05, departure_share=0.02, arrival_share=0.03)
DRIFTING = NightParams(movement=0.02, move_share=0.05, departure_share=0.02, arrival_share=0.03, drift_from=3,
                       drift_scale=1.5)


@pytest.fixture(scope="module")
def nights(spark):
    """Nights 1-3 of one population with everything on, drift from night 3, as pandas by CUST_ID."""
    return {n: night(spark, NIGHT_ROWS, SEED, n, DRIFTING).toPandas().set_index("CUST_ID") for n in (1, 2, 3)}


@pytest.fixture(scope="module")
def profiles(spark):
    return {n: night_profiles(spark, NIGHT_ROWS, SEED, n, MOVING).toPandas().set_index("CUST_ID") for n in (1, 2, 3)}


def test_a_night_is_the_same_whoever_asks_and_night_one_is_the_population(spark):
    def rows(n, params, partitions=None):
        return sorted(night(spark, 2_000, SEED, n, params, partitions).collect())

    four = rows(4, MOVING, 1)
    assert rows(4, MOVING, 3) == four  # exactly, whatever the partitioning, and without nights 1-3
    assert night_size(spark, 2_000, SEED, 4, MOVING) == len(four)
    assert rows(1, MOVING) == sorted(generate_customers(spark, 2_000, SEED).collect())


def test_each_night_keeps_the_data_contract(spark, nights):
    for n, frame in nights.items():
        _assert_valid(frame.reset_index())
    cfg = load_config(PROJECT / "conf", ["local"], []).contract
    drifted = spark.createDataFrame(nights[3].reset_index(), schema=RAW_SCHEMA)  # everything on, drift too
    checked = contract.check_rows(drifted, cfg, nullable=["MINIMUM_PAYMENTS"])
    assert checked.where(F.size(contract.REASONS) > 0).count() == 0


def test_balances_and_payments_move_a_little_from_night_to_night(nights, profiles):
    one, two = nights[1], nights[2]  # drift starts on night 3; DRIFTING switches the profiles MOVING does
    both = one.index.intersection(two.index)
    kept = both[profiles[1].loc[both, "profile"].values == profiles[2].loc[both, "profile"].values]
    a, b = one.loc[kept], two.loc[kept]
    for column in ["BALANCE", "PAYMENTS"]:
        moving = a[column] > 0
        log_ratio = np.log(b[column][moving] / a[column][moving])
        assert (b[column][~moving] == 0).all(), column  # zero stays zero: the frequencies stay consistent
        assert (log_ratio != 0).mean() > 0.95, column
        assert log_ratio.abs().max() < 0.2 and 0.005 < log_ratio.std() < 0.04, (column, log_ratio.describe())
    for column in ["PURCHASES", "CASH_ADVANCE", "PURCHASES_TRX", "PRC_FULL_PAYMENT"]:
        assert (a[column] == b[column]).all(), column


def test_the_configured_share_of_customers_switches_to_another_archetype(profiles):
    for n in (2, 3):
        before, after = profiles[n - 1], profiles[n]
        both = before.index.intersection(after.index)
        switched = before.loc[both, "profile"] != after.loc[both, "profile"]
        changed = before.loc[both, "archetype"] != after.loc[both, "archetype"]
        assert (switched == changed).all()  # a switch always lands in another archetype
        assert changed.mean() == pytest.approx(MOVING.move_share, abs=0.01)
    shares = [profiles[n].archetype.value_counts(normalize=True) for n in (1, 3)]
    assert (shares[0] - shares[1]).abs().max() < 0.03  # the population's mix stays


def test_departures_and_arrivals_are_the_configured_shares(spark, profiles):
    seen = set(profiles[1].index)
    for n in (2, 3):
        before, after = set(profiles[n - 1].index), set(profiles[n].index)
        departed, arrived = before - after, after - before
        assert len(departed) / len(before) == pytest.approx(MOVING.departure_share, abs=0.006)
        assert len(arrived) == round(MOVING.arrival_share * NIGHT_ROWS)
        assert all(pd.Series(sorted(arrived)).str.fullmatch(r"G\d{9}"))
        assert not arrived & seen  # new ids, never a departed customer's
        assert min(arrived) > max(before)
        seen |= after
        assert len(after) == night_size(spark, NIGHT_ROWS, SEED, n, MOVING)


def test_drift_starts_on_its_night(spark, nights):
    undrifted = NightParams(movement=0.02, move_share=0.05, departure_share=0.02, arrival_share=0.03)
    two = night(spark, NIGHT_ROWS, SEED, 2, undrifted).toPandas().set_index("CUST_ID")
    pd.testing.assert_frame_equal(nights[2].sort_index(), two.sort_index())  # nothing before drift_from
    three = night(spark, NIGHT_ROWS, SEED, 3, undrifted).toPandas().set_index("CUST_ID")
    drifted = nights[3].loc[three.index]
    for column in ["BALANCE", "CASH_ADVANCE", "CREDIT_LIMIT", "PAYMENTS", "ONEOFF_PURCHASES"]:
        large = three[column] >= 10  # far from the rounding of the cents
        ratio = drifted[column][large] / three[column][large]
        assert large.mean() > 0.3 and ((ratio - 1.5).abs() < 1e-3).all(), column  # each amount times the scale
    assert (drifted.TENURE == three.TENURE).all() and (drifted.PURCHASES_FREQUENCY == three.PURCHASES_FREQUENCY).all()


def test_bad_night_arguments_are_named_errors(spark):
    with pytest.raises(ArgumentError, match="move_share"):
        NightParams(move_share=1.5)
    with pytest.raises(ArgumentError, match="drift_from"):
        NightParams(drift_from=0)
    with pytest.raises(ArgumentError, match="drift_scale"):
        NightParams(drift_scale=MAX_DRIFT_SCALE * 2)
    with pytest.raises(ArgumentError, match="night"):
        night(spark, 10, SEED, 0)


def test_generate_job_writes_one_folder_per_night(spark, tmp_path, lake):
    output = tmp_path / "nights"
    args = ["--rows", "800", "--seed", "3", "--nights", "3", "--output", str(output), "--move-share", "0.1",
            "--departure-share", "0.05", "--arrival-share", "0.05", "--drift-from", "3", *lake]
    assert generate_job.main(args) == 0
    params = NightParams(move_share=0.1, departure_share=0.05, arrival_share=0.05, drift_from=3)
    for n in (1, 2, 3):
        written = spark.read.parquet(night_path(str(output), n))
        assert written.columns == [f.name for f in RAW_SCHEMA.fields]  # no `night` column read from the path
        assert sorted(written.collect()) == sorted(night(spark, 800, 3, n, params).collect())
    assert generate_job.main(["--rows", "10", "--nights", "2", "--move-share", "2", "--output",
                              str(tmp_path / "never"), *lake]) == 2
    assert not (tmp_path / "never").exists()
