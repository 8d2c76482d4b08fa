"""`forget` job: the customers listed in `--ids PATH` (a CUST_ID column) removed from every product table."""

from __future__ import annotations

import argparse
import sys

from jobs.common import exit_with
from jobs.common import main as run_job
from segmentation.io.forget import forget


def _args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--ids", required=True,
                   help="CSV, Parquet or Delta path, or table, with a CUST_ID column: the customers to erase")


def main(argv: list[str] | None = None) -> int:
    # The shared parser validates --ids (and answers --help); this one only hands it to the library.
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--ids", default=None)
    known, _ = p.parse_known_args(sys.argv[1:] if argv is None else argv)

    def run(spark, cfg, run_date):
        summary = forget(spark, cfg, known.ids)
        for table, rows in summary["deleted"].items():
            print(f"{table}\t{rows}")  # rows deleted per table, for the operator's record
        return summary

    return run_job("forget", run, argv, extra_args=_args)


if __name__ == "__main__":
    exit_with(main())
