"""One log line per step, with rows and seconds, and a one-line job summary."""

from __future__ import annotations

import logging
import sys
import time
from contextlib import contextmanager
from typing import Iterator

from segmentation.core import redact

LOGGER_NAME = "segmentation"


def configure(level: str = "INFO") -> logging.Logger:
    logger = logging.getLogger(LOGGER_NAME)
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(RedactingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logger.addHandler(handler)
        logger.propagate = False
    logger.setLevel(level)
    return logger


class RedactingFormatter(logging.Formatter):
    """Every line, tracebacks included, without a URI's user-info or secret query parameters
    (`redact.text`): an error quoting a tracking URI must not put its password in the log."""

    def format(self, record: logging.LogRecord) -> str:
        return redact.text(super().format(record))


def get(stage: str) -> logging.Logger:
    return logging.getLogger(f"{LOGGER_NAME}.{stage}")


class Step:
    """Mutable record a step fills in (rows) before its line is logged."""

    def __init__(self) -> None:
        self.rows: int | None = None
        self.detail: str = ""


@contextmanager
def step(log: logging.Logger, name: str) -> Iterator[Step]:
    record = Step()
    start = time.perf_counter()
    yield record
    seconds = time.perf_counter() - start
    rows = "" if record.rows is None else f" rows={record.rows}"
    detail = f" {record.detail}" if record.detail else ""
    log.info("%s:%s seconds=%.2f%s", name, rows, seconds, detail)
