"""What a later night on the bundled data costs against its floor, launched as a user launches it.

    python -m benchmarks.fixed_costs [--pairs 3] [--json fixed.json]

Trains on a first night (`./spark-submit.sh nightly`, not timed against anything), then times
rounds in turn on the same machine: the floor (a spark-submit with the same Spark, Delta jars and
settings that reads the bundled CSV and writes one Delta table: `benchmarks/floor_job.py`) and a
later night (`./spark-submit.sh nightly` for the next date on the same lake). Prints wall seconds,
the ratio of each pair, and the later night's own breakdown: its logged steps, and the time before
its first log line (launcher, JVM, session) and between steps (bookkeeping, reads, Python).
With `--baseline CHECKOUT`, another version's later night joins each round, on its own lake.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.metadata
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from benchmarks import emit

PROJECT = Path(__file__).resolve().parents[1]
FIRST = dt.date(2026, 11, 1)
STEP = re.compile(r"^(\S+ \S+) INFO segmentation\.(\w+): ([^:]+): .*?\bseconds=([\d.]+)")
STAMP = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) ")


def _lake(work: Path) -> list[str]:
    return ["--set", f"tables.root={work / 'lake'}", "--set", f"tables.models_dir={work / 'lake' / 'models'}"]


def _floor_command(work: Path, round_no: int) -> list[str]:
    """spark-submit as `spark-submit.sh` runs it locally: recorded Delta jars, the same settings;
    a new table each round, so no round pays for an earlier one's history."""
    version = importlib.metadata.version("delta-spark")
    jars = (PROJECT / "build" / f"delta-jars-{version}.txt").read_text().strip()
    submit = PROJECT / ".venv" / "bin" / "spark-submit"
    return [str(submit if submit.exists() else "spark-submit"), "--master", "local[*]", "--jars", jars,
            "--conf", "spark.sql.extensions=io.delta.sql.DeltaSparkSessionExtension",
            "--conf", "spark.sql.catalog.spark_catalog=org.apache.spark.sql.delta.catalog.DeltaCatalog",
            "--conf", "spark.ui.showConsoleProgress=false", "--conf", "spark.sql.session.timeZone=UTC",
            "--driver-java-options", f"-Dlog4j2.configurationFile=file:{PROJECT / 'conf' / 'log4j2.properties'}",
            str(PROJECT / "benchmarks" / "floor_job.py"), str(PROJECT / "data" / "CC_GENERAL.csv"),
            str(work / f"floor_table_{round_no}")]


def _timed(command: list[str], log: Path) -> tuple[float, float]:
    """(wall seconds, the epoch second it started); a failed command stops the benchmark."""
    started = time.time()
    begin = time.perf_counter()
    with log.open("w") as out:
        # The driver's Python, as spark-submit.sh sets it (spark-submit finds Spark through it).
        env = {"PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable, **os.environ}
        done = subprocess.run(command, cwd=PROJECT, stdout=out, stderr=subprocess.STDOUT, env=env)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command[:3])} ... failed ({done.returncode}); see {log}")
    return time.perf_counter() - begin, started


def _breakdown(log: Path, started: float, wall: float) -> dict:
    """The night's logged steps (seconds each), and the time outside them."""
    steps: dict[str, float] = {}
    stamps = []
    for line in log.read_text(errors="replace").splitlines():
        if m := STAMP.match(line):
            stamps.append(dt.datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp())
        if m := STEP.match(line):
            name = f"{m.group(2)}: {m.group(3)}"
            steps[name] = round(steps.get(name, 0.0) + float(m.group(4)), 2)
    # Log stamps are naive local time, and .timestamp() reads them as such: the launch's clock.
    before_first = (stamps[0] - started) if stamps else None
    in_steps = sum(steps.values())
    return {"steps": steps, "before_first_log_line_s": round(before_first, 2) if before_first is not None else None,
            "in_logged_steps_s": round(in_steps, 2),
            "outside_steps_s": round(wall - in_steps - (before_first or 0.0), 2)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="benchmarks.fixed_costs", description=__doc__.splitlines()[0])
    p.add_argument("--pairs", type=int, default=3)
    p.add_argument("--workdir", type=Path, default=Path("/tmp/segmentation-fixed-costs"))
    p.add_argument("--json", type=Path, default=None)
    p.add_argument("--set", action="append", default=[], dest="overrides", help="passed to every night")
    p.add_argument("--baseline", type=Path, default=None,
                   help="a checkout of another version (with its .venv): its later nights run beside ours, "
                        "on a lake of their own, in the same rounds")
    args = p.parse_args(argv)
    shutil.rmtree(args.workdir, ignore_errors=True)
    args.workdir.mkdir(parents=True)
    extra = [a for kv in args.overrides for a in ("--set", kv)]

    def night(date: dt.date, checkout: Path = PROJECT, lake: Path = args.workdir) -> list[str]:
        return [str(checkout / "spark-submit.sh"), "nightly", "--run-date", date.isoformat(), *_lake(lake), *extra]

    baseline_lake = args.workdir / "baseline"
    first_s, _ = _timed(night(FIRST), args.workdir / "night-1.log")  # also records Delta's jars
    if args.baseline:
        _timed(night(FIRST, args.baseline, baseline_lake), args.workdir / "baseline-night-1.log")
    pairs = []
    for i in range(args.pairs):
        date = FIRST + dt.timedelta(days=i + 1)
        logs = {"floor": args.workdir / f"floor-{i + 1}.log", "night": args.workdir / f"night-{i + 2}.log",
                "baseline": args.workdir / f"baseline-night-{i + 2}.log"}
        order = ["floor", "night"] + (["baseline"] if args.baseline else [])
        order = order[i % len(order):] + order[:i % len(order)]  # none always goes first
        times = {}
        for which in order:
            command = {"floor": lambda: _floor_command(args.workdir, i + 1), "night": lambda: night(date),
                       "baseline": lambda: night(date, args.baseline, baseline_lake)}[which]()
            times[which] = _timed(command, logs[which])
        wall, started = times["night"]
        pair = {"run_date": date.isoformat(), "floor_s": round(times["floor"][0], 2),
                "later_night_s": round(wall, 2), "ratio": round(wall / times["floor"][0], 2),
                **_breakdown(logs["night"], started, wall)}
        if args.baseline:
            base_wall, base_started = times["baseline"]
            pair["baseline"] = {"later_night_s": round(base_wall, 2),
                                "ratio": round(base_wall / times["floor"][0], 2),
                                **_breakdown(logs["baseline"], base_started, base_wall)}
        pairs.append(pair)
    ratios = [x["ratio"] for x in pairs]
    figures = {
        "date": dt.date.today().isoformat(), "cores": os.cpu_count(), "first_night_s": round(first_s, 2),
        "pairs": pairs, "median_floor_s": round(statistics.median(x["floor_s"] for x in pairs), 2),
        "median_later_night_s": round(statistics.median(x["later_night_s"] for x in pairs), 2),
        "median_ratio": round(statistics.median(ratios), 2), "target_ratio": 2.0,
        **({"baseline": str(args.baseline),
            "baseline_median_later_night_s": round(statistics.median(x["baseline"]["later_night_s"] for x in pairs), 2),
            "baseline_median_ratio": round(statistics.median(x["baseline"]["ratio"] for x in pairs), 2)}
           if args.baseline else {}),
        "load_average": [round(v, 2) for v in os.getloadavg()],
    }
    return emit(figures, args.json)


if __name__ == "__main__":
    raise SystemExit(main())
