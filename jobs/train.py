"""`train` job: features sample -> clustering comparison -> forest -> saved model bundle."""

from __future__ import annotations

from jobs.common import exit_with, reshape
from jobs.common import main as run_job
from segmentation.train.stage import run_train


def main(argv: list[str] | None = None) -> int:
    return run_job("train", run_train, argv, extra_args=reshape)


if __name__ == "__main__":
    exit_with(main())
