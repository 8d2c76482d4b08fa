"""The registered model as an MLflow pyfunc: one customer's raw columns in, its segment out.

It is what `mlflow models serve` answers with in real time. It applies the batch job's data
contract, the training night's imputation values and the same feature definitions
(`segmentation.serving.realtime`), then the same forest. Its bundle is checked against the digest
recorded when the model was saved before it is unpickled; the pyfunc itself is code
(`serving/entry.py`), not a pickle, so nothing is unpickled before that check.
"""

from __future__ import annotations

import gc
import tempfile
import warnings
from importlib import resources
from importlib.metadata import PackageNotFoundError, requires
from pathlib import Path
from typing import Any

import pandas as pd
from mlflow.models import ModelSignature
from mlflow.pyfunc import PythonModel
from mlflow.types import ColSpec, Schema

from segmentation.core.columns import ID_COLUMN, RAW_NUMERIC_COLUMNS
from segmentation.core.config import Config, ContractConfig
from segmentation.model import store

ENTRY = "serving/entry.py"  # inside the package copy
OUTPUT_COLUMNS = ["segment_id", "segment_name", "segment_confidence"]


class SegmentModel(PythonModel):
    """Raw customer rows -> CUST_ID, segment_id, segment_name, segment_confidence."""

    def load_context(self, context) -> None:
        settings = context.model_config
        folder = Path(context.artifacts["bundle"]).parent
        version = str(settings.get("bundle_version", "?"))
        self.bundle = store.load_path(folder, version, expected_sha256=settings["bundle_sha256"])
        self.contract = ContractConfig(**settings["contract"])
        self.nullable = list(settings["nullable"])
        self.ratio_epsilon = float(settings["ratio_epsilon"])
        self.bundle.forest.n_jobs = 1  # one request, one thread: no pool to start per call
        # The model's objects live as long as the server: out of the collector's way, a full
        # collection no longer walks every tree node's Python object mid-request (the p99).
        gc.collect()
        gc.freeze()

    def predict(self, context, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
        from mlflow.exceptions import MlflowException
        from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

        from segmentation.core.errors import InputError
        from segmentation.serving import realtime

        frame = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
        try:
            # MLflow's schema enforcement turns a JSON null into NaN, and JSON has no NaN: here a NaN is a gap.
            return realtime.assign(self.bundle, frame, self.contract, self.nullable, self.ratio_epsilon,
                                   nan_is_missing=True)
        except InputError as exc:  # the caller's data: a 400 that names the rule, not a 500
            raise MlflowException(f"{type(exc).__name__}: {exc}", error_code=INVALID_PARAMETER_VALUE) from None


def signature(nullable: list[str]) -> ModelSignature:
    """The raw table's columns in; the segment out. Imputed columns may be left out or null."""
    inputs = Schema([ColSpec("string", ID_COLUMN),
                     *[ColSpec("double", c, required=c not in nullable) for c in RAW_NUMERIC_COLUMNS]])
    outputs = Schema([ColSpec("string", ID_COLUMN), ColSpec("long", "segment_id"),
                      ColSpec("string", "segment_name"), ColSpec("double", "segment_confidence")])
    return ModelSignature(inputs=inputs, outputs=outputs)


def requirements() -> list[str]:
    """What a serving environment installs: the package's own pinned requirements, and MLflow."""
    import mlflow

    try:
        pinned = [r for r in requires("segmentation") or [] if "extra ==" not in r]
    except PackageNotFoundError:
        pinned = []
    return [*pinned, f"mlflow=={mlflow.__version__}"]


def save_model(path: Path, folder: Path, cfg: Config) -> None:
    """Writes the pyfunc of the bundle in `folder` to `path`, with this package as its code."""
    import mlflow

    nullable = list(cfg.imputation.columns)
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        # No input example: MLflow would load and run the model to check it, on every train.
        warnings.filterwarnings("ignore", message=".*input example was not provided.*")
        code = _package_copy(Path(tmp))
        _save(mlflow, path, folder, cfg, nullable, code)


def _package_copy(into: Path) -> Path:
    """This package's modules, every subpackage's too, as plain files: under spark-submit they
    are read from a zip, and the served model imports them from its own `code/` folder."""
    package = into / "segmentation"
    _copy_modules(resources.files("segmentation"), package)
    return package


def _copy_modules(source, target: Path) -> None:
    target.mkdir()
    for item in source.iterdir():
        if item.is_dir() and item.joinpath("__init__.py").is_file():
            _copy_modules(item, target / item.name)
        elif item.name.endswith(".py"):
            (target / item.name).write_bytes(item.read_bytes())


def _save(mlflow, path: Path, folder: Path, cfg: Config, nullable: list[str], code: Path) -> None:
    mlflow.pyfunc.save_model(
        path=str(path),
        python_model=str(code / ENTRY),
        artifacts={
            "bundle": str(folder / store.BUNDLE_FILE),
            "manifest": str(folder / store.MANIFEST_FILE),
        },
        model_config={
            "bundle_version": folder.name,
            "bundle_sha256": store.digest_of(folder),
            "contract": cfg.contract.model_dump(),
            "nullable": nullable,
            "ratio_epsilon": cfg.features.ratio_epsilon,
        },
        signature=signature(nullable),
        pip_requirements=requirements(),
        code_paths=[str(code)],
    )
