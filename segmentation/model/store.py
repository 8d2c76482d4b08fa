"""The versioned model bundle and the folder that stores it.

A bundle is a pickle, and unpickling runs code: `save` records its sha256 in a manifest and
`load` refuses bytes that do not match, so only bundles this product wrote are ever opened.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import os
import pickle
import platform
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from segmentation.core.errors import LibraryMismatchError, ModelError, NonFiniteFeatureError

BUNDLE_FILE = "bundle.pkl"
MANIFEST_FILE = "manifest.json"
METRICS_FILE = "metrics.json"
LATEST_FILE = "LATEST"
FORMAT_VERSION = 1


@dataclass
class ModelBundle:
    """Everything scoring needs, fitted together on one sample."""

    version: str
    feature_columns: list[str]
    preprocessor: Any
    forest: Any
    segment_names: dict[int, str]
    imputation: dict[str, float]
    metrics: dict[str, Any]
    library_versions: dict[str, str] = field(default_factory=dict)
    trained_on: str = ""
    format_version: int = FORMAT_VERSION
    # What the segments mean (None in bundles saved before personas existed): the clustering
    # space, the personas' descriptions, the profiles and the drivers, as written to their tables.
    clustering_space: Any = None
    segment_descriptions: dict[int, str] | None = None
    profiles: pd.DataFrame | None = None
    drivers_global: pd.DataFrame | None = None
    drivers_segment: pd.DataFrame | None = None
    # Stable ids: the first id never issued by this model's lineage, and how it was matched.
    next_segment_id: int | None = None
    lineage: list[dict] | None = None
    # Drift: per feature, bin edges at the training sample's quantiles and each bin's share.
    drift_reference: dict[str, dict[str, list[float]]] | None = None

    @property
    def classes(self) -> list[int]:
        return [int(c) for c in self.forest.classes_]

    def predict(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """(segment_id, confidence) per row, confidence being the winning class probability.

        The forest reads the engineered features as they are: trees split on order, which the
        monotone log and scaling do not change, so scoring skips the transform altogether.
        """
        return self.predict_matrix(frame[self.feature_columns].to_numpy(dtype=np.float32))

    def predict_matrix(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """As `predict`, for a matrix whose columns are `feature_columns` in order."""
        proba = forest_proba(self.forest, X)
        best = proba.argmax(axis=1)
        return self.forest.classes_[best].astype(np.int32), proba[np.arange(len(best)), best]


def forest_proba(forest: Any, X: np.ndarray) -> np.ndarray:
    """`forest.predict_proba(X)` with one thread, bit for bit, without its per-call overhead.

    scikit-learn's forest validates X, starts its parallel dispatch and calls each tree's
    `predict_proba`, which validates again: for one customer that is 1.2 ms around 0.07 ms of
    tree walking. This sums the trees' leaf fractions in estimator order into float64 and divides
    by the number of trees, the arithmetic `predict_proba` does with `n_jobs=1`, so the answer is
    identical (`tests/test_scoring.py` holds it to that). Other estimators use their own method.
    """
    from sklearn.ensemble import RandomForestClassifier

    if not isinstance(forest, RandomForestClassifier) or forest.n_outputs_ != 1:
        return forest.predict_proba(X)
    X = forest._validate_X_predict(X)
    proba = np.zeros((X.shape[0], forest.n_classes_), dtype=np.float64)
    for tree in forest.estimators_:
        proba += tree.tree_.predict(X)[:, : tree.n_classes_]
    proba /= len(forest.estimators_)
    return proba


def library_versions() -> dict[str, str]:
    import pyspark
    import sklearn

    return {
        "python": platform.python_version(),
        "scikit-learn": sklearn.__version__,
        "numpy": np.__version__,
        "pandas": pd.__version__,
        "pyspark": pyspark.__version__,
    }


def new_version(now: dt.datetime | None = None) -> str:
    now = now or dt.datetime.now(dt.timezone.utc)
    return f"{now:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:6]}"


def save(
    bundle: ModelBundle, models_dir: str, usable: bool = True, extras: Callable[[Path], None] | None = None,
) -> Path:
    """Writes bundle, manifest and metrics into a new folder, then moves LATEST to it.

    The folder appears whole (written aside, then renamed) and LATEST changes by an atomic
    rename, so a crash mid-save leaves the previous model current. An unusable model is kept
    for inspection but never becomes LATEST, and `load` refuses it. `extras` writes more files
    (the report) into the folder before it appears.
    """
    root = Path(models_dir)
    root.mkdir(parents=True, exist_ok=True)
    final = root / bundle.version
    staging = root / f".{bundle.version}.tmp"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    payload = pickle.dumps(bundle, protocol=pickle.HIGHEST_PROTOCOL)
    (staging / BUNDLE_FILE).write_bytes(payload)
    manifest = {
        "version": bundle.version,
        "format_version": bundle.format_version,
        "sha256": hashlib.sha256(payload).hexdigest(),
        "bytes": len(payload),
        "feature_columns": bundle.feature_columns,
        "classes": bundle.classes,
        "segment_names": {str(k): v for k, v in bundle.segment_names.items()},
        "library_versions": bundle.library_versions,
        "trained_on": bundle.trained_on,
        "usable": usable,
    }
    (staging / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2))
    (staging / METRICS_FILE).write_text(json.dumps(bundle.metrics, indent=2, default=float))
    if extras is not None:
        extras(staging)
    os.replace(staging, final)
    if not usable:
        return final
    pointer = root / f".{LATEST_FILE}.tmp"
    pointer.write_text(bundle.version + "\n")
    os.replace(pointer, root / LATEST_FILE)
    return final


def folder(models_dir: str, version: str = "") -> Path:
    """The folder of `version` (default: the latest), whether or not the model is usable."""
    version = version or latest(models_dir) or ""
    if not version:
        raise ModelError(f"no model in {models_dir}: run the train job first")
    path = Path(models_dir) / version
    if "/" in version or version.startswith(".") or not path.is_dir():
        raise ModelError(f"model version {version!r} not found in {models_dir}")
    return path


def manifest_classes(models_dir: str, version: str) -> list[int]:
    """The segment ids a saved model's manifest lists ([] when unreadable)."""
    try:
        return [int(c) for c in json.loads((folder(models_dir, version) / MANIFEST_FILE).read_text())["classes"]]
    except (ModelError, OSError, ValueError, KeyError, TypeError):
        return []


def latest(models_dir: str) -> str | None:
    pointer = Path(models_dir) / LATEST_FILE
    if not pointer.is_file():
        return None
    return pointer.read_text().strip() or None


def load(models_dir: str, version: str = "") -> ModelBundle:
    """The bundle `version` (default: the latest), checked against its manifest before unpickling."""
    path = folder(models_dir, version)
    return load_path(path, path.name)


def load_path(path: Path, version: str, expected_sha256: str | None = None) -> ModelBundle:
    """The bundle in folder `path`, refused unless its bytes match the manifest's digest (and
    `expected_sha256`, a digest recorded elsewhere, such as the registry) before anything is unpickled."""
    try:
        manifest = json.loads((path / MANIFEST_FILE).read_text())
        payload = (path / BUNDLE_FILE).read_bytes()
    except (OSError, ValueError) as exc:
        raise ModelError(f"model {version} is unreadable: {exc}") from None
    digest = hashlib.sha256(payload).hexdigest()
    recorded = [(manifest.get("sha256"), "its manifest")]
    if expected_sha256 is not None:
        recorded.append((expected_sha256, "the digest recorded at registration"))
    for expected, where in recorded:
        if digest != expected:
            raise ModelError(
                f"model {version}: bundle.pkl sha256 {digest[:12]}... does not match {where} "
                f"({str(expected)[:12]}...); refusing to load a modified or truncated bundle"
            )
    if manifest.get("usable") is False:
        raise ModelError(f"model {version} failed its quality checks at training and is not usable")
    _check_compatible(manifest, version)
    return unpickle(payload, version)


def digest_of(path: Path) -> str:
    """The sha256 of the bundle in folder `path`, as its manifest records it."""
    return str(json.loads((path / MANIFEST_FILE).read_text())["sha256"])


# Where the classes of bundles saved by the flat package (0.1.0) live now: a pickle names each
# class by its module path, and those paths moved into the stage subpackages.
LEGACY_MODULES = {
    "segmentation.bundle": "segmentation.model.store",
    "segmentation.preprocessing": "segmentation.train.preprocessing",
}


class _Unpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        return super().find_class(LEGACY_MODULES.get(module, module), name)


def loads(payload: bytes) -> Any:
    """`pickle.loads` that also reads bundles saved before the package's layout changed."""
    return _Unpickler(io.BytesIO(payload)).load()


def unpickle(payload: bytes, version: str) -> ModelBundle:
    """Only for bytes whose digest was checked: unpickling runs code."""
    try:
        bundle = loads(payload)
    except Exception as exc:  # the bytes matched but this environment cannot rebuild them
        raise ModelError(f"model {version} cannot be loaded here: {type(exc).__name__}: {exc}") from None
    if not isinstance(bundle, ModelBundle):
        raise ModelError(f"model {version}: bundle.pkl does not hold a ModelBundle")
    return bundle


def _check_compatible(manifest: dict[str, Any], version: str) -> None:
    if manifest.get("format_version") != FORMAT_VERSION:
        raise ModelError(
            f"model {version} has bundle format {manifest.get('format_version')}, this code reads {FORMAT_VERSION}"
        )
    check_libraries(manifest.get("library_versions", {}), version, where="this environment")


# How much of a version must match for a pickle to be read back as it was written: scikit-learn
# changes its estimators' internals between minor versions (the tree node layout changed in 1.3),
# numpy its pickled module paths between major ones (numpy 2's `numpy._core`).
COMPATIBLE_PARTS = {"scikit-learn": 2, "numpy": 1}


def check_libraries(recorded: dict[str, str], version: str, where: str) -> None:
    """The installed scikit-learn and numpy must match the versions the bundle was trained with.

    Runs on the driver before loading and in every Python worker before unpickling, since an
    executor's environment can differ from the driver's.
    """
    import sklearn

    installed = {"scikit-learn": sklearn.__version__, "numpy": np.__version__}
    for library, parts in COMPATIBLE_PARTS.items():
        saved = str(recorded.get(library) or "")
        if saved and saved.split(".")[:parts] != installed[library].split(".")[:parts]:
            raise LibraryMismatchError(
                f"model {version} was trained with {library} {saved}; {where} has {library} {installed[library]} "
                f"(the first {parts} part(s) of the version must match to unpickle it)"
            )


def check_finite(
    X: np.ndarray, columns: list[str], value: Callable[[int, int], float | None], customer: Callable[[int], Any],
    unit: str, note: str = "",
) -> None:
    """Refuses a forest matrix with NaN or an infinity (a float32 overflow included): the trees would guess.

    Batch and real-time scoring word the refusal alike: `value(row, column)` is the float64 the
    matrix was made from (None for a null), `customer(row)` its CUST_ID, `unit` what `X` holds
    ("batch", "request") and `note` is appended to the message.
    """
    bad = ~np.isfinite(X)
    if not bad.any():
        return
    row, j = (int(i) for i in np.argwhere(bad)[0])
    source = value(row, j)
    what = "missing" if source is None else (
        "beyond float32's range" if np.isfinite(np.float64(source)) else f"not finite ({source})"
    )
    raise NonFiniteFeatureError(
        f"feature {columns[j]} of customer {customer(row)} is {what} "
        f"({int(bad.any(axis=1).sum())} such row(s) in this {unit} of {len(X)}); refusing to score it{note}"
    )


def check_features(bundle: ModelBundle, columns: list[str]) -> None:
    """The features table must hold every column the model was trained on."""
    missing = [c for c in bundle.feature_columns if c not in columns]
    if missing:
        raise ModelError(
            f"model {bundle.version} expects feature column(s) the features table lacks: {', '.join(missing)}"
        )


# ---------------------------------------------------------------------------------------------
# housekeeping: old bundles and what crashed saves left


def bundle_folders(models_dir: str) -> list[str]:
    """The saved bundles' folder names, oldest first (names begin with their UTC time)."""
    root = Path(models_dir)
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir()
                  if p.is_dir() and not p.name.startswith(".") and (p / MANIFEST_FILE).is_file())


def remove_bundle(models_dir: str, version: str) -> int:
    """Deletes a bundle folder (never LATEST's); returns the bytes freed."""
    path = folder(models_dir, version)
    if version == latest(models_dir):
        raise ModelError(f"refusing to remove {version}: LATEST names it")
    freed = _size(path)
    shutil.rmtree(path)
    return freed


def stale_staging(models_dir: str, max_age_seconds: float, now: float) -> list[Path]:
    """What saves that crashed left: `.<name>.tmp` folders and files (`save`'s staging folder and
    LATEST pointer, the report's files written aside) untouched for `max_age_seconds`. A save
    still writing touches its staging entry, so a live one is younger."""
    root = Path(models_dir)
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if _is_staging(p)]
    for bundle in bundle_folders(models_dir):
        found.extend(p for p in (root / bundle).rglob(".*.tmp") if _is_staging(p))
    return [p for p in found if now - _newest_mtime(p) > max_age_seconds]


def remove_staging(path: Path) -> int:
    """Deletes a staging entry; returns the bytes freed."""
    freed = _size(path)
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink()
    return freed


def _is_staging(path: Path) -> bool:
    return path.name.startswith(".") and path.name.endswith(".tmp")


def _newest_mtime(path: Path) -> float:
    times = [path.stat().st_mtime]
    if path.is_dir():
        times.extend(p.stat().st_mtime for p in path.rglob("*"))
    return max(times)


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
