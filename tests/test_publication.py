"""Across nights, through the real jobs: nights published whole or set aside, tables that do not
depend on the order nights arrive in, and a change feed (in Spark and in `deltalake`) and an
events history that carry membership changes only.

Three nights of 300-odd bundled customers with different inputs: customers leave, arrive and
move between them. One lake runs them in date order and trains the model the others share.
"""

import collections
import datetime as dt
from pathlib import Path

import deltalake
import polars as pl
import pytest
import yaml
from conftest import BUNDLED_CSV, TEST_SESSION
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from jobs import features as features_job
from jobs import nightly as nightly_job
from segmentation.core.errors import UNEXPECTED_EXIT_CODE
from segmentation.downstream import current
from segmentation.downstream.events import events
from segmentation.downstream.migrations import migrations

N1, N2, N3, N4, N5 = "2026-09-01", "2026-09-02", "2026-09-03", "2026-09-04", "2026-09-05"
SMALL_TRAIN = ["--set", "train.clustering.algorithms=[kmeans]", "--set", "train.clustering.kmeans.k=[4]",
               "--set", "train.clustering.stability.resamples=0", "--set", "train.explain.report=false",
               "--set", "registry.enabled=false"]
HEADER, *LINES = BUNDLED_CSV.read_text().splitlines()
ORDERED = ("segments_current", "segment_events", "segment_migrations", "segment_shares", "drift",
           "audience_events", "audience_members")
# Audiences whose windows reach back over nights, so a backfill changes the nights after it too.
AUDIENCES = [
    {"name": "steady", "segments": [0, 1, 2, 3], "min_nights_in_segment": 2, "holdout_share": 0.3, "salt": "st"},
    {"name": "movers", "segments": [0, 1, 2, 3], "entered_from": {"segments": [0, 1, 2, 3], "within_nights": 2},
     "holdout_share": 0.3, "salt": "mv"},
]


def _table(spark, root: Path, name: str):
    return spark.read.format("delta").load(str(root / name))


def _csv(path: Path, lines) -> Path:
    path.write_text("\n".join([HEADER, *lines]) + "\n")
    return path


def _moved(lines, movers: dict[int, int]):
    """The lines with each mover's values replaced by its donor's (ids kept): they change segment."""
    out = list(lines)
    for mover, donor in movers.items():
        out[mover] = lines[mover].split(",", 1)[0] + "," + lines[donor].split(",", 1)[1]
    return out


def _movers(spark, root: Path, count: int, first: int = 10) -> dict[int, int]:
    """`count` customers (from line `first` on) and, for each, a donor in another segment on N1."""
    seats = {r.CUST_ID: r.segment_id for r in _table(spark, root, "segments").where(F.col("run_date") == N1).collect()}
    ids = [line.split(",", 1)[0] for line in LINES[:300]]
    out = {}
    for i in range(first, 300):
        if len(out) == count:
            break
        donor = next(j for j in range(300) if seats[ids[j]] != seats[ids[i]])
        out[i] = donor
    return out


def _args(root: Path, models: Path):
    config = models.parent / "audiences.yaml"
    if not config.exists():
        config.write_text(yaml.safe_dump({"audiences": AUDIENCES}))
    return ["--set", f"tables.root={root}", "--set", f"tables.models_dir={models}", "--config", str(config),
            *TEST_SESSION, *SMALL_TRAIN]


def _night(date: str, source: Path, lake) -> None:
    assert nightly_job.main(["--run-date", date, "--input", str(source), *lake]) == 0, date


@pytest.fixture(scope="module")
def nights(spark, tmp_path_factory):
    """The three inputs, and lake A: N1 (trains), N2, N3 in date order."""
    root = tmp_path_factory.mktemp("publication")
    models = root / "models"
    a = root / "a"
    inputs = {N1: _csv(root / "n1.csv", LINES[:300])}
    _night(N1, inputs[N1], _args(a, models))
    movers = _movers(spark, a, 3)
    # N2: ten leave, five arrive, three move. N3: five more leave, the ten come back, others move.
    inputs[N2] = _csv(root / "n2.csv", _moved(LINES[:290], movers) + LINES[300:305])
    inputs[N3] = _csv(root / "n3.csv", _moved(LINES[5:300], {i - 5: j - 5 for i, j in _movers(spark, a, 3, 40).items()
                                                                  if j >= 5}) + LINES[300:310])
    for date in (N2, N3):
        _night(date, inputs[date], _args(a, models))
    return root, models, inputs, a


def _rows(spark, root: Path, name: str):
    df = _table(spark, root, name)
    return df.drop(*[c for c in ("scored_at",) if c in df.columns])


def _assert_same_tables(spark, one: Path, other: Path):
    for name in ORDERED:
        assertDataFrameEqual(_rows(spark, other, name), _rows(spark, one, name))
    nights = lambda root: _table(spark, root, "nights").select("run_date", "status", "customers", "model_version")  # noqa: E731
    assertDataFrameEqual(nights(other), nights(one))


@pytest.mark.parametrize("order", [(N3, N1, N2), (N2, N3, N1, N2)], ids=["3-1-2", "2-3-1-rerun-2"])
def test_any_order_of_nights_gives_the_tables_of_date_order(spark, nights, order):
    root, models, inputs, a = nights
    lake = root / ("order-" + "-".join(d[-1] for d in order))
    for i, date in enumerate(order):
        _night(date, inputs[date], _args(lake, models))
        if i >= 2:  # every night published: the tables of date order already, and after a re-run too
            _assert_same_tables(spark, a, lake)
    assert _table(spark, a, "audience_events").where(F.col("run_date") == N3).count() > 0
    # And they are what a night says against the published night before it.
    segments = _table(spark, a, "segments")
    night = lambda d: segments.where(F.col("run_date") == d)  # noqa: E731
    d2, d3 = dt.date.fromisoformat(N2), dt.date.fromisoformat(N3)
    assertDataFrameEqual(_table(spark, lake, "segment_events").where(F.col("run_date") == N3),
                         events(night(N3), night(N2), d3, d2))
    assertDataFrameEqual(_table(spark, lake, "segment_migrations").where(F.col("run_date") == N3),
                         migrations(night(N3), night(N2), d3, d2))
    dates = [dt.date.fromisoformat(d) for d in (N1, N2, N3)]
    assertDataFrameEqual(_table(spark, lake, "segments_current"), current.from_history(segments, dates))


def test_a_night_that_dies_mid_publication_is_never_seen_and_the_next_run_sets_it_aside(
        spark, nights, monkeypatch, caplog):
    root, models, inputs, _ = nights
    lake = root / "killed"
    _night(N1, inputs[N1], _args(lake, models))

    def dies(*args, **kwargs):
        raise RuntimeError("the driver died here")

    with monkeypatch.context() as patch:  # the night dies after its segments, events and drift are written
        patch.setattr(current, "apply_events", dies)
        patch.setattr(current, "rebuild", dies)
        assert nightly_job.main(["--run-date", N2, "--input", str(inputs[N2]), *_args(lake, models)]) \
            == UNEXPECTED_EXIT_CODE
    status = {r.run_date.isoformat(): r.status for r in _table(spark, lake, "nights").collect()}
    assert status == {N1: "PUBLISHED", N2: "PUBLISHING"}
    assert _table(spark, lake, "segments").where(F.col("run_date") == N2).count() == 295  # written...
    published = spark.sql(  # ...but the documented reader's query does not see it
        f"SELECT s.run_date, count(*) AS n FROM delta.`{lake}/segments` s JOIN delta.`{lake}/nights` n "
        "USING (run_date) WHERE n.status = 'PUBLISHED' GROUP BY s.run_date").collect()
    assert [(r.run_date.isoformat(), r.n) for r in published] == [(N1, 300)]

    _night(N3, inputs[N3], _args(lake, models))
    assert any("night 2026-09-02 was left unpublished" in r.getMessage() for r in caplog.records)
    status = {r.run_date.isoformat(): r.status for r in _table(spark, lake, "nights").collect()}
    assert status == {N1: "PUBLISHED", N3: "PUBLISHED"}
    for name in ("features", "quarantine", "segments", "segment_shares", "segment_events", "segment_migrations",
                 "drift"):
        assert _table(spark, lake, name).where(F.col("run_date") == N2).isEmpty(), name
    segments = _table(spark, lake, "segments")
    night = lambda d: segments.where(F.col("run_date") == d)  # noqa: E731
    d1, d3 = dt.date.fromisoformat(N1), dt.date.fromisoformat(N3)
    assertDataFrameEqual(_table(spark, lake, "segment_migrations").where(F.col("run_date") == N3),
                         migrations(night(N3), night(N1), d3, d1))
    assertDataFrameEqual(_table(spark, lake, "segments_current"), current.from_history(segments, [d1, d3]))
    runs = {r.run_date.isoformat(): r.status for r in _table(spark, lake, "runs").collect()}
    assert runs == {N1: "SUCCEEDED", N2: "FAILED", N3: "SUCCEEDED"}

    # A re-run of the published N3, on other input, dies the same way: the next run (here the
    # features job of another night) puts N3 back as it was published.
    published = {name: _rows(spark, lake, name).collect() for name in (*ORDERED, "segments", "features")}
    with monkeypatch.context() as patch:
        patch.setattr(current, "rebuild", dies)
        assert nightly_job.main(["--run-date", N3, "--input", str(inputs[N2]), *_args(lake, models)]) \
            == UNEXPECTED_EXIT_CODE
    assert _table(spark, lake, "nights").where(F.col("status") == "PUBLISHING").count() == 1
    assert features_job.main(["--run-date", N4, "--input", str(inputs[N3]), *_args(lake, models)]) == 0
    assert {r.status for r in _table(spark, lake, "nights").collect()} == {"PUBLISHED"}
    for name, rows in published.items():
        assertDataFrameEqual(_rows(spark, lake, name).where(F.col("run_date") != N4) if name == "features"
                             else _rows(spark, lake, name), rows)


def _spark_feed(spark, root: Path, version: int):
    feed = (spark.read.format("delta").option("readChangeFeed", "true").option("startingVersion", version)
            .load(str(root / "segments_current")))
    return collections.Counter(r["_change_type"] for r in feed.select("_change_type").collect())


def _deltalake_feed(root: Path, version: int):
    table = deltalake.DeltaTable(str(root / "segments_current"))
    feed = table.load_cdf(starting_version=version).read_all()
    return collections.Counter(feed.column("_change_type").to_pylist())


def test_the_change_feed_carries_moves_only_in_spark_and_in_deltalake(spark, nights, tmp_path):
    root, models, inputs, a = nights
    lake = root / "feed"
    args = _args(lake, models)
    _night(N1, inputs[N1], args)
    table = lambda: deltalake.DeltaTable(str(lake / "segments_current"))  # noqa: E731
    # The same input the next night: no commit at all, so no change in either reader.
    version = table().version()
    _night(N2, inputs[N1], args)
    assert table().version() == version
    assert _table(spark, lake, "segment_events").where(F.col("run_date") == N2).isEmpty()
    # A night where 1% of the customers (3 of 300) move, and confidence moves for the rest.
    movers = _movers(spark, lake, 3)
    nudged = [",".join(v if i != 1 or not v else str(float(v) * 1.02) for i, v in enumerate(line.split(",")))
              for line in _moved(LINES[:300], movers)]
    _night(N3, _csv(tmp_path / "moved.csv", nudged), args)
    moved = _table(spark, lake, "segment_events").where(F.col("run_date") == N3)
    assert sorted(r.event for r in moved.collect()) == ["moved"] * 3
    conf = _table(spark, lake, "segments").groupBy("CUST_ID").agg(F.countDistinct("segment_confidence").alias("n"))
    assert conf.where("n > 1").count() > 3  # confidence moved for more customers than moved segment
    expected = {"update_preimage": 3, "update_postimage": 3}
    assert _spark_feed(spark, lake, version + 1) == expected
    assert _deltalake_feed(lake, version + 1) == expected
    commit = table().history(1)[0]
    assert commit["operation"] == "MERGE"
    print(f"change rows: unchanged night 0 (no commit), 1% night spark {sum(expected.values())} "
          f"deltalake {sum(_deltalake_feed(lake, version + 1).values())}; MERGE metrics "
          f"{ {k: v for k, v in commit['operationMetrics'].items() if k.startswith('numTarget')} }")
    # Readers other than Spark see the same table (deletion vectors included).
    spark_rows = sorted(tuple(r) for r in _table(spark, lake, "segments_current").select("CUST_ID", "segment_id").collect())
    polars_rows = sorted(pl.read_delta(str(lake / "segments_current")).select("CUST_ID", "segment_id").iter_rows())
    assert spark_rows == polars_rows and len(spark_rows) == 300


def test_who_moved_since_a_date_comes_from_the_events_table(spark, nights):
    _, _, _, a = nights
    since = spark.sql(f"SELECT CUST_ID, event, from_segment_id, to_segment_id, run_date "
                      f"FROM delta.`{a}/segment_events` WHERE run_date > DATE'{N1}' AND event = 'moved'")
    per_night = {r.run_date.isoformat(): r.n for r in since.groupBy("run_date").agg(F.count("*").alias("n")).collect()}
    assert per_night[N2] >= 3  # the three movers of N2, at least
    feed = (_table(spark, a, "segment_migrations").where((F.col("run_date") > N1) & (F.col("movement") == "moved"))
            .agg(F.sum("customers")).first()[0])
    assert since.count() == feed
