"""`nightly` job: features -> train (if no model, or --retrain) -> score."""

from __future__ import annotations

from jobs.common import accept_night, exit_with, reshape
from jobs.common import main as run_job
from segmentation.nightly import run_nightly


def _retrain(parser) -> None:
    parser.add_argument("--retrain", action="store_true", help="train a new model even if one exists")
    parser.add_argument("--retrain-on-drift", action="store_true",
                        help="retrain before scoring when tonight's features drifted from the model's training sample")
    accept_night(parser)
    reshape(parser)


def main(argv: list[str] | None = None) -> int:
    return run_job("nightly", run_nightly, argv, extra_args=_retrain)


if __name__ == "__main__":
    exit_with(main())
