"""Campaign audiences: holdout groups that never move (Spark and Python agree), audiences checked
like the rest of the config, and, through the real nightly job, `audience_members` and
`audience_events` that replay, suppress, keep exclusive groups apart, write nothing on an
unchanged night and come out the same from a re-run; nights in order apply only their own events
to the members, and a members table someone else changed is replayed instead.

Four nights of 300-odd bundled customers: N1 trains; N2 has departures, arrivals and movers;
N3 and N4 repeat N2's input (N3 still changes audiences: two-night stability is reached, the
movers' one-night window passes; N4 changes nothing); N5, last, repeats it once more.
"""

import datetime as dt
import logging
import random
from pathlib import Path

import pytest
import yaml
from conftest import BUNDLED_CSV, TEST_SESSION
from docs_queries import run_documented_queries
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from jobs import nightly as nightly_job
from segmentation.core.config import load_config
from segmentation.core.errors import AudienceError, ConfigError
from segmentation.downstream import audiences, holdout
from segmentation.io import tables

PROJECT = Path(__file__).resolve().parents[1]
N1, N2, N3, N4, N5 = "2026-10-01", "2026-10-02", "2026-10-03", "2026-10-04", "2026-10-05"
SMALL_TRAIN = ["--set", "train.clustering.algorithms=[kmeans]", "--set", "train.clustering.kmeans.k=[4]",
               "--set", "train.clustering.stability.resamples=0", "--set", "train.explain.report=false",
               "--set", "registry.enabled=false"]
HEADER, *LINES = BUNDLED_CSV.read_text().splitlines()
IDS = [line.split(",", 1)[0] for line in LINES]
SUPPRESSED = IDS[:25]


def _audience(**values):
    return {"name": "a", "segments": [0], "holdout_share": 0.1, "salt": "s", **values}


# ---------------------------------------------------------------------------------------------
# the holdout


def test_the_holdout_is_the_same_in_spark_and_python(spark):
    rng = random.Random(7)
    ids = [f"C{rng.randrange(10**8):08d}" for _ in range(3000)] + IDS[:500] + ["", "é-ü", "x" * 80]
    frame = spark.createDataFrame([(i,) for i in ids], "CUST_ID string")
    got = {r.CUST_ID: (r.p, r.g) for r in frame.select(
        "CUST_ID", holdout.position_column("spring:26").alias("p"),
        holdout.group_column("spring:26", 0.3).alias("g")).collect()}
    for i in ids:
        assert got[i] == (holdout.position("spring:26", i), holdout.group("spring:26", 0.3, i)), i


@pytest.mark.parametrize("share", [0.05, 0.1, 0.5])
def test_the_holdout_share_is_within_a_point_at_ten_thousand_members(share):
    ids = [f"C{n:05d}" for n in range(10_000)]
    held = sum(holdout.group("winter", share, i) == holdout.HOLDOUT for i in ids) / len(ids)
    assert abs(held - share) <= 0.01, held


def test_another_salt_draws_another_holdout():
    ids = IDS[:2000]
    one = {i for i in ids if holdout.group("a", 0.5, i) == holdout.HOLDOUT}
    other = {i for i in ids if holdout.group("b", 0.5, i) == holdout.HOLDOUT}
    assert 0.4 < len(one & other) / len(one) < 0.6  # independent, not shifted


# ---------------------------------------------------------------------------------------------
# config


def test_audiences_are_empty_by_default_and_read_from_config():
    assert load_config(PROJECT / "conf").audiences == []
    cfg = load_config(PROJECT / "conf", values={"audiences": [_audience(entered_from={"segments": 2,
                                                                                      "within_nights": 3})]})
    assert cfg.audiences[0].entered_from.segments == [2]


@pytest.mark.parametrize("audiences_, message", [
    ([_audience(), _audience()], r"audiences\[1\]\.name \(a\) is also the name of audiences\[0\]\.name"),
    ([_audience(holdout_share=1.2)], r"audiences\[0\]\.holdout_share"),
    ([_audience(holdout_share=-0.1)], r"audiences\[0\]\.holdout_share"),
    ([_audience(segments=[])], r"audiences\[0\]\.segments"),
    ([_audience(salt="")], r"audiences\[0\]\.salt"),
    ([{"name": "a", "segments": [0], "salt": "s"}], r"audiences\[0\]\.holdout_share"),
    ([_audience(min_confidence=2)], r"audiences\[0\]\.min_confidence"),
    ([_audience(name="no spaces")], r"audiences\[0\]\.name"),
    ([_audience(exclusive_group="g"), _audience(name="b", exclusive_group="g")],
     r"audiences\[1\]\.priority \(0\) is also audiences\[0\]\.priority"),
    ([_audience(entered_from={"segments": [1]})], r"audiences\[0\]\.entered_from\.within_nights"),
    ([_audience(holdout=0.1)], r"unknown config key audiences\[0\]\.holdout"),
])
def test_a_bad_audience_is_a_config_error_naming_the_key(audiences_, message):
    with pytest.raises(ConfigError, match=message):
        load_config(PROJECT / "conf", values={"audiences": audiences_})


def test_a_segment_the_model_lacks_is_an_error_naming_the_audience():
    cfg = load_config(PROJECT / "conf", values={"audiences": [_audience(name="vip", segments=[0, 9])]})
    audiences.check_segments(cfg.audiences[:0], [0, 1])
    with pytest.raises(AudienceError, match=r"audience 'vip': segment id\(s\) \[9\]"):
        audiences.check_segments(cfg.audiences, [0, 1, 2])


# ---------------------------------------------------------------------------------------------
# who is a member tonight, on inline frames


def test_statuses_check_in_order_and_keep_exclusive_groups_apart(spark):
    cfg = load_config(PROJECT / "conf", values={"audiences": [
        _audience(name="wide", segments=[0, 1], exclusive_group="g", priority=5),
        _audience(name="sure", segments=[0], min_confidence=0.6, exclusive_group="g", priority=1),
        _audience(name="steady", segments=[1], min_nights_in_segment=2, exclude="x"),
    ]})
    night = spark.createDataFrame([("c1", 0, 0.9), ("c2", 0, 0.5), ("c3", 1, 0.9), ("c4", 1, 0.9), ("c5", 2, 0.9)],
                                  "CUST_ID string, segment_id int, segment_confidence double")
    stable = {2: spark.createDataFrame([("c3", 1)], "CUST_ID string, segment_id int")}
    excluded = {"steady": spark.createDataFrame([("c4",)], "CUST_ID string")}
    got = {(r.audience, r.CUST_ID): r.reason for r in
           audiences.statuses(night, cfg.audiences, stable, {}, excluded).collect()}
    assert got == {
        ("wide", "c1"): audiences.OUTRANKED, ("wide", "c2"): None, ("wide", "c3"): None, ("wide", "c4"): None,
        ("wide", "c5"): audiences.MOVED,
        ("sure", "c1"): None, ("sure", "c2"): audiences.BELOW_CONFIDENCE, ("sure", "c3"): audiences.MOVED,
        ("sure", "c4"): audiences.MOVED, ("sure", "c5"): audiences.MOVED,
        ("steady", "c1"): audiences.MOVED, ("steady", "c2"): audiences.MOVED, ("steady", "c3"): None,
        ("steady", "c4"): audiences.SUPPRESSED, ("steady", "c5"): audiences.MOVED,
    }


def test_events_are_the_difference_from_the_previous_members(spark):
    status = spark.createDataFrame([("a", "c1", 0, None, "treatment"), ("a", "c2", 1, "moved", "holdout"),
                                    ("a", "c4", 0, None, "holdout")],
                                   "audience string, CUST_ID string, segment_id int, reason string, `group` string")
    d0, d1 = dt.date(2026, 1, 1), dt.date(2026, 1, 2)
    previous = spark.createDataFrame([("a", "c1", "treatment", 0, d0), ("a", "c2", "holdout", 0, d0),
                                      ("a", "c3", "treatment", 0, d0), ("gone", "c1", "holdout", 0, d0)],
                                     audiences.MEMBERS_SCHEMA)
    got = audiences.night_events(status, previous, d1, ["a"])
    expected = spark.createDataFrame([
        (d1, "a", "c2", "exited", "holdout", "moved", 1), (d1, "a", "c3", "exited", "treatment", "departed", None),
        (d1, "a", "c4", "entered", "holdout", "eligible", 0),
        (d1, "gone", "c1", "exited", "holdout", "audience_removed", None)], audiences.AUDIENCE_EVENTS_SCHEMA)
    assertDataFrameEqual(got, expected)


# ---------------------------------------------------------------------------------------------
# through the nightly job


def _csv(path: Path, lines) -> Path:
    path.write_text("\n".join([HEADER, *lines]) + "\n")
    return path


def _table(spark, root: Path, name: str):
    return spark.read.format("delta").load(str(root / name))


def _members(spark, root: Path) -> set[tuple]:
    return {tuple(r) for r in _table(spark, root, "audience_members").collect()}


def _config(root: Path) -> Path:
    exclude = _csv(root / "suppressed.csv", [])
    exclude.write_text("CUST_ID\n" + "\n".join(SUPPRESSED) + "\n")
    path = root / "audiences.yaml"
    path.write_text(yaml.safe_dump({"audiences": [
        {"name": "everyone", "segments": [0, 1, 2, 3], "holdout_share": 0.2, "salt": "everyone-26",
         "exclude": str(exclude), "exclusive_group": "offer", "priority": 2},
        {"name": "steady_zero", "segments": [0], "min_nights_in_segment": 2, "holdout_share": 0.5,
         "salt": "zero-26", "exclusive_group": "offer", "priority": 1},
        {"name": "movers", "segments": [0, 1, 2, 3], "entered_from": {"segments": [0, 1, 2, 3], "within_nights": 1},
         "holdout_share": 0.3, "salt": "movers-26"},
    ]}))
    return path


def _args(root: Path, models: Path, config: Path):
    return ["--set", f"tables.root={root}", "--set", f"tables.models_dir={models}", "--config", str(config),
            *TEST_SESSION, *SMALL_TRAIN]


class _Lines(logging.Handler):
    """The product's log messages, kept (its logger does not propagate to pytest's)."""

    def __init__(self):
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record):
        self.lines.append(record.getMessage())


def _night(date: str, source: Path, lake) -> list[str]:
    """Runs the night; returns its audience steps' log lines."""
    logger, kept = logging.getLogger("segmentation"), _Lines()
    logger.addHandler(kept)
    try:
        assert nightly_job.main(["--run-date", date, "--input", str(source), *lake]) == 0, date
    finally:
        logger.removeHandler(kept)
    return [line for line in kept.lines if "audience" in line.split(":", 1)[0]]


def _replay(spark, root: Path) -> set[tuple]:
    """audience_members as the replay of every published night's events would make it."""
    published = [r.run_date for r in _table(spark, root, "nights").where(F.col("status") == "PUBLISHED").collect()]
    events = _table(spark, root, "audience_events").where(F.col("run_date").isin(published))
    return {tuple(r) for r in audiences.members_from(events).collect()}


@pytest.fixture(scope="module")
def lake(spark, tmp_path_factory):
    """N1..N4 in date order, the members after each night."""
    root = tmp_path_factory.mktemp("audiences")
    models, a, config = root / "models", root / "a", _config(root)
    inputs = {N1: _csv(root / "n1.csv", LINES[:300])}
    steps = {N1: _night(N1, inputs[N1], _args(a, models, config))}
    seats = {r.CUST_ID: r.segment_id for r in _table(spark, a, "segments").collect()}
    # N2: 20 leave, 20 arrive, 15 move (values of a customer of another segment, id kept)
    lines = list(LINES[:280])
    for i in range(40, 55):
        donor = next(j for j in range(300) if seats[IDS[j]] != seats[IDS[i]])
        lines[i] = IDS[i] + "," + LINES[donor].split(",", 1)[1]
    inputs[N2] = inputs[N3] = inputs[N4] = _csv(root / "n2.csv", lines + LINES[300:320])
    members = {N1: _members(spark, a)}
    for date in (N2, N3, N4):
        steps[date] = _night(date, inputs[date], _args(a, models, config))
        members[date] = _members(spark, a)
    return root, models, config, inputs, a, members, steps


def test_nights_in_order_apply_their_events_to_the_members_and_match_the_replay(spark, lake):
    *_, a, members, steps = lake
    assert any("from=replay" in line for line in steps[N1])  # no members yet
    for date in (N2, N3, N4):  # each after every published night, the table as the night before left it
        assert any("from=members" in line for line in steps[date]), steps[date]
        assert any(line.startswith("apply tonight's events to audience_members") for line in steps[date])
        assert not any(line.startswith("rebuild audience_members") for line in steps[date])
    assert members[N4] == _replay(spark, a)
    versions = {r.run_date.isoformat(): r.members_version for r in _table(spark, a, "nights").collect()}
    history = tables.delta_table(spark, tables.TableRef(path=str(a / "audience_members"))).history()
    assert versions[N4] == versions[N3] == history.agg(F.max("version")).first()[0]  # N4 changed nothing
    assert versions[N1] < versions[N2] < versions[N3]


def test_members_of_a_night_are_the_last_nights_plus_entered_minus_exited(spark, lake):
    *_, a, members, _ = lake
    events = _table(spark, a, "audience_events")
    previous: set[tuple] = set()
    for date in (N1, N2, N3, N4):
        night = {(r.audience, r.CUST_ID): r for r in events.where(F.col("run_date") == date).collect()}
        keys = lambda rows: {(r[0], r[1]) for r in rows}  # noqa: E731
        entered = {k for k, r in night.items() if r.event == "entered"}
        exited = {k for k, r in night.items() if r.event == "exited"}
        assert keys(members[date]) == (keys(previous) | entered) - exited, date
        assert not entered & keys(previous) and exited <= keys(previous), date
        previous = members[date]
    assert {r.audience for r in events.collect()} == {"everyone", "steady_zero", "movers"}


def test_an_unchanged_night_writes_no_events(spark, lake):
    *_, a, members, _ = lake
    per_night = {r.run_date.isoformat(): r["count"] for r in
                 _table(spark, a, "audience_events").groupBy("run_date").count().collect()}
    assert per_night.get(N4, 0) == 0 and members[N4] == members[N3]
    assert per_night[N2] > 0 and per_night[N3] > 0  # N3: steady_zero reaches two nights, movers' window passes
    reasons = {(r.audience, r.reason) for r in _table(spark, a, "audience_events")
               .where((F.col("run_date") == N3) & (F.col("event") == "exited")).collect()}
    assert ("movers", audiences.NOT_ENTERED_FROM) in reasons
    assert ("everyone", audiences.OUTRANKED) in reasons  # steady_zero takes its customers from N3 on


def test_suppressed_customers_are_never_members_and_groups_are_exclusive(spark, lake):
    *_, a, members, _ = lake
    for date, rows in members.items():
        everyone = {r[1] for r in rows if r[0] == "everyone"}
        assert not everyone & set(SUPPRESSED), date
        assert not everyone & {r[1] for r in rows if r[0] == "steady_zero"}, date  # one audience per group
    assert len({r[1] for r in members[N1] if r[0] == "everyone"}) > 200
    assert not [r for r in members[N1] if r[0] == "steady_zero"]  # two nights needed, one published


def test_groups_are_the_python_function_of_salt_and_id(spark, lake):
    *_, a, _, _ = lake
    salts = {"everyone": ("everyone-26", 0.2), "steady_zero": ("zero-26", 0.5), "movers": ("movers-26", 0.3)}
    rows = _table(spark, a, "audience_events").select("audience", "CUST_ID", "group").distinct().collect()
    assert rows and all(r.group == holdout.group(*salts[r.audience], r.CUST_ID) for r in rows)
    held = [r for r in _table(spark, a, "audience_members").where(F.col("audience") == "everyone").collect()]
    assert 0.1 < sum(r.group == "holdout" for r in held) / len(held) < 0.3


def test_a_rerun_and_a_retrain_with_other_seeds_keep_the_tables_and_groups(spark, lake):
    root, models, config, inputs, a, members, _ = lake
    before = _table(spark, a, "audience_events").collect()
    _night(N3, inputs[N3], _args(a, models, config))  # a re-run of a night with a published night after it
    assertDataFrameEqual(_table(spark, a, "audience_events"), before)
    assert _members(spark, a) == members[N4]
    # A model trained with other seeds on another lake: whoever is a member, its group is the same.
    other = root / "retrained"
    _night(N1, inputs[N1], _args(other, root / "models-retrained", config)
           + ["--set", "train.clustering.random_state=23", "--set", "train.sample.seed=3",
              "--set", "train.forest.random_state=5", "--set", "train.forest.min_macro_f1=0"])
    groups = {(r[0], r[1]): r[2] for r in members[N1]}
    again = {(r[0], r[1]): r[2] for r in _members(spark, other)}
    shared = groups.keys() & again.keys()
    assert len(shared) > 100 and all(groups[k] == again[k] for k in shared)


def test_an_audience_on_a_segment_the_model_lacks_stops_the_night_and_puts_it_back(spark, lake, tmp_path):
    root, models, _, inputs, a, _, _ = lake
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"audiences": [_audience(name="ghost", segments=[0, 42])]}))
    lake_dir = tmp_path / "lake"
    code = nightly_job.main(["--run-date", N1, "--input", str(inputs[N1]), *_args(lake_dir, models, bad)])
    assert code == AudienceError.exit_code == 2
    assert not _table(spark, lake_dir, "nights").where(F.col("status") == "PUBLISHED").count()
    assert _table(spark, lake_dir, "segments").count() == 0


def test_the_documented_crm_sync_reads_the_treatment_events_after_the_last_synced_night(spark, lake):
    *_, a, _, _ = lake
    latest = spark.sql(f"DESCRIBE HISTORY delta.`{a / 'segments_current'}`").first().version
    results = run_documented_queries(spark, a, latest, 0, N4, N1)
    [(sql, rows)] = [(s, r) for s, r in results if "audience_events" in s]
    expected = _table(spark, a, "audience_events").where((F.col("run_date") > N1) & (F.col("group") == "treatment"))
    assert rows and sorted(map(tuple, rows)) == sorted(map(tuple, expected.collect()))


def test_a_members_table_another_writer_changed_is_replayed_not_trusted(spark, lake):
    *_, models, config, inputs, a, _, _ = lake
    members = tables.TableRef(path=str(a / "audience_members"))
    gone = _table(spark, a, "audience_members").orderBy("audience", "CUST_ID").first()
    tables.delta_table(spark, members).delete((F.col("audience") == gone.audience) & (F.col("CUST_ID") == gone.CUST_ID))
    steps = _night(N5, inputs[N4], _args(a, models, config))  # N4's customers again: nobody enters or exits
    assert any("from=replay" in line for line in steps) and any(line.startswith("rebuild audience_members")
                                                                for line in steps)
    after = _members(spark, a)
    assert tuple(gone) in after and after == _replay(spark, a)
