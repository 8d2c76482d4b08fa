"""`generate` job: synthetic customers in the raw table's schema, written as Parquet or Delta.

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
from segmentation.core.errors import AccountingError, SegmentationError
from segmentation.synthetic.generator import ROWS_PER_PARTITION, WRITE_FORMATS, generate_customers, write_customers

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


def main(argv: list[str] | None = None) -> int:
    """Generates and writes the table; returns the exit status, like every job."""
    log = logs.configure()
    p = common.parser("generate")
    add_arguments(p)
    args = p.parse_args(argv)
    start = time.perf_counter()
    output = args.output if "://" in args.output else str(Path(args.output).resolve())
    try:
        cfg, _ = common.load(args)
        spark = common.spark_session(cfg)
        with compiled_for_generation(spark), logs.step(logs.get("generate"), "generate customers") as s:
            write_customers(generate_customers(spark, args.rows, args.seed, args.partitions), output, args.format)
            s.rows = written = spark.read.format(args.format).load(output).count()
            s.detail = f"seed={args.seed} format={args.format} output={output}"
        if written != args.rows:
            raise AccountingError(f"generate: asked for {args.rows} rows but {output} holds {written}")
    except SegmentationError as exc:
        log.error("generate FAILED (%s): %s", type(exc).__name__, exc)
        return exc.exit_code
    log.info("generate OK: tables=%s rows=%d elapsed=%.1fs", output, written, time.perf_counter() - start)
    return 0


if __name__ == "__main__":
    common.exit_with(main())
