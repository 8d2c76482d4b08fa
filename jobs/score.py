"""`score` job: features partition -> broadcast forest -> Delta `segments` partition."""

from __future__ import annotations

from jobs.common import exit_with
from jobs.common import main as run_job
from segmentation.score.stage import run_score


def main(argv: list[str] | None = None) -> int:
    return run_job("score", run_score, argv)


if __name__ == "__main__":
    exit_with(main())
