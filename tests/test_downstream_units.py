"""The downstream tables' pure parts on tiny inline frames: migrations, shares, the drift rows and
measures, and segments_current's MERGE, each with the edge a night can bring (no previous night,
a segment that disappears, a customer who departs, a night replayed or replayed late)."""

import datetime as dt

import numpy as np
import pytest
from pyspark.testing import assertDataFrameEqual, assertSchemaEqual

from segmentation.downstream import current, drift
from segmentation.downstream.migrations import MIGRATIONS_SCHEMA, migrations
from segmentation.downstream.shares import SHARES_SCHEMA, shares
from segmentation.io import tables
from segmentation.score.stage import SEGMENTS_TABLE_SCHEMA

D1, D2, D3 = dt.date(2026, 3, 1), dt.date(2026, 3, 2), dt.date(2026, 3, 3)
SCORED_AT = dt.datetime(2026, 3, 2, 1, 0, tzinfo=dt.timezone.utc)
NAMES = {0: "Zero", 1: "One", 2: "Two"}


def _night(spark, run_date, assignments, version="v1", confidence=0.9):
    """A `segments` partition: {customer: segment_id}, at one confidence unless given per customer."""
    conf = confidence if isinstance(confidence, dict) else dict.fromkeys(assignments, confidence)
    rows = [(c, s, NAMES[s], conf[c], version, run_date, SCORED_AT) for c, s in assignments.items()]
    return spark.createDataFrame(rows, SEGMENTS_TABLE_SCHEMA)


def _frame(spark, schema, rows):
    return spark.createDataFrame(rows, schema)


# ---------------------------------------------------------------------------------------------
# segment_migrations


def test_migrations_count_stayed_moved_new_and_departed(spark):
    before = _night(spark, D1, {"a": 0, "b": 1, "c": 1, "d": 2, "e": 0})
    tonight = _night(spark, D2, {"a": 0, "b": 2, "c": 1, "e": 0, "f": 1})
    got = migrations(tonight, before, D2, D1)
    assertSchemaEqual(got.schema, MIGRATIONS_SCHEMA)
    expected = [
        (D2, D1, 0, 0, "stayed", 2),  # a, e
        (D2, D1, 1, 1, "stayed", 1),  # c
        (D2, D1, 1, 2, "moved", 1),  # b
        (D2, D1, 2, None, "departed", 1),  # d
        (D2, D1, None, 1, "new", 1),  # f
    ]
    assertDataFrameEqual(got, _frame(spark, MIGRATIONS_SCHEMA, expected))


def test_with_no_previous_night_every_customer_is_new(spark):
    got = migrations(_night(spark, D1, {"a": 0, "b": 1, "c": 1}), None, D1, None)
    assertSchemaEqual(got.schema, MIGRATIONS_SCHEMA)
    expected = [(D1, None, None, 0, "new", 1), (D1, None, None, 1, "new", 2)]
    assertDataFrameEqual(got, _frame(spark, MIGRATIONS_SCHEMA, expected))


def test_a_segment_that_disappears_leaves_only_rows_from_it(spark):
    before = _night(spark, D1, {"a": 0, "b": 2, "c": 2})
    tonight = _night(spark, D2, {"a": 0, "b": 0, "c": 1})  # segment 2 is gone: nobody is in it tonight
    got = migrations(tonight, before, D2, D1)
    expected = [(D2, D1, 0, 0, "stayed", 1), (D2, D1, 2, 0, "moved", 1), (D2, D1, 2, 1, "moved", 1)]
    assertDataFrameEqual(got, _frame(spark, MIGRATIONS_SCHEMA, expected))
    assert got.where("to_segment_id = 2").isEmpty()


# ---------------------------------------------------------------------------------------------
# segment_shares


def test_shares_are_per_night_customers_share_and_mean_confidence(spark):
    nights = _night(spark, D1, {"a": 0, "b": 1, "c": 1, "d": 1}, confidence={"a": 0.5, "b": 0.6, "c": 0.8, "d": 1.0})
    nights = nights.unionByName(_night(spark, D2, {"a": 0, "b": 0}, version="v2", confidence=0.7))
    got = shares(nights)
    assertSchemaEqual(got.schema, SHARES_SCHEMA)
    expected = [
        (D1, "v1", 0, "Zero", 1, 0.25, 0.5),
        (D1, "v1", 1, "One", 3, 0.75, 0.8),
        (D2, "v2", 0, "Zero", 2, 1.0, 0.7),  # the other night's customers are not in its share
    ]
    assertDataFrameEqual(got, _frame(spark, SHARES_SCHEMA, expected))


def test_an_empty_night_has_no_shares(spark):
    got = shares(spark.createDataFrame([], SEGMENTS_TABLE_SCHEMA))
    assertSchemaEqual(got.schema, SHARES_SCHEMA)
    assert got.isEmpty()


# ---------------------------------------------------------------------------------------------
# drift: share changes, PSI of counted bins, the table's rows


def test_share_changes_are_in_percentage_points():
    got = drift.share_changes({0: 0.5, 1: 0.5}, {0: 0.6, 1: 0.4})
    assert list(got) == [0, 1] and got == pytest.approx({0: -10.0, 1: 10.0})


def test_a_segment_missing_on_either_side_counts_as_a_share_of_zero():
    got = drift.share_changes({0: 0.7, 3: 0.3}, {0: 0.5, 2: 0.5})  # 2 disappeared, 3 is new
    assert list(got) == [0, 2, 3] and got == pytest.approx({0: 20.0, 2: -50.0, 3: 30.0})
    assert drift.share_changes({}, {}) == {}


REF = {"A": {"edges": [1.0, 2.0], "shares": [0.25, 0.5, 0.25]}, "B": {"edges": [], "shares": [1.0]}}


def test_psi_of_counts_is_zero_on_the_reference_and_grows_with_the_shift():
    same = drift.psi_of_counts({drift.ROWS: np.array([8]), "A": np.array([2, 4, 2]), "B": np.array([8])}, REF)
    assert same == {"A": 0.0, "B": 0.0}
    shifted = drift.psi_of_counts({drift.ROWS: np.array([8]), "A": np.array([0, 4, 4]), "B": np.array([8])}, REF)
    # The empty bin is floored: (1e-4 - 0.25) ln(1e-4 / 0.25) + 0 + (0.5 - 0.25) ln(0.5 / 0.25)
    expected = (drift.FLOOR - 0.25) * np.log(drift.FLOOR / 0.25) + 0.25 * np.log(2.0)
    assert shifted["A"] == pytest.approx(expected) and shifted["B"] == 0.0


def test_psi_of_no_rows_is_finite():
    got = drift.psi_of_counts(drift.zero_counts(REF), REF)
    assert set(got) == {"A", "B"} and all(np.isfinite(v) and v > 0 for v in got.values())


def test_drift_rows_flag_above_the_threshold_only(spark):
    records = drift.rows(D2, "v1", {"A": 0.3, "B": 0.2}, {1: 12.0, 2: -10.0, 3: -10.5}, 0.2, 10.0, D1)
    expected = [
        (D2, "v1", "psi", "A", 0.3, 0.2, True, "training sample"),
        (D2, "v1", "psi", "B", 0.2, 0.2, False, "training sample"),  # at the threshold: not flagged
        (D2, "v1", "share_change_points", "1", 12.0, 10.0, True, "run_date 2026-03-01"),
        (D2, "v1", "share_change_points", "2", -10.0, 10.0, False, "run_date 2026-03-01"),
        (D2, "v1", "share_change_points", "3", -10.5, 10.0, True, "run_date 2026-03-01"),  # a fall counts too
    ]
    got = spark.createDataFrame(records, drift.DRIFT_SCHEMA)
    assertDataFrameEqual(got, _frame(spark, drift.DRIFT_SCHEMA, expected), checkRowOrder=True)


def test_with_no_previous_night_and_no_reference_there_are_no_drift_rows(spark):
    only_psi = drift.rows(D1, "v1", {"A": 0.01}, {}, 0.2, 10.0, None)
    assert [(r["measure"], r["name"], r["flagged"]) for r in only_psi] == [("psi", "A", False)]
    none = drift.rows(D1, "v1", {}, {}, 0.2, 10.0, None)
    assert none == [] and spark.createDataFrame(none, drift.DRIFT_SCHEMA).isEmpty()


# ---------------------------------------------------------------------------------------------
# segments_current


def _current(spark, rows):
    return _frame(spark, current.CURRENT_SCHEMA, rows)


def test_previous_run_date_is_the_latest_scored_night_before(spark, tmp_path):
    ref = tables.TableRef(path=str(tmp_path / "segments"))
    nights = _night(spark, D1, {"a": 0}).unionByName(_night(spark, D2, {"a": 0}))
    nights.write.format("delta").partitionBy("run_date").save(ref.path)
    assert current.previous_run_date(spark, ref, D3) == D2
    assert current.previous_run_date(spark, ref, D2) == D1
    assert current.previous_run_date(spark, ref, D1) is None  # the first night has none


def test_merge_moves_departs_returns_and_replays_without_a_change(spark, tmp_path):
    ref = tables.TableRef(path=str(tmp_path / "segments_current"))
    night1 = _night(spark, D1, {"a": 0, "b": 1, "c": 1})
    current.merge_night(spark, night1, ref, D1, None)
    assertSchemaEqual(tables.read_delta(spark, ref).schema, current.CURRENT_SCHEMA, ignoreNullable=False)
    first = [("a", 0, "Zero", 0.9, "v1", D1, D1, None, True, None),
             ("b", 1, "One", 0.9, "v1", D1, D1, None, True, None),
             ("c", 1, "One", 0.9, "v1", D1, D1, None, True, None)]
    assertDataFrameEqual(tables.read_delta(spark, ref), _current(spark, first))

    # Night 2: a moves to 2, b stays as it was, c departs (missing from the night), d is new. A row
    # changes only when something about it does: b keeps the night its values come from.
    night2 = _night(spark, D2, {"a": 2, "b": 1, "d": 0})
    current.merge_night(spark, night2, ref, D2, D1)
    second = [("a", 2, "Two", 0.9, "v1", D2, D2, 0, True, None),
              ("b", 1, "One", 0.9, "v1", D1, D1, None, True, None),
              ("c", 1, "One", 0.9, "v1", D1, D1, None, False, D1),
              ("d", 0, "Zero", 0.9, "v1", D2, D2, None, True, None)]
    assertDataFrameEqual(tables.read_delta(spark, ref), _current(spark, second))

    # The same night again: not one row changes.
    version = tables.latest_version(spark, ref)
    current.merge_night(spark, night2, ref, D2, D1)
    feed = spark.read.format("delta").option("readChangeFeed", "true").option("startingVersion", version + 1)
    assert feed.load(ref.path).isEmpty()

    # Night 3: c comes back in its old segment: active again, in it since the first night.
    current.merge_night(spark, _night(spark, D3, {"a": 2, "b": 1, "c": 1, "d": 0}), ref, D3, D2)
    third = [*second[:2], ("c", 1, "One", 0.9, "v1", D3, D1, None, True, None), second[3]]
    assertDataFrameEqual(tables.read_delta(spark, ref), _current(spark, third))

    # The first night replayed late does not overwrite what the later nights set.
    current.merge_night(spark, night1, ref, D1, None)
    assertDataFrameEqual(tables.read_delta(spark, ref), _current(spark, third))
