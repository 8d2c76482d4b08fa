"""`generate` job: synthetic customers in the raw table's schema, written as Parquet or Delta;
with `--nights K`, nights 1..K of one population, each in its own folder (`OUTPUT/night=n`).
Never into the product's own tables, and with a `runs` row like every job.

It takes the shared job options (`--profile`, `--set`, `--conf-dir`, ... for the session) plus its
own, so it has a small main of its own instead of `common.main`, whose `run` sees no arguments.
"""

from __future__ import annotations

import argparse
import contextlib
import time
from pathlib import Path

from jobs import common
from segmentation.core import logs
from segmentation.core.errors import AccountingError, ArgumentError, SegmentationError
from segmentation.io import runs, tables
from segmentation.synthetic.generator import (
    GENERATED_TAG,
    ROWS_PER_PARTITION,
    WRITE_FORMATS,
    NightParams,
    generate_customers,
    night,
    night_path,
    night_size,
    write_customers,
)

# The generator's columns compile to one Java method over HotSpot's 8,000-byte JIT limit, so with
# Spark's default limit (64 KB) it runs as interpreted bytecode. At 8,000 Spark evaluates that stage
# without whole-stage codegen instead: 1M rows in about 11 s rather than 27 s on 2 cores.
HUGE_METHOD_LIMIT_KEY = "spark.sql.codegen.hugeMethodLimit"
HUGE_METHOD_LIMIT = "8000"


@contextlib.contextmanager
def compiled_for_generation(spark):
    """The session with the generator's codegen limit for the block, then its own setting back
    (a reused session: tests, notebooks, the benchmark)."""
    previous = spark.conf.get(HUGE_METHOD_LIMIT_KEY, None)
    spark.conf.set(HUGE_METHOD_LIMIT_KEY, HUGE_METHOD_LIMIT)
    try:
        yield spark
    finally:
        if previous is None:
            spark.conf.unset(HUGE_METHOD_LIMIT_KEY)
        else:
            spark.conf.set(HUGE_METHOD_LIMIT_KEY, previous)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--rows", type=int, required=True, help="number of customers to generate")
    p.add_argument("--seed", type=int, default=42, help="the same seed gives the same rows (default: 42)")
    p.add_argument("--output", required=True, help="path to write the table to (replaced if it exists)")
    p.add_argument("--format", choices=WRITE_FORMATS, default="parquet", help="parquet (default) or delta")
    p.add_argument("--partitions", type=int, default=None,
                   help=f"output partitions (default: one per {ROWS_PER_PARTITION:,} rows, "
                   "at least Spark's default parallelism)")
    d = NightParams()
    p.add_argument("--nights", type=int, default=None,
                   help="write nights 1..K of one population, each to OUTPUT/night=n (default: one table at OUTPUT)")
    p.add_argument("--movement", type=float, default=d.movement,
                   help=f"with --nights: day-over-day spread of balances and payments, sd of the log (default: {d.movement})")
    p.add_argument("--move-share", type=float, default=d.move_share,
                   help=f"with --nights: share of customers switching profile each night (default: {d.move_share})")
    p.add_argument("--departure-share", type=float, default=d.departure_share,
                   help=f"with --nights: share of customers leaving each night (default: {d.departure_share})")
    p.add_argument("--arrival-share", type=float, default=d.arrival_share,
                   help=f"with --nights: new customers each night, as a share of --rows (default: {d.arrival_share})")
    p.add_argument("--drift-from", type=int, default=None,
                   help="with --nights: from this night on, every money column times --drift-scale (default: no drift)")
    p.add_argument("--drift-scale", type=float, default=d.drift_scale,
                   help=f"with --drift-from: the factor (default: {d.drift_scale})")


def _night_params(args: argparse.Namespace) -> NightParams | None:
    """The nights' parameters with --nights, else None (one table, as before --nights existed)."""
    if args.nights is None:
        return None
    if args.nights < 1:
        raise ArgumentError(f"--nights must be 1 or more, got {args.nights}")
    return NightParams(movement=args.movement, move_share=args.move_share, departure_share=args.departure_share,
                       arrival_share=args.arrival_share, drift_from=args.drift_from, drift_scale=args.drift_scale)


def _write(spark, args: argparse.Namespace, path: str, df, expected: int, step: str) -> int:
    """Writes one table, counts it back, and fails the job if it does not hold the rows it should."""
    with compiled_for_generation(spark), logs.step(logs.get("generate"), step) as s:
        write_customers(df, path, args.format)
        s.rows = written = spark.read.format(args.format).load(path).count()
        s.detail = f"seed={args.seed} format={args.format} output={path}"
    if written != expected:
        raise AccountingError(f"generate: {path} should hold {expected} rows but holds {written}")
    return written


def main(argv: list[str] | None = None) -> int:
    """Generates and writes the table; returns the exit status, like every job.

    Like every job it leaves a `runs` row, and it refuses (`ProductTableError`) to write over
    the product's own tables: test data goes elsewhere.
    """
    log = logs.configure()
    p = common.parser("generate")
    add_arguments(p)
    args = p.parse_args(argv)
    start = time.perf_counter()
    output = args.output if "://" in args.output else str(Path(args.output).resolve())
    spark = cfg = run_date = None
    run_id, started_at, started = runs.new_run_id(), runs.utc_now(), False
    error: BaseException | None = None
    written = 0
    try:
        params = _night_params(args)
        cfg, run_date = common.load(args)
        spark = common.spark_session(cfg)
        started = common.audit("generate", runs.start, spark, cfg, run_id, run_date, "generate", started_at)
        paths = [output] if params is None else [output, *(night_path(output, n) for n in range(1, args.nights + 1))]
        for path in paths:
            tables.refuse_product_path(spark, cfg.tables, path, GENERATED_TAG)
        if params is None:
            written = _write(spark, args, output, generate_customers(spark, args.rows, args.seed, args.partitions),
                             args.rows, "generate customers")
        else:
            for n in range(1, args.nights + 1):
                expected = night_size(spark, args.rows, args.seed, n, params)
                df = night(spark, args.rows, args.seed, n, params, args.partitions)
                written += _write(spark, args, night_path(output, n), df, expected, f"generate night {n}")
    except SegmentationError as exc:
        error = exc
        log.error("generate FAILED (%s): %s", type(exc).__name__, exc)
        return exc.exit_code
    except BaseException as exc:
        error = exc
        raise
    finally:
        if spark is not None and cfg is not None and run_date is not None:
            common.audit("generate", runs.finish, spark, cfg, run_id, run_date, "generate", started_at,
                         {"rows_written": written}, error, started)
    log.info("generate OK: tables=%s rows=%d elapsed=%.1fs", output, written, time.perf_counter() - start)
    return 0


if __name__ == "__main__":
    common.exit_with(main())
