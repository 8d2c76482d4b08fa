"""Later nights at scale: what publishing a night costs when segments_current already holds everyone.

Three nights of one generated population: the first (everyone new), the same input again (no
membership change), and the generator's next night with only profile switches (`--movers` of the
customers take a profile of another archetype, so most move segment; no other movement, departure
or arrival). For each: the seconds of features, score and each publication step, the
segment events, and the change-feed rows of segments_current. Then the MERGE this product ran
before (every customer of the night against the whole table) on the last night, side by side.

    python -m benchmarks.later_nights --rows 1000000 --json later.json
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import re
import shutil
import time
from pathlib import Path

from delta.tables import DeltaTable
from pyspark.sql import functions as F

from benchmarks import emit
from jobs import common
from jobs.generate import compiled_for_generation
from segmentation.core import logs
from segmentation.core.columns import ID_COLUMN, RUN_DATE
from segmentation.core.config import load_config
from segmentation.downstream import current
from segmentation.features.stage import run_features
from segmentation.io import tables
from segmentation.score.stage import run_score
from segmentation.synthetic import generator
from segmentation.train.stage import run_train

NIGHTS = [dt.date(2026, 11, 1), dt.date(2026, 11, 2), dt.date(2026, 11, 3)]


def _movers_night(args: argparse.Namespace) -> generator.NightParams:
    """The generator's night 2 of the population with profile switches alone: what moves is who moves."""
    return generator.NightParams(movement=0.0, move_share=args.movers, departure_share=0.0, arrival_share=0.0)


def _old_merge(spark, night, ref: tables.TableRef, run_date: dt.date, previous_date: dt.date) -> None:
    """The MERGE this product ran before: every customer of the night, a row rewritten when any value differed."""
    target = DeltaTable.forPath(spark, ref.path)
    source = night.select(ID_COLUMN, "segment_id", "segment_name", "segment_confidence", "model_version",
                          F.col(RUN_DATE).alias("scored_run_date"))
    moved = "t.segment_id <> s.segment_id"
    changed = (f"t.scored_run_date <= s.scored_run_date AND ({moved} OR t.segment_name <> s.segment_name "
               "OR t.segment_confidence <> s.segment_confidence OR t.model_version <> s.model_version OR NOT t.active)")
    (target.alias("t").merge(source.alias("s"), f"t.{ID_COLUMN} = s.{ID_COLUMN}")
     .whenMatchedUpdate(condition=changed, set={
         "segment_id": "s.segment_id", "segment_name": "s.segment_name", "segment_confidence": "s.segment_confidence",
         "model_version": "s.model_version", "scored_run_date": "s.scored_run_date",
         "since_run_date": f"CASE WHEN {moved} THEN s.scored_run_date ELSE t.since_run_date END",
         "previous_segment_id": f"CASE WHEN {moved} THEN t.segment_id ELSE t.previous_segment_id END",
         "active": "true", "last_seen_run_date": "CAST(NULL AS DATE)"})
     .whenNotMatchedInsert(values={
         ID_COLUMN: f"s.{ID_COLUMN}", "segment_id": "s.segment_id", "segment_name": "s.segment_name",
         "segment_confidence": "s.segment_confidence", "model_version": "s.model_version",
         "scored_run_date": "s.scored_run_date", "since_run_date": "s.scored_run_date",
         "previous_segment_id": "CAST(NULL AS INT)", "active": "true", "last_seen_run_date": "CAST(NULL AS DATE)"})
     .whenNotMatchedBySourceUpdate(condition="t.active", set={"active": F.lit(False),
                                                              "last_seen_run_date": F.lit(previous_date)})
     .execute())


class _Steps(logging.Handler):
    """The product's step lines ("name: rows=.. seconds=.."), summed per stage and step."""

    LINE = re.compile(r"^([^:]+):.*?\bseconds=([\d.]+)")

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.seconds: dict[str, float] = {}

    def emit(self, record: logging.LogRecord) -> None:
        if m := self.LINE.match(record.getMessage()):
            key = f"{record.name.removeprefix('segmentation.')}: {m.group(1)}"
            self.seconds[key] = round(self.seconds.get(key, 0.0) + float(m.group(2)), 2)


def _events_by_kind(spark, cfg, run_date: dt.date) -> dict[str, int]:
    """The night's segment events per kind (new, moved, relabelled, departed): who moved."""
    ref = tables.table_ref(cfg.tables, cfg.tables.segment_events)
    return {r["event"]: int(r["count"]) for r in tables.read_run(spark, ref, run_date).groupBy("event").count().collect()}


def _feed_rows(spark, ref: tables.TableRef, since: int) -> int:
    if tables.latest_version(spark, ref) < since:
        return 0
    return (spark.read.format("delta").option("readChangeFeed", "true").option("startingVersion", since)
            .load(ref.path).count())


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="benchmarks.later_nights", description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--movers", type=float, default=0.01, help="share of customers who move on the third night")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--workdir", type=Path, default=Path("/tmp/segmentation-later-nights"))
    p.add_argument("--json", type=Path, default=None)
    p.add_argument("--set", action="append", default=[], dest="overrides")
    args = p.parse_args(argv)

    logs.configure()
    shutil.rmtree(args.workdir, ignore_errors=True)
    args.workdir.mkdir(parents=True)
    first, moved = args.workdir / "night1.parquet", args.workdir / "night3.parquet"
    conf_dir = common.find_conf_dir(None)

    def config(source: Path):
        return load_config(conf_dir, ["local"], [
            f"tables.root={args.workdir / 'lake'}", f"tables.models_dir={args.workdir / 'lake' / 'models'}",
            f"input.source={source}", "registry.enabled=false", "train.explain.report=false", *args.overrides])

    cfg = config(first)
    spark = common.spark_session(cfg)
    params = _movers_night(args)
    with compiled_for_generation(spark):
        generator.write_customers(generator.night(spark, args.rows, args.seed, 1, params), str(first), "parquet")
        generator.write_customers(generator.night(spark, args.rows, args.seed, 2, params), str(moved), "parquet")
    movers = generator.night_profiles(spark, args.rows, args.seed, 2, params).where(F.col("profile") == 1).count()
    ref = tables.table_ref(cfg.tables, cfg.tables.segments_current)

    merge_seconds: list[float] = []
    for name in ("apply_events", "rebuild"):
        inner = getattr(current, name)

        def timed(*a, _inner=inner, **k):
            start = time.perf_counter()
            try:
                return _inner(*a, **k)
            finally:
                merge_seconds.append(time.perf_counter() - start)
        setattr(current, name, timed)

    nights = []
    steps = _Steps()
    logging.getLogger(logs.LOGGER_NAME).addHandler(steps)
    for i, (run_date, source) in enumerate(zip(NIGHTS, (first, first, moved))):
        steps.seconds = {}
        night_cfg = config(source)
        before = tables.latest_version(spark, ref) if tables.exists(spark, ref) else -1
        start = time.perf_counter()
        run_features(spark, night_cfg, run_date)
        features_s = time.perf_counter() - start
        if i == 0:
            run_train(spark, night_cfg, run_date)
        merge_seconds.clear()
        start = time.perf_counter()
        scored = run_score(spark, night_cfg, run_date)
        score_s = time.perf_counter() - start
        after = tables.latest_version(spark, ref)
        last_before = before
        nights.append({
            "run_date": run_date.isoformat(),
            "input": ["generated", "the same input again", f"{movers} customers given another archetype's profile"][i],
            "features_s": round(features_s, 2),
            "score_and_publish_s": round(score_s, 2),
            "segments_current_s": round(sum(merge_seconds), 2),
            "segment_events": scored["membership_changes"],
            "segments_current_commits": after - before,
            "change_feed_rows": _feed_rows(spark, ref, before + 1),
            "events_by_kind": _events_by_kind(spark, cfg, run_date),
            "steps_s": {k: v for k, v in steps.seconds.items() if not k.startswith("train")},
            "segments_current_vs_scoring": (
                round(sum(merge_seconds) / steps.seconds["score: score and write segments"], 2)
                if steps.seconds.get("score: score and write segments") else None),
        })
    # The old MERGE of the last night, into a copy of the table as the night before left it, with
    # the old table's properties (change feed, no deletion vectors): the cost this replaces.
    night = tables.read_run(spark, tables.table_ref(cfg.tables, cfg.tables.segments), NIGHTS[-1])
    copy = tables.TableRef(path=str(args.workdir / "old_segments_current"))
    (spark.read.format("delta").option("versionAsOf", last_before).load(ref.path).write.format("delta")
     .option("delta.enableChangeDataFeed", "true").save(copy.path))
    start = time.perf_counter()
    _old_merge(spark, night, copy, NIGHTS[-1], NIGHTS[-2])
    old_s = time.perf_counter() - start
    metrics = DeltaTable.forPath(spark, copy.path).history(1).first()["operationMetrics"]
    figures = {
        "rows": args.rows, "cores": spark.sparkContext.defaultParallelism, "date": dt.date.today().isoformat(),
        "nights": nights,
        "old_merge_same_night_s": round(old_s, 2),
        "old_merge_rows_copied": int(metrics.get("numTargetRowsCopied", 0)),
        "old_merge_rows_updated": int(metrics.get("numTargetRowsUpdated", 0)),
        "old_merge_feed_rows": _feed_rows(spark, copy, 1),
    }
    return emit(figures, args.json)


if __name__ == "__main__":
    raise SystemExit(main())
