"""The downstream tables' pure parts on tiny inline frames: migrations, shares, the drift rows and
measures, and segments_current's MERGE, each with the edge a night can bring (no previous night,
a segment that disappears, a customer who departs, a night replayed or replayed late)."""

import datetime as dt
import functools

import numpy as np
import pytest
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual, assertSchemaEqual

from segmentation.downstream import current, drift, events
from segmentation.downstream.migrations import MIGRATIONS_SCHEMA, migrations, migrations_from_events
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


_NIGHT_PAIRS = {
    "stayed, moved, new and departed": ({"a": 0, "b": 1, "c": 1, "d": 2, "e": 0}, {"a": 0, "b": 2, "c": 1, "e": 0, "f": 1}),
    "a segment that disappears": ({"a": 0, "b": 2, "c": 2}, {"a": 0, "b": 0, "c": 1}),
    "no one changes": ({"a": 0, "b": 1}, {"a": 0, "b": 1}),
    "everyone changes": ({"a": 0, "b": 1}, {"c": 0, "a": 1, "b": 2}),
    "first night": (None, {"a": 0, "b": 1, "c": 1}),
}


@pytest.mark.parametrize("case", list(_NIGHT_PAIRS))
def test_migrations_from_the_nights_events_equal_those_from_the_two_nights(spark, case):
    previous, tonight_ids = _NIGHT_PAIRS[case]
    before = _night(spark, D1, previous) if previous else None
    tonight = _night(spark, D2, tonight_ids)
    night_events = events.events(tonight, before, D2, D1 if before else None)
    got = migrations_from_events(tonight, night_events, D2, D1 if before else None)
    assertSchemaEqual(got.schema, MIGRATIONS_SCHEMA)
    assertDataFrameEqual(got, migrations(tonight, before, D2, D1 if before else None))


def test_a_relabelled_customer_counts_as_stayed_from_the_events_too(spark):
    before = _night(spark, D1, {"a": 0, "b": 1})
    renamed = spark.createDataFrame(
        [(c, s, "Renamed" if s == 1 else NAMES[s], 0.9, "v2", D2, SCORED_AT) for c, s in {"a": 0, "b": 1}.items()],
        SEGMENTS_TABLE_SCHEMA)
    night_events = events.events(renamed, before, D2, D1)
    assert [r.event for r in night_events.collect()] == [events.RELABELLED]
    expected = [(D2, D1, 0, 0, "stayed", 1), (D2, D1, 1, 1, "stayed", 1)]
    assertDataFrameEqual(migrations_from_events(renamed, night_events, D2, D1), _frame(spark, MIGRATIONS_SCHEMA, expected))


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


def _events(spark, night, before, run_date, previous_date):
    return events.events(night, before, run_date, previous_date)


def test_events_are_the_membership_changes_and_nothing_else(spark):
    before = _night(spark, D1, {"a": 0, "b": 1, "c": 1, "d": 2})
    tonight = _night(spark, D2, {"a": 0, "b": 2, "c": 1, "e": 0}, confidence={"a": 0.5, "b": 0.9, "c": 0.9, "e": 0.7})
    tonight = tonight.withColumn("segment_name", F.when(F.col("CUST_ID") == "c", "Ones").otherwise(F.col("segment_name")))
    got = _events(spark, tonight, before, D2, D1)
    assertSchemaEqual(got.schema, events.EVENTS_SCHEMA)
    expected = [  # a's confidence fell from 0.9 to 0.5: no event
        (D2, D1, "b", "moved", 1, 2, "Two", 0.9, "v1"),
        (D2, D1, "c", "relabelled", 1, 1, "Ones", 0.9, "v1"),
        (D2, D1, "d", "departed", 2, None, "Two", None, "v1"),
        (D2, D1, "e", "new", None, 0, "Zero", 0.7, "v1"),
    ]
    assertDataFrameEqual(got, _frame(spark, events.EVENTS_SCHEMA, expected))
    first = _events(spark, before, None, D1, None)
    assert sorted(r.event for r in first.collect()) == ["new"] * 4


# Four nights with every kind of change: a moves, b stays (its confidence drifts), c leaves and
# comes back in its old segment, d leaves and comes back in another, and a retrain renames
# segment 0 on the last night (e stays in it).
NIGHTS = [
    (D1, {"a": 0, "b": 1, "c": 1, "d": 2, "e": 0}, {}),
    (D2, {"a": 2, "b": 1, "e": 0}, {"b": 0.6}),
    (D3, {"a": 2, "b": 1, "c": 1, "e": 0}, {"b": 0.7}),
    (dt.date(2026, 3, 4), {"a": 2, "b": 1, "c": 1, "d": 0, "e": 0}, {}),
]
RENAMED = "Zero, renamed"


def _nights(spark):
    out = []
    for run_date, seats, confidence in NIGHTS:
        night = _night(spark, run_date, seats, confidence={c: confidence.get(c, 0.9) for c in seats})
        if run_date == NIGHTS[-1][0]:
            night = night.withColumn("segment_name", F.when(F.col("segment_id") == 0, RENAMED)
                                     .otherwise(F.col("segment_name")))
        out.append((run_date, night))
    return out


def test_night_by_night_events_and_the_rebuild_from_history_give_one_table(spark, tmp_path):
    ref = tables.TableRef(path=str(tmp_path / "segments_current"))
    nights = _nights(spark)
    previous, dates = None, []
    for run_date, night in nights:
        before = dict(nights)[previous] if previous else None
        current.apply_events(spark, _events(spark, night, before, run_date, previous), ref, run_date, previous)
        previous = run_date
        dates.append(run_date)
        history = functools.reduce(lambda x, y: x.unionByName(y), [n for d, n in nights if d in dates])
        assertDataFrameEqual(tables.read_delta(spark, ref), current.from_history(history, dates))
    assertSchemaEqual(tables.read_delta(spark, ref).schema, current.CURRENT_SCHEMA, ignoreNullable=False)
    d4 = NIGHTS[3][0]
    expected = [
        ("a", 2, "Two", 0.9, "v1", D2, D2, 0, True, None),  # moved on D2
        ("b", 1, "One", 0.9, "v1", D1, D1, None, True, None),  # its confidence moved, nothing else
        ("c", 1, "One", 0.9, "v1", D3, D1, None, True, None),  # back on D3, in its segment since D1
        ("d", 0, RENAMED, 0.9, "v1", d4, d4, 2, True, None),  # back on D4 in another segment
        ("e", 0, RENAMED, 0.9, "v1", d4, D1, None, True, None),  # renamed: same segment since D1
    ]
    assertDataFrameEqual(tables.read_delta(spark, ref), _current(spark, expected))


def test_a_rebuild_equal_to_the_table_commits_nothing_and_a_backfill_changes_only_its_rows(spark, tmp_path):
    ref = tables.TableRef(path=str(tmp_path / "segments_current"))
    nights = _nights(spark)
    history = functools.reduce(lambda x, y: x.unionByName(y), [n for _, n in nights])
    dates = [d for d, _ in nights]
    assert current.rebuild(spark, history, dates, ref) == 5
    version = tables.latest_version(spark, ref)
    assert current.rebuild(spark, history, dates, ref) == 0
    assert tables.latest_version(spark, ref) == version  # no commit
    # Without D2 (as if it had never been published) c never left and a moved on D3; d's gap
    # and move stay as they were.
    without = [d for d in dates if d != D2]
    assert current.rebuild(spark, history, without, ref) == 2
    feed = (spark.read.format("delta").option("readChangeFeed", "true").option("startingVersion", version + 1)
            .load(ref.path).where("_change_type = 'update_postimage'"))
    assert sorted(r.CUST_ID for r in feed.collect()) == ["a", "c"]
    assertDataFrameEqual(tables.read_delta(spark, ref), current.from_history(history, without))
