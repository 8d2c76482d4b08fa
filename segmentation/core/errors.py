"""Named errors: each says what is wrong in words a data engineer can act on.

Jobs map every `SegmentationError` to a one-line message and a non-zero exit code,
so bad input never surfaces as a stack trace from deep inside Spark. Anything else that ends
a job (a Spark or Py4J error, an executor's Python error, an `OSError`) is unexpected: it exits
with `UNEXPECTED_EXIT_CODE` and its traceback goes to the log.
"""

from __future__ import annotations

import re

# Not a SegmentationError: a bug, or a failure of something outside the product.
UNEXPECTED_EXIT_CODE = 8


class SegmentationError(Exception):
    """Base class; `exit_code` is what the job returns to the scheduler."""

    exit_code = 1


class ConfigError(SegmentationError):
    """Config file, profile or `--set` override is missing, unknown, of the wrong type or out of range."""

    exit_code = 2


class AudienceError(ConfigError):
    """An audience the night cannot build: a segment id the scoring model does not have, or a
    suppression list without `CUST_ID`s. The message names the audience."""


class ArgumentError(SegmentationError):
    """A command-line value (date, table name, path) that does not parse."""

    exit_code = 2


class ProductTableError(ArgumentError):
    """An output path that is one of the product's own tables (or holds them, or any Delta table):
    `generate` writes test data and must never overwrite what the product owns."""


class InputError(SegmentationError):
    """The raw customer table is missing, empty or lacks a required column."""

    exit_code = 3


class FeaturesNotFoundError(SegmentationError):
    """Scoring or training asked for a run date the features job has not written."""

    exit_code = 3


class NonFiniteFeatureError(InputError):
    """A features row holds NaN, an infinity or a value beyond float32: scoring it would be a guess."""


class ContractViolationError(InputError):
    """A customer sent for real-time scoring breaks the data contract; the batch job would quarantine it.

    `violations` holds (row of the request, CUST_ID, rule names) for a server to answer with.
    """

    def __init__(self, message: str, violations: list[tuple[int, str | None, list[str]]] | None = None):
        super().__init__(message)
        self.violations = violations or []


class NightGuardError(InputError):
    """Tonight's input differs from the last published night past a guard threshold (half the
    customers, re-keyed ids, money in cents): refused before anything is written."""

    exit_code = 9


class ModelError(SegmentationError):
    """The model bundle is missing, tampered with, truncated or does not fit the features."""

    exit_code = 4


class LibraryMismatchError(ModelError):
    """The scikit-learn or numpy where the bundle is unpickled differs from the one it was trained with."""


class RegistryError(ModelError):
    """The MLflow tracking or registry store could not be read or written."""


class ModelIntegrityError(ModelError):
    """A registered model's files do not match the whole-model digest the registry recorded for
    it, or no digest was recorded: it is not served, and none of its code is imported."""


class RegistryMissingError(RegistryError):
    """A lake that has had a model registry finds none (deleted, emptied or turned off): scoring
    would fall back to `LATEST`, checked only against the manifest beside the pickle."""


class TrainingError(SegmentationError):
    """Training produced no model fit to save (no usable clustering, poor surrogate)."""

    exit_code = 5


class AccountingError(SegmentationError):
    """Rows read do not equal rows written plus rows quarantined."""

    exit_code = 6


class ConcurrentRunError(SegmentationError):
    """Another run changed the same table partition at the same time; this run's write lost."""

    exit_code = 7


class RunCancelled(SegmentationError):
    """The job was told to stop (SIGTERM from a scheduler or cluster manager, SIGINT from Ctrl-C).

    Its exit code follows the shell's rule for a process ended by a signal: 128 + the signal's
    number, so 143 for SIGTERM and 130 for SIGINT; the run still records its end.
    """

    exit_code = 143  # SIGTERM's; an instance carries 128 + its own signal's number

    def __init__(self, message: str, signum: int = 15):
        super().__init__(message)
        self.signum = signum
        self.exit_code = 128 + signum


def _named_classes() -> dict[str, type[SegmentationError]]:
    found: dict[str, type[SegmentationError]] = {}
    todo = [SegmentationError]
    while todo:
        cls = todo.pop()
        found[cls.__name__] = cls
        todo.extend(cls.__subclasses__())
    return found


# The last line of a Python traceback: "[module.]ClassName: message".
_EXCEPTION_LINE = re.compile(r"^(?:[A-Za-z_][\w.]*\.)?([A-Za-z_]\w*): (.*)$")


def from_executor(exc: BaseException) -> SegmentationError | None:
    """The named error a Python worker raised, rebuilt on the driver from Spark's error text.

    An executor's exception reaches the driver as text (a `PythonException` or a Java error
    that quotes the Python traceback); the last traceback line naming one of our classes is
    the error the worker meant, with its message.
    """
    named = _named_classes()
    for line in reversed(str(exc).splitlines()):
        match = _EXCEPTION_LINE.match(line.strip())
        if match and match.group(1) in named:
            return named[match.group(1)](match.group(2))
    return None
