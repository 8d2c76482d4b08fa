"""`maintain` job: dead nights set aside, Delta tables compacted and vacuumed, old bundles and crashed staging removed."""

from __future__ import annotations

from jobs.common import exit_with
from jobs.common import main as run_job
from segmentation.maintain import run_maintain


def main(argv: list[str] | None = None) -> int:
    return run_job("maintain", run_maintain, argv)


if __name__ == "__main__":
    exit_with(main())
