"""`lift` job: campaign responses against each audience's holdout -> `audience_lift` and its page."""

from __future__ import annotations

import argparse
import sys

from jobs.common import exit_with
from jobs.common import main as run_job
from segmentation.campaign.stage import run_lift


def _args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--responses", required=True,
                   help="CSV, Parquet or Delta path, or table: CUST_ID, audience, responded (0/1), response_date, "
                        "optional value")


def main(argv: list[str] | None = None) -> int:
    # The shared parser validates --responses (and answers --help); this one only hands it to the stage.
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--responses", default=None)
    known, _ = p.parse_known_args(sys.argv[1:] if argv is None else argv)
    return run_job("lift", lambda spark, cfg, run_date: run_lift(spark, cfg, known.responses), argv, extra_args=_args)


if __name__ == "__main__":
    exit_with(main())
