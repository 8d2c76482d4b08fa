"""`segment_migrations` two ways on one lake's real nights, side by side: from a join of the night
with the night before (how it was), and from the night's events and the night alone (how it is).

    python -m benchmarks.later_nights --rows 10000000      # leaves its lake in its workdir
    python -m benchmarks.migrations --lake /tmp/segmentation-later-nights/lake \\
        --run-date 2026-11-03 --previous 2026-11-02 [--rounds 2]

Each round writes both into scratch Delta tables, in turns, and checks they hold the same rows.
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import statistics
import time
from pathlib import Path

from benchmarks import emit
from jobs import common
from segmentation.core.config import load_config
from segmentation.downstream.migrations import migrations, migrations_from_events
from segmentation.io import tables


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="benchmarks.migrations", description=__doc__.splitlines()[0])
    p.add_argument("--lake", type=Path, required=True)
    p.add_argument("--run-date", type=dt.date.fromisoformat, required=True)
    p.add_argument("--previous", type=dt.date.fromisoformat, required=True)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)
    cfg = load_config(common.find_conf_dir(None), ["local"], [f"tables.root={args.lake}"])
    spark = common.spark_session(cfg)
    segments = tables.table_ref(cfg.tables, cfg.tables.segments)
    night = tables.read_run(spark, segments, args.run_date)
    before = tables.read_run(spark, segments, args.previous)
    night_events = tables.read_run(spark, tables.table_ref(cfg.tables, cfg.tables.segment_events), args.run_date)
    ways = {"two_nights_join": lambda: migrations(night, before, args.run_date, args.previous),
            "from_events": lambda: migrations_from_events(night, night_events, args.run_date, args.previous)}
    seconds: dict[str, list[float]] = {name: [] for name in ways}
    scratch = args.lake.parent / "migrations-scratch"
    for i in range(args.rounds):
        for name in (list(ways) if i % 2 == 0 else list(reversed(ways))):
            shutil.rmtree(scratch / name, ignore_errors=True)
            start = time.perf_counter()
            tables.replace_run(ways[name](), tables.TableRef(path=str(scratch / name)), args.run_date)
            seconds[name].append(round(time.perf_counter() - start, 2))
    rows = {name: sorted(tuple(r) for r in spark.read.format("delta").load(str(scratch / name)).collect())
            for name in ways}  # one row per (from, to) pair: a few dozen
    figures = {"date": dt.date.today().isoformat(), "customers": night.count(),
               "events": night_events.count(), "seconds": seconds,
               "median_ratio_new_to_old": round(statistics.median(seconds["from_events"])
                                                / statistics.median(seconds["two_nights_join"]), 2),
               "same_rows": rows["two_nights_join"] == rows["from_events"], "pairs": len(rows["from_events"])}
    return emit(figures, args.json)


if __name__ == "__main__":
    raise SystemExit(main())
