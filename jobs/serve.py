"""`serve` job: a registered model checked whole against the registry, then served in real time.

    ./spark-submit.sh serve [--version N] [--port P]

No Spark: it reads the config, downloads the version (default: the champion), compares every
file's digest with the registry's and only then starts MLflow's scoring server on that copy.
"""

from __future__ import annotations

import argparse

from jobs.common import exit_with, load, parser
from segmentation.core import logs
from segmentation.core.errors import UNEXPECTED_EXIT_CODE, SegmentationError
from segmentation.serving import server


def main(argv: list[str] | None = None) -> int:
    log = logs.configure()
    p = parser("serve")
    p.add_argument("--version", type=int, default=None, help="registered version to serve (default: the champion)")
    p.add_argument("--port", type=int, default=None, help="port to listen on (default: serving.port)")
    args: argparse.Namespace = p.parse_args(argv)
    try:
        cfg, _ = load(args)
        return server.serve(cfg, args.version, args.port)
    except SegmentationError as exc:
        log.error("serve FAILED (%s): %s", type(exc).__name__, exc)
        return exc.exit_code
    except Exception:  # noqa: BLE001 - logged with its traceback, as every job does
        log.exception("serve FAILED with an unexpected error; exit %d", UNEXPECTED_EXIT_CODE)
        return UNEXPECTED_EXIT_CODE


if __name__ == "__main__":
    exit_with(main())
