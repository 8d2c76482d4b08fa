"""`train` job: features sample -> clustering comparison -> forest -> saved model bundle."""

from __future__ import annotations

from jobs.common import exit_with, main as run_job
from segmentation.pipeline import run_train


def main(argv: list[str] | None = None) -> int:
    return run_job("train", run_train, argv)


if __name__ == "__main__":
    exit_with(main())
