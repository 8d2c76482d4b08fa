"""Every table the product owns, its schema pinned here: the schema its owner declares must be the
one written out below, and a real night must write it. Changing a table's columns is then a
change to this file too, made on purpose.

Nullability is pinned on the declarations. A real table is compared by name, type and order only,
but for the two whose NOT NULLs Delta keeps as declared: a table a plain DataFrame write creates
records every column as nullable, and `features` keeps those of the frame that created it (its
imputed columns, which follow `imputation.columns`).
"""

from pathlib import Path

import pytest
from conftest import BUNDLED_CSV, TEST_SESSION
from pyspark.sql.types import (
    ArrayType,
    BooleanType,
    DateType,
    DoubleType,
    IntegerType,
    LongType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)
from pyspark.testing import assertSchemaEqual

from jobs import nightly as nightly_job
from segmentation.campaign.lift import LIFT_SCHEMA
from segmentation.downstream.audiences import AUDIENCE_EVENTS_SCHEMA, MEMBERS_SCHEMA
from segmentation.downstream.current import CURRENT_SCHEMA
from segmentation.downstream.drift import DRIFT_SCHEMA
from segmentation.downstream.events import EVENTS_SCHEMA
from segmentation.downstream.migrations import MIGRATIONS_SCHEMA
from segmentation.downstream.shares import SHARES_SCHEMA
from segmentation.features.guard import PROFILE_SCHEMA
from segmentation.features.stage import FEATURES_SCHEMA, IMPUTATION_SCHEMA, QUARANTINE_SCHEMA
from segmentation.io.nights import NIGHTS_SCHEMA
from segmentation.io.rows import row
from segmentation.io.runs import RUNS_SCHEMA
from segmentation.score.stage import SEGMENTS_TABLE_SCHEMA
from segmentation.train.candidates import CANDIDATES_SCHEMA
from segmentation.train.drivers import DRIVERS_SCHEMA
from segmentation.train.lineage import LINEAGE_SCHEMA
from segmentation.train.profiles import PROFILES_SCHEMA

NULL, NOT_NULL = True, False


def _f(name, kind, nullable=NULL):
    return StructField(name, kind, nullable)


STR, DATE, DOUBLE, INT, LONG = StringType(), DateType(), DoubleType(), IntegerType(), LongType()
BOOL, TIME = BooleanType(), TimestampType()

PINNED = {
    "features": StructType([
        _f("CUST_ID", STR), _f("BALANCE", DOUBLE), _f("BALANCE_FREQUENCY", DOUBLE), _f("PURCHASES", DOUBLE),
        _f("ONEOFF_PURCHASES", DOUBLE), _f("INSTALLMENTS_PURCHASES", DOUBLE), _f("CASH_ADVANCE", DOUBLE),
        _f("PURCHASES_FREQUENCY", DOUBLE), _f("ONEOFF_PURCHASES_FREQUENCY", DOUBLE),
        _f("PURCHASES_INSTALLMENTS_FREQUENCY", DOUBLE), _f("CASH_ADVANCE_FREQUENCY", DOUBLE),
        _f("CASH_ADVANCE_TRX", DOUBLE), _f("PURCHASES_TRX", DOUBLE), _f("CREDIT_LIMIT", DOUBLE),
        _f("PAYMENTS", DOUBLE), _f("MINIMUM_PAYMENTS", DOUBLE), _f("PRC_FULL_PAYMENT", DOUBLE), _f("TENURE", DOUBLE),
        _f("PURCHASE_TYPE", STR, NOT_NULL), _f("LIMIT_USAGE", DOUBLE), _f("PAYMENT_MINPAY_RATIO", DOUBLE),
        _f("PURCHASE_both", DOUBLE, NOT_NULL), _f("PURCHASE_installments", DOUBLE, NOT_NULL),
        _f("PURCHASE_none", DOUBLE, NOT_NULL), _f("PURCHASE_one_off", DOUBLE, NOT_NULL),
        _f("MONTHLY_AVG_PURCHASES", DOUBLE), _f("MONTHLY_CASH_ADVANCE", DOUBLE), _f("run_date", DATE, NOT_NULL),
    ]),
    "quarantine": StructType([
        _f("run_date", DATE, NOT_NULL), _f("source", STR, NOT_NULL), _f("CUST_ID", STR), _f("raw", STR),
        _f("reasons", ArrayType(STR), NOT_NULL), _f("quarantined_at", TIME, NOT_NULL),
    ]),
    "imputation": StructType([
        _f("run_date", DATE, NOT_NULL), _f("column", STR, NOT_NULL), _f("value", DOUBLE, NOT_NULL),
        _f("method", STR, NOT_NULL), _f("rows_imputed", LONG), _f("applied_value", DOUBLE), _f("applied_from", STR),
    ]),
    "segments": StructType([
        _f("CUST_ID", STR), _f("segment_id", INT), _f("segment_name", STR), _f("segment_confidence", DOUBLE),
        _f("model_version", STR, NOT_NULL), _f("run_date", DATE, NOT_NULL), _f("scored_at", TIME, NOT_NULL),
    ]),
    "segments_current": StructType([
        _f("CUST_ID", STR, NOT_NULL), _f("segment_id", INT, NOT_NULL), _f("segment_name", STR, NOT_NULL),
        _f("segment_confidence", DOUBLE, NOT_NULL), _f("model_version", STR, NOT_NULL),
        _f("scored_run_date", DATE, NOT_NULL), _f("since_run_date", DATE, NOT_NULL), _f("previous_segment_id", INT),
        _f("active", BOOL, NOT_NULL), _f("last_seen_run_date", DATE),
    ]),
    "segment_shares": StructType([
        _f("run_date", DATE, NOT_NULL), _f("model_version", STR, NOT_NULL), _f("segment_id", INT),
        _f("segment_name", STR), _f("customers", LONG, NOT_NULL), _f("share", DOUBLE), _f("mean_confidence", DOUBLE),
    ]),
    "segment_migrations": StructType([
        _f("run_date", DATE, NOT_NULL), _f("previous_run_date", DATE), _f("from_segment_id", INT),
        _f("to_segment_id", INT), _f("movement", STR, NOT_NULL), _f("customers", LONG, NOT_NULL),
    ]),
    "drift": StructType([
        _f("run_date", DATE, NOT_NULL), _f("model_version", STR, NOT_NULL), _f("measure", STR, NOT_NULL),
        _f("name", STR, NOT_NULL), _f("value", DOUBLE, NOT_NULL), _f("threshold", DOUBLE, NOT_NULL),
        _f("flagged", BOOL, NOT_NULL), _f("reference", STR, NOT_NULL),
    ]),
    "runs": StructType([
        _f("run_id", STR, NOT_NULL), _f("run_date", DATE, NOT_NULL), _f("job", STR, NOT_NULL),
        _f("started_at", TIME, NOT_NULL), _f("ended_at", TIME), _f("status", STR, NOT_NULL), _f("rows_read", LONG),
        _f("rows_written", LONG), _f("rows_quarantined", LONG), _f("model_version", STR), _f("error", STR),
        _f("drift_status", STR), _f("registry_version", LONG), _f("user", STR), _f("code_version", STR),
        _f("config_digest", STR), _f("input_version", STR),
    ]),
    "clustering_candidates": StructType([
        _f("model_version", STR, NOT_NULL), _f("run_date", DATE, NOT_NULL), _f("algorithm", STR, NOT_NULL),
        _f("params", STR, NOT_NULL), _f("n_segments", INT, NOT_NULL), _f("silhouette", DOUBLE),
        _f("calinski_harabasz", DOUBLE), _f("davies_bouldin", DOUBLE), _f("noise_share", DOUBLE, NOT_NULL),
        _f("smallest_share", DOUBLE, NOT_NULL), _f("stability", DOUBLE), _f("bic", DOUBLE),
        _f("passed", BOOL, NOT_NULL), _f("reason", STR, NOT_NULL), _f("chosen", BOOL, NOT_NULL),
        _f("fit_seconds", DOUBLE, NOT_NULL), _f("sample_rows", INT, NOT_NULL), _f("model_usable", BOOL, NOT_NULL),
        _f("largest_share", DOUBLE), _f("rule_agreement", DOUBLE), _f("purchase_type_ari", DOUBLE),
        _f("resample_silhouette", DOUBLE), _f("resample_sd", DOUBLE), _f("resample_wins", INT),
        _f("within_noise", BOOL),
    ]),
    "segment_profiles": StructType([
        _f("model_version", STR, NOT_NULL), _f("segment_id", INT), _f("segment_name", STR, NOT_NULL),
        _f("size", LONG, NOT_NULL), _f("share", DOUBLE, NOT_NULL), _f("feature", STR, NOT_NULL),
        _f("mean", DOUBLE, NOT_NULL), _f("median", DOUBLE, NOT_NULL), _f("p25", DOUBLE, NOT_NULL),
        _f("p75", DOUBLE, NOT_NULL), _f("std_diff", DOUBLE, NOT_NULL),
    ]),
    "segment_drivers": StructType([
        _f("model_version", STR, NOT_NULL), _f("scope", STR, NOT_NULL), _f("segment_id", INT),
        _f("feature", STR, NOT_NULL), _f("rank", INT, NOT_NULL), _f("permutation_importance", DOUBLE),
        _f("permutation_std", DOUBLE), _f("impurity_importance", DOUBLE), _f("std_diff", DOUBLE),
    ]),
    "segment_lineage": StructType([
        _f("model_version", STR, NOT_NULL), _f("previous_model_version", STR), _f("relation", STR, NOT_NULL),
        _f("segment_ids", ArrayType(INT), NOT_NULL), _f("previous_segment_ids", ArrayType(INT), NOT_NULL),
        _f("rows", LONG, NOT_NULL),
    ]),
    "night_profile": StructType([
        _f("run_date", DATE, NOT_NULL), _f("measure", STR, NOT_NULL), _f("name", STR, NOT_NULL),
        _f("value", DOUBLE),
    ]),
    "segment_events": StructType([
        _f("run_date", DATE, NOT_NULL), _f("previous_run_date", DATE), _f("CUST_ID", STR, NOT_NULL),
        _f("event", STR, NOT_NULL), _f("from_segment_id", INT), _f("to_segment_id", INT), _f("segment_name", STR),
        _f("segment_confidence", DOUBLE), _f("model_version", STR),
    ]),
    "nights": StructType([
        _f("run_date", DATE, NOT_NULL), _f("status", STR, NOT_NULL), _f("run_id", STR), _f("write_tag", STR),
        _f("model_version", STR), _f("customers", LONG), _f("current_version", LONG), _f("members_version", LONG),
        _f("started_at", TIME), _f("published_at", TIME),
    ]),
    "audience_members": StructType([
        _f("audience", STR, NOT_NULL), _f("CUST_ID", STR, NOT_NULL), _f("group", STR, NOT_NULL),
        _f("segment_id", INT, NOT_NULL), _f("entered_run_date", DATE, NOT_NULL),
    ]),
    "audience_events": StructType([
        _f("run_date", DATE, NOT_NULL), _f("audience", STR, NOT_NULL), _f("CUST_ID", STR, NOT_NULL),
        _f("event", STR, NOT_NULL), _f("group", STR, NOT_NULL), _f("reason", STR, NOT_NULL), _f("segment_id", INT),
    ]),
    "audience_lift": StructType([
        _f("audience", STR, NOT_NULL), _f("segment_id", INT), _f("treatment_customers", LONG, NOT_NULL),
        _f("holdout_customers", LONG, NOT_NULL), _f("treatment_responders", LONG, NOT_NULL),
        _f("holdout_responders", LONG, NOT_NULL), _f("treatment_rate", DOUBLE), _f("holdout_rate", DOUBLE),
        _f("lift", DOUBLE), _f("ci_low", DOUBLE), _f("ci_high", DOUBLE), _f("p_value", DOUBLE),
        _f("confidence", DOUBLE, NOT_NULL), _f("method", STR, NOT_NULL), _f("treatment_value", DOUBLE),
        _f("holdout_value", DOUBLE), _f("first_response_date", DATE), _f("last_response_date", DATE),
        _f("measured_at", TIME, NOT_NULL),
    ]),
}
# Written by the lift job, not by a night (its real schema: tests/test_lift.py writes it).
NOT_NIGHTLY = {"audience_lift"}

DECLARED = {
    "features": FEATURES_SCHEMA,
    "quarantine": QUARANTINE_SCHEMA,
    "imputation": IMPUTATION_SCHEMA,
    "segments": SEGMENTS_TABLE_SCHEMA,
    "segments_current": CURRENT_SCHEMA,
    "segment_shares": SHARES_SCHEMA,
    "segment_migrations": MIGRATIONS_SCHEMA,
    "drift": DRIFT_SCHEMA,
    "runs": RUNS_SCHEMA,
    "clustering_candidates": CANDIDATES_SCHEMA,
    "segment_profiles": PROFILES_SCHEMA,
    "segment_drivers": DRIVERS_SCHEMA,
    "segment_lineage": LINEAGE_SCHEMA,
    "night_profile": PROFILE_SCHEMA,
    "segment_events": EVENTS_SCHEMA,
    "nights": NIGHTS_SCHEMA,
    "audience_members": MEMBERS_SCHEMA,
    "audience_events": AUDIENCE_EVENTS_SCHEMA,
    "audience_lift": LIFT_SCHEMA,
}
# Created with their declared nullability (segments_current from its schema, segments from a frame
# that has it), so Delta keeps their NOT NULLs: pinned whole.
NULLABILITY_KEPT = {"segments", "segments_current"}

SMALL_TRAIN = ["--set", "train.clustering.algorithms=[kmeans]", "--set", "train.clustering.kmeans.k=[4]",
               "--set", "train.clustering.stability.resamples=0", "--set", "train.explain.report=false"]


@pytest.fixture(scope="module")
def lake(tmp_path_factory, spark) -> Path:
    """One real night (features, train, score, downstream) on the bundled customers and two that
    break the contract, so that every table, quarantine included, has rows."""
    root = tmp_path_factory.mktemp("schemas")
    header, first, *rest = BUNDLED_CSV.read_text().splitlines()
    values = first.split(",")
    bad = [",".join(["BAD1", "-5", *values[2:]]), ",".join(["BAD2", values[1], "-1", *values[3:]])]
    source = root / "night.csv"
    source.write_text("\n".join([header, first, *rest, *bad]) + "\n")
    args = ["--run-date", "2026-05-01", "--input", str(source), "--set", f"tables.root={root / 'lake'}",
            "--set", f"tables.models_dir={root / 'lake' / 'models'}", *TEST_SESSION, *SMALL_TRAIN,
            "--set", "audiences=[{name: everyone, segments: [0, 1, 2, 3], holdout_share: 0.1, salt: s}]"]
    assert nightly_job.main(args) == 0
    return root / "lake"


def _written(lake: Path) -> set[str]:
    return {p.name for p in lake.iterdir() if (p / "_delta_log").is_dir()}


def test_every_owned_table_is_declared_and_pinned():
    assert set(DECLARED) == set(PINNED)


@pytest.mark.parametrize("table", sorted(PINNED))
def test_the_declared_schema_is_the_pinned_one(table):
    assertSchemaEqual(DECLARED[table], PINNED[table], ignoreNullable=False)


def test_a_night_writes_every_pinned_table_and_no_other(lake):
    assert _written(lake) == set(PINNED) - NOT_NIGHTLY


@pytest.mark.parametrize("table", sorted(set(PINNED) - NOT_NIGHTLY))
def test_a_real_night_writes_the_pinned_schema(spark, lake, table):
    written = spark.read.format("delta").load(str(lake / table))
    assert not written.isEmpty(), f"{table} has no rows: the night did not exercise its writer"
    assertSchemaEqual(written.schema, PINNED[table], ignoreNullable=table not in NULLABILITY_KEPT)


def test_a_row_names_every_field_and_no_other():
    schema = StructType([_f("a", STR, NOT_NULL), _f("b", LONG)])
    assert list(row(schema, b=None, a="x").items()) == [("a", "x"), ("b", None)]  # in the schema's order
    with pytest.raises(TypeError, match="missing b"):
        row(schema, a="x")
    with pytest.raises(TypeError, match="not in the schema: c"):
        row(schema, a="x", b=1, c=2)
