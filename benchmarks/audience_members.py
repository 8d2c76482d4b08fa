"""What a later night's `audience_members` step costs against how many nights of audience events
lie behind it, both ways: the replay of every published night's events (what every night did
before `nights.members_version`, and what a backfill still does) and tonight's events applied to
the members (what a night after every published one does now).

    python -m benchmarks.audience_members --members 1000000 [--churn 0.01] [--history 30,180,365]

For each history length H it writes, in a scratch folder, an `audience_events` table of H nights
(night 1: every member enters; each later night `--churn` of the members exit and as many new
customers enter) and `audience_members` as their replay, then night H+1's events. Each way then
takes the members before tonight and leaves the members after it, and both are checked to hold
the same rows. Prints the seconds of each way and the rows each read.
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import tempfile
import time
from pathlib import Path

from pyspark.sql import functions as F

from benchmarks import emit
from jobs import common
from segmentation.core.columns import ID_COLUMN, RUN_DATE
from segmentation.core.config import load_config
from segmentation.downstream import audiences
from segmentation.io import tables

FIRST = dt.date(2025, 1, 1)
AUDIENCE = "bench"


def _events(spark, members: int, churn: float, nights: int, first_night: int = 1):
    """AUDIENCE_EVENTS_SCHEMA rows of nights `first_night`..`nights`. Customer k enters on night
    1 (k < members) or on night n (members + (n-2)*c <= k < members + (n-1)*c, c the churned per
    night) and exits on night n >= 2 when (n-2)*c <= k < (n-1)*c: the oldest leave first."""
    c = max(1, round(members * churn))
    entered_on = F.when(F.col("id") < members, F.lit(1)).otherwise(((F.col("id") - members) / c).cast("int") + 2)
    exits_on = F.when(F.col("id") < (nights - 1) * c, (F.col("id") / c).cast("int") + 2)
    ids = spark.range(members + (nights - 1) * c)
    both = ids.select("id", entered_on.alias("n"), F.lit(audiences.ENTERED).alias("event")).unionByName(
        ids.select("id", exits_on.alias("n"), F.lit(audiences.EXITED).alias("event")).where(F.col("n").isNotNull()))
    columns = {
        RUN_DATE: F.date_add(F.lit(FIRST), F.col("n") - 1),
        "audience": F.lit(AUDIENCE),
        ID_COLUMN: F.format_string("C%010d", F.col("id")),
        "event": F.col("event"),
        "group": F.when(F.col("id") % 10 == 0, F.lit("holdout")).otherwise(F.lit("treatment")),
        "reason": F.when(F.col("event") == audiences.ENTERED, F.lit(audiences.ELIGIBLE)).otherwise(F.lit(audiences.MOVED)),
        "segment_id": (F.col("id") % 4).cast("int"),
    }
    return (both.where(F.col("n").between(first_night, nights))
            .select(*[columns[f.name].cast(f.dataType).alias(f.name) for f in audiences.AUDIENCE_EVENTS_SCHEMA.fields]))


def _digest(df) -> tuple[int, int]:
    """(rows, an order-free hash of them): two tables with one digest hold the same rows."""
    row = df.select(F.count(F.lit(1)).alias("n"), F.sum(F.xxhash64(*df.columns) % 1_000_000_007).alias("h")).first()
    return int(row["n"]), int(row["h"] or 0)


def _one_history(spark, cfg, root: Path, members: int, churn: float, history: int) -> dict:
    events_ref = tables.table_ref(cfg.tables, cfg.tables.audience_events)
    members_ref = tables.table_ref(cfg.tables, cfg.tables.audience_members)
    for name in ("audience_events", "audience_members"):
        shutil.rmtree(root / name, ignore_errors=True)
    start = time.perf_counter()
    (_events(spark, members, churn, history).write.format("delta").partitionBy(RUN_DATE)
     .save(events_ref.path))
    before = [FIRST + dt.timedelta(days=i) for i in range(history)]
    audiences.members_from(tables.read_delta(spark, events_ref)).write.format("delta").save(members_ref.path)
    tonight = FIRST + dt.timedelta(days=history)
    tables.replace_run(_events(spark, members, churn, history + 1, history + 1), events_ref, tonight)
    setup = time.perf_counter() - start
    published = [*before, tonight]
    saved = root / "members_before"
    shutil.rmtree(saved, ignore_errors=True)
    tables.read_delta(spark, members_ref).write.format("delta").save(str(saved))

    # The replay: the members before tonight (derive's diff), then rebuild_members over every night.
    start = time.perf_counter()
    previous_rows = audiences.members_from(
        tables.read_delta(spark, events_ref).where(F.col(RUN_DATE).isin(before))).count()
    changed = audiences.rebuild_members(spark, cfg, published)
    replay = time.perf_counter() - start
    replayed = _digest(tables.read_delta(spark, members_ref))

    # Tonight's events applied: the members table read as the previous members, then one MERGE.
    spark.read.format("delta").load(str(saved)).write.format("delta").mode("overwrite").save(members_ref.path)
    start = time.perf_counter()
    previous_now = tables.read_delta(spark, members_ref).count()
    applied_events = audiences.apply_night(spark, cfg, tonight)
    applied = time.perf_counter() - start
    assert _digest(tables.read_delta(spark, members_ref)) == replayed, "the two ways left other members"
    assert previous_now == previous_rows
    return {
        "history_nights": history, "events_rows": tables.read_delta(spark, events_ref).count(),
        "members_after": replayed[0], "tonight_events": applied_events, "rows_changed_by_replay": changed,
        "setup_seconds": round(setup, 1), "replay_seconds": round(replay, 2), "apply_seconds": round(applied, 2),
        "apply_over_replay": round(applied / replay, 3),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="benchmarks.audience_members", description=__doc__.splitlines()[0])
    p.add_argument("--members", type=int, default=1_000_000)
    p.add_argument("--churn", type=float, default=0.01, help="share of the members who exit (and enter) each night")
    p.add_argument("--history", default="30,180,365", help="nights of events before tonight, comma-separated")
    p.add_argument("--workdir", type=Path, default=None)
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="segmentation-audience-members-"))
    cfg = load_config(common.find_conf_dir(None), ["local"], [f"tables.root={workdir}"])
    spark = common.spark_session(cfg)
    results = [_one_history(spark, cfg, workdir, args.members, args.churn, int(h)) for h in args.history.split(",")]
    return emit({"date": dt.date.today().isoformat(), "members": args.members, "churn": args.churn,
                 "by_history": results}, args.json)


if __name__ == "__main__":
    raise SystemExit(main())
