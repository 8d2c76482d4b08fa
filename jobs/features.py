"""`features` job: raw customers -> Delta `features` partition for the run date."""

from __future__ import annotations

from jobs.common import accept_night, exit_with
from jobs.common import main as run_job
from segmentation.features.stage import run_features_for_scoring


def main(argv: list[str] | None = None) -> int:
    return run_job("features", run_features_for_scoring, argv, extra_args=accept_night)


if __name__ == "__main__":
    exit_with(main())
