"""A lake of real nights, built cheaply: the generator's nights of one small population, each
through the jobs' entry points, the first training a model with a one-candidate grid.

A night runs as one `nightly` (one session, one pair of `runs` rows: about a sixth cheaper
than two jobs), except the last `split` nights, which run `features` then `score` as two
jobs, as on Databricks where each is a task, so `runs` holds both kinds of row.

    from lake_of_nights import build_lake  # tests/ is on sys.path under pytest
    root, dates, timings = build_lake(spark, tmp_path, nights=4)
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

from conftest import TEST_SESSION
from pyspark.sql import functions as F

from jobs import features as features_job
from jobs import generate as generate_job
from jobs import nightly as nightly_job
from jobs import score as score_job
from segmentation.synthetic.generator import NightParams, night, night_path

ROWS = 300
SEED = 11
FIRST = dt.date(2026, 9, 1)
SMALL_TRAIN = ["--set", "train.clustering.algorithms=[kmeans]", "--set", "train.clustering.kmeans.k=[4]",
               "--set", "train.clustering.stability.resamples=0", "--set", "train.explain.report=false",
               "--set", "registry.enabled=false"]


def lake_args(root: Path) -> list[str]:
    return ["--set", f"tables.root={root}", "--set", f"tables.models_dir={root / 'models'}", *TEST_SESSION,
            "--set", "registry.enabled=false"]


def _write_nights(spark, folder: Path, nights: int, params: NightParams, bad: dict[int, int]) -> None:
    """Each night in a small write of its own (`folder/night=n`, as `generate --nights` lays them
    out: one union of thirty nights' plans took minutes to plan); night n gets `bad[n]` rows with a
    negative BALANCE, which the contract quarantines."""
    with generate_job.compiled_for_generation(spark):
        for n in range(1, nights + 1):
            df = night(spark, ROWS, SEED, n, params, partitions=1)
            if bad.get(n):
                broken = df.limit(bad[n]).withColumn("CUST_ID", F.concat(F.lit("BAD"), F.col("CUST_ID"))) \
                    .withColumn("BALANCE", F.lit(-1.0))
                df = df.unionByName(broken)
            df.coalesce(1).write.mode("overwrite").parquet(night_path(str(folder), n))


def build_lake(spark, work: Path, nights: int, params: NightParams | None = None,
               bad: dict[int, int] | None = None, split: int = 1) -> tuple[Path, list[dt.date], dict[str, float]]:
    """The lake under `work/lake` after `nights` nights, the last `split` of them as `features` and
    `score` runs (at least one night `nightly` runs first, to train); returns the lake, the run
    dates and the seconds spent."""
    params = params or NightParams(move_share=0.03, departure_share=0.01, arrival_share=0.01)
    root, inputs = work / "lake", work / "nights"
    timings: dict[str, float] = {}
    started = time.perf_counter()
    _write_nights(spark, inputs, nights, params, bad or {})
    timings["generate"] = time.perf_counter() - started
    dates = [FIRST + dt.timedelta(days=i) for i in range(nights)]
    for n, date in enumerate(dates, start=1):
        args = ["--run-date", date.isoformat(), "--input", night_path(str(inputs), n), *lake_args(root)]
        started = time.perf_counter()
        if n == 1 or n <= nights - split:
            assert nightly_job.main([*args, *SMALL_TRAIN]) == 0, f"nightly of night {n}"
        else:
            assert features_job.main(args) == 0, f"features of night {n}"
            assert score_job.main(args) == 0, f"score of night {n}"
        timings[date.isoformat()] = time.perf_counter() - started
    return root, dates, timings
