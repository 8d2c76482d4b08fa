"""`promote` job: point the registry's champion alias at a version, or roll it back."""

from __future__ import annotations

import argparse

from jobs.common import exit_with
from jobs.common import main as run_job
from segmentation.model import registry


def _args(p: argparse.ArgumentParser, required: bool = True) -> None:
    which = p.add_mutually_exclusive_group(required=required)
    which.add_argument("--version", type=int, help="registered version to make champion")
    which.add_argument("--previous", action="store_true", help="roll back to the champion before the current one")


def main(argv: list[str] | None = None) -> int:
    # The job's own parser checks the arguments (and answers --help); this one only reads them.
    own = argparse.ArgumentParser(add_help=False)
    _args(own, required=False)
    asked, _ = own.parse_known_args(argv)

    def run(spark, cfg, run_date):
        return registry.promote(cfg, asked.version, asked.previous)

    return run_job("promote", run, argv, extra_args=_args)


if __name__ == "__main__":
    exit_with(main())
