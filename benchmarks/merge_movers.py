"""What the `segments_current` MERGE of a later night costs against how many customers moved, at
one table size: the evidence that its cost grows with what changed, not with the table.

    python -m benchmarks.merge_movers --rows 1000000 [--movers 0.001,0.01,0.05,0.2] [--rounds 2]

Builds a `segments_current` of `--rows` customers in a scratch folder the way a first night does
(every customer `new`), then applies nights whose `segment_events` move a given share of them
(`current.apply_events`, the code a later night runs), the shares in turn and in another order
each round, so every MERGE meets a table of the same size. Prints the seconds of each MERGE, the
rows it wrote and the change-feed rows it left.
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from pyspark.sql import functions as F

from benchmarks import emit
from jobs import common
from segmentation.core.columns import ID_COLUMN, RUN_DATE
from segmentation.core.config import load_config
from segmentation.downstream import current
from segmentation.downstream.events import EVENTS_SCHEMA, MOVED, NEW
from segmentation.io import tables

FIRST = dt.date(2026, 11, 1)
SEGMENTS = 4


def _events(spark, rows: int, run_date: dt.date, previous: dt.date | None, every: int, offset: int):
    """EVENTS_SCHEMA rows: every customer `new` (every=1, previous None), else one in `every`
    (those whose id is `offset` modulo `every`) moved to the next segment."""
    ids = spark.range(rows)
    if every > 1:
        ids = ids.where(F.col("id") % every == offset)
    seg = (F.col("id") + F.lit(offset)) % SEGMENTS
    columns = {
        RUN_DATE: F.lit(run_date),
        "previous_run_date": F.lit(previous).cast("date"),
        ID_COLUMN: F.format_string("C%09d", F.col("id")),
        "event": F.lit(NEW if previous is None else MOVED),
        "from_segment_id": F.lit(None).cast("int") if previous is None else seg.cast("int"),
        "to_segment_id": ((seg + 1) % SEGMENTS).cast("int"),
        "segment_name": F.concat(F.lit("segment "), ((seg + 1) % SEGMENTS).cast("string")),
        "segment_confidence": F.lit(0.9),
        "model_version": F.lit("bench"),
    }
    return ids.select(*[columns[f.name].cast(f.dataType).alias(f.name) for f in EVENTS_SCHEMA.fields])


def _last_commit(spark, ref) -> dict:
    row = tables.delta_table(spark, ref).history(1).select("version", "operationMetrics").first()
    return {"version": int(row["version"]), **{k: int(v) for k, v in (row["operationMetrics"] or {}).items()
                                               if k in ("numTargetRowsUpdated", "numTargetRowsInserted",
                                                        "numTargetRowsCopied", "numTargetFilesAdded",
                                                        "numTargetDeletionVectorsAdded")}}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="benchmarks.merge_movers", description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--movers", default="0.001,0.01,0.05,0.2", help="shares of the customers who move, comma-separated")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--workdir", type=Path, default=None)
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)
    shares = [float(s) for s in args.movers.split(",")]
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="segmentation-merge-movers-"))
    shutil.rmtree(workdir / "segments_current", ignore_errors=True)
    cfg = load_config(common.find_conf_dir(None), ["local"], [f"tables.root={workdir}"])
    spark = common.spark_session(cfg)
    ref = tables.TableRef(path=str(workdir / "segments_current"))

    start = time.perf_counter()
    current.apply_events(spark, _events(spark, args.rows, FIRST, None, 1, 0), ref, FIRST, None)
    first = {"seconds": round(time.perf_counter() - start, 2), **_last_commit(spark, ref)}

    runs: dict[str, list[dict]] = {str(s): [] for s in shares}
    night = FIRST
    for r in range(args.rounds):
        for share in (shares if r % 2 == 0 else list(reversed(shares))):
            previous, night = night, night + dt.timedelta(days=1)
            events = _events(spark, args.rows, night, previous, max(1, round(1 / share)), (night - FIRST).days)
            start = time.perf_counter()
            current.apply_events(spark, events, ref, night, previous)
            seconds = time.perf_counter() - start
            commit = _last_commit(spark, ref)
            feed = (spark.read.format("delta").option("readChangeFeed", "true")
                    .option("startingVersion", commit["version"]).option("endingVersion", commit["version"])
                    .load(ref.path).count())
            runs[str(share)].append({"seconds": round(seconds, 2), "feed_rows": feed, **commit})
    rows = tables.read_delta(spark, ref).count()
    figures = {
        "date": dt.date.today().isoformat(), "rows": args.rows, "table_rows_after": rows, "first_night": first,
        "by_share": {s: {"movers": v[0].get("numTargetRowsUpdated"),
                         "median_seconds": statistics.median(x["seconds"] for x in v), "runs": v}
                     for s, v in runs.items()},
    }
    return emit(figures, args.json)


if __name__ == "__main__":
    raise SystemExit(main())
