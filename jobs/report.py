"""`report` job: rebuild report.html and report.md of a model version (default: the champion)."""

from __future__ import annotations

import argparse

from jobs.common import exit_with
from jobs.common import main as run_job
from segmentation.report.stage import run_report


def _args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model-version", default=None,
                   help="the model whose report to rebuild (same as --set score.model_version=...)")


def main(argv: list[str] | None = None) -> int:
    return run_job("report", run_report, argv, extra_args=_args)


if __name__ == "__main__":
    exit_with(main())
