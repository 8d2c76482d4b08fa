"""`audiences` job: refresh a published night's audience tables (after a change of `audiences:`)."""

from __future__ import annotations

from jobs.common import exit_with
from jobs.common import main as run_job
from segmentation.downstream.publish import refresh_audiences


def main(argv: list[str] | None = None) -> int:
    return run_job("audiences", refresh_audiences, argv)


if __name__ == "__main__":
    exit_with(main())
