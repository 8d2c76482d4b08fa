"""Campaign activation on the bundled customers: members and events per night, the holdout share
measured, and the `lift` job's time at N responses.

Three nights through the real nightly job, with the worked example's kind of audiences:
  1. the bundled file (everyone enters);
  2. the same file again (an unchanged night: no audience events);
  3. the bundled customers with 2% gone and 3% who took another customer's behaviour (so some
     move segment and leave or join audiences).
Then the generator's responses to every member, repeated over response dates until there are
`--responses` of them, through the `lift` job, timed.

    python -m benchmarks.campaign --responses 1000000 --json campaign.json
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import shutil
import time
from pathlib import Path

import yaml
from pyspark.sql import Window
from pyspark.sql import functions as F

from benchmarks import emit
from jobs import common
from jobs import lift as lift_job
from jobs import nightly as nightly_job
from segmentation.core.columns import ID_COLUMN, RAW_NUMERIC_COLUMNS
from segmentation.core.config import load_config
from segmentation.synthetic.generator import responses as synthetic_responses

PROJECT = Path(__file__).resolve().parents[1]
BUNDLED = PROJECT / "data" / "CC_GENERAL.csv"
NIGHTS = [dt.date(2026, 11, 1), dt.date(2026, 11, 2), dt.date(2026, 11, 3)]
AUDIENCES = [
    {"name": "offer_first", "segments": [0], "holdout_share": 0.1, "salt": "bench-first",
     "exclusive_group": "offers", "priority": 1},
    {"name": "offer_second", "segments": [0, 1, 2], "min_confidence": 0.6, "holdout_share": 0.1,
     "salt": "bench-second", "exclusive_group": "offers", "priority": 2},
    {"name": "steady_three", "segments": [3], "min_nights_in_segment": 2, "holdout_share": 0.2,
     "salt": "bench-steady"},
]
EFFECTS = {0: 0.05, 1: 0.0, 2: 0.02, 3: 0.0}


def _changed_night(spark, out: Path) -> str:
    """The bundled customers, 2% departed and 3% with the behaviour of the customer after them."""
    raw = spark.read.option("header", True).option("inferSchema", True).csv(str(BUNDLED))
    bucket = F.conv(F.substring(F.sha2(F.col(ID_COLUMN), 256), 1, 8), 16, 10).cast("long") % 100
    ordered = raw.withColumn("_bucket", bucket).withColumn("_n", F.row_number().over(Window.orderBy(ID_COLUMN)))
    donors = ordered.select((F.col("_n") - 1).alias("_n"), *[F.col(c).alias(f"_d_{c}") for c in RAW_NUMERIC_COLUMNS])
    moved = ordered.join(donors, "_n", "left").select(
        ID_COLUMN, "_bucket",
        *[F.when((F.col("_bucket") >= 2) & (F.col("_bucket") < 5) & F.col(f"_d_{c}").isNotNull(), F.col(f"_d_{c}"))
          .otherwise(F.col(c)).alias(c) for c in RAW_NUMERIC_COLUMNS])
    path = out / "night3.csv"
    moved.where(F.col("_bucket") >= 2).drop("_bucket").coalesce(1).write.mode("overwrite") \
        .option("header", True).csv(str(path))
    return str(path)


def _night_figures(spark, root: Path, run_date: dt.date) -> dict:
    members = spark.read.format("delta").load(str(root / "audience_members"))
    events = spark.read.format("delta").load(str(root / "audience_events")).where(F.col("run_date") == run_date)
    out: dict = {}
    for r in members.groupBy("audience").agg(F.count("*").alias("members"),
                                             F.sum((F.col("group") == "holdout").cast("int")).alias("holdout")).collect():
        out[r.audience] = {"members": r.members, "holdout": r.holdout,
                           "holdout_share": round(r.holdout / r.members, 4) if r.members else None}
    for r in events.groupBy("audience", "event").count().collect():
        out.setdefault(r.audience, {"members": 0, "holdout": 0})[r.event] = r["count"]
    for r in events.where(F.col("event") == "exited").groupBy("audience", "reason").count().collect():
        out[r.audience].setdefault("exit_reasons", {})[r.reason] = r["count"]
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--responses", type=int, default=1_000_000)
    p.add_argument("--work", type=Path, default=PROJECT / "build" / "campaign-bench")
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)
    shutil.rmtree(args.work, ignore_errors=True)
    args.work.mkdir(parents=True)
    root = args.work / "lake"
    overlay = args.work / "audiences.yaml"
    overlay.write_text(yaml.safe_dump({"audiences": AUDIENCES}), encoding="utf-8")
    lake = ["--config", str(overlay), "--set", f"tables.root={root}", "--set", f"tables.models_dir={root / 'models'}",
            "--set", f"lift.report={root / 'reports' / 'audience_lift.html'}"]
    cfg = load_config(PROJECT / "conf", overrides=[a for a in lake[2:] if a != "--set"])
    spark = common.spark_session(cfg)
    figures: dict = {"customers": None, "nights": {}}
    inputs = [str(BUNDLED), str(BUNDLED), _changed_night(spark, args.work)]
    for run_date, source in zip(NIGHTS, inputs):
        started = time.perf_counter()
        assert nightly_job.main(["--run-date", run_date.isoformat(), "--input", source, *lake]) == 0, run_date
        figures["nights"][run_date.isoformat()] = {"seconds": round(time.perf_counter() - started, 1),
                                                   "audiences": _night_figures(spark, root, run_date)}
    members = spark.read.format("delta").load(str(root / "audience_members"))
    figures["customers"] = spark.read.format("delta").load(str(root / "segments_current")).count()
    per_date = members.count()
    dates = math.ceil(args.responses / per_date)
    answers = [synthetic_responses(members, EFFECTS, 0.08, seed=7 + i, response_date=NIGHTS[-1] + dt.timedelta(days=1 + i))
               for i in range(dates)]
    frame = answers[0]
    for more in answers[1:]:
        frame = frame.unionByName(more)
    responses = args.work / "responses.parquet"
    frame.limit(args.responses).write.mode("overwrite").parquet(str(responses))
    written = spark.read.parquet(str(responses)).count()
    started = time.perf_counter()
    assert lift_job.main(["--responses", str(responses), *lake]) == 0
    figures["lift"] = {"responses": written, "seconds": round(time.perf_counter() - started, 1),
                       "rows": spark.read.format("delta").load(str(root / "audience_lift")).count()}
    return emit(figures, args.json)


if __name__ == "__main__":
    raise SystemExit(main())
