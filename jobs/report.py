"""`report` job: rebuild report.html and report.md of a model version (default: the champion); with
`--nights N`, the monitoring page over the last N published nights instead."""

from __future__ import annotations

import argparse
import sys

from jobs.common import exit_with
from jobs.common import main as run_job
from segmentation.report.stage import run_monitor, run_report


def _args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model-version", default=None,
                   help="the model whose report to rebuild (same as --set score.model_version=...)")
    p.add_argument("--nights", type=int, default=None, dest="monitor_nights", metavar="N",
                   help="draw the monitoring page over the last N published nights instead (monitor.nights)")


def _monitor(argv: list[str]) -> bool:
    return any(a == "--nights" or a.startswith("--nights=") for a in argv)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    return run_job("report", run_monitor if _monitor(argv) else run_report, argv, extra_args=_args)


if __name__ == "__main__":
    exit_with(main())
