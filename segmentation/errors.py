"""Named errors: each says what is wrong in words a data engineer can act on.

Jobs map every `SegmentationError` to a one-line message and a non-zero exit code,
so bad input never surfaces as a stack trace from deep inside Spark.
"""


class SegmentationError(Exception):
    """Base class; `exit_code` is what the job returns to the scheduler."""

    exit_code = 1


class ConfigError(SegmentationError):
    """Config file, profile or `--set` override is missing, unknown or of the wrong type."""

    exit_code = 2


class ArgumentError(SegmentationError):
    """A command-line value (date, table name, path) that does not parse."""

    exit_code = 2


class InputError(SegmentationError):
    """The raw customer table is missing, empty or lacks a required column."""

    exit_code = 3


class FeaturesNotFoundError(SegmentationError):
    """Scoring or training asked for a run date the features job has not written."""

    exit_code = 3


class ModelError(SegmentationError):
    """The model bundle is missing, tampered with, truncated or does not fit the features."""

    exit_code = 4


class TrainingError(SegmentationError):
    """Training produced no model fit to save (no usable clustering, poor surrogate)."""

    exit_code = 5


class AccountingError(SegmentationError):
    """Rows read do not equal rows written plus rows quarantined."""

    exit_code = 6


class ConcurrentRunError(SegmentationError):
    """Another run changed the same table partition at the same time; this run's write lost."""

    exit_code = 7
