"""The model lifecycle on MLflow: each train is a logged run and a registered version, and the
`champion` alias, moved only by a version that passed every quality gate, is what scoring uses.

The bundle folder (`segmentation.model.store`) stays the unit a version is made of: it is logged as
the version's pyfunc artifacts, its digest recorded as a version tag, and checked against the
downloaded bytes before anything is unpickled. Locally the tracking and registry store is a
SQLite file and an artifact folder under the lakehouse; on Databricks, the workspace and Unity
Catalog. A lakehouse from before the registry (no registered model) keeps scoring its `LATEST`;
one that has had a registry (its `REGISTRY` marker) is refused without it. `serve` checks the
whole logged model (code included) against `model_sha256` before the server imports it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import logging
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

from segmentation.core import build, logs, redact
from segmentation.core.config import Config
from segmentation.core.errors import ModelError, ModelIntegrityError, RegistryError, RegistryMissingError
from segmentation.model import store

MODEL_PATH = "model"  # the pyfunc, within the train run's artifacts
BUNDLE_ARTIFACTS = "bundle"  # metrics.json, manifest.json and the report, within the run's artifacts
HISTORY_TAG = "champion_history"  # registered model tag: every champion in turn, comma-separated
GATES_TAG = "quality_gates"  # version tag: passed | failed
REASON_TAG = "quality_gate_failure"
HOLD_TAG = "promotion_held"  # version tag: why a version that passed its gates was not made champion
DIGEST_TAG = "bundle_sha256"
# Version tag: the digest of the whole logged model folder (its `code/`, `MLmodel`, the bundle),
# which the `serve` job checks before the server imports any of it (`model_digest`).
MODEL_DIGEST_TAG = "model_sha256"
# Registered model tags, one per change of champion, never rewritten: `<prefix><time_ns>.<random>`
# = "+N" (N became champion) or "-N" (N rolled back). Appending a new key cannot lose another
# writer's entry, as rewriting one list tag could (`_history`).
EVENT_TAG_PREFIX = "champion_event."
# The lake's durable sign that it has had a registry: written into `tables.models_dir` when a
# version is registered or the registry is read; with it, a missing registry is refused.
REGISTRY_MARKER = "REGISTRY"
BUNDLE_TAG = "bundle_version"
_HISTORY_KEEP = 100


@dataclass(frozen=True)
class Loaded:
    """A bundle ready to score, and the registered version it came from (None: a bundle folder)."""

    bundle: store.ModelBundle
    registry_version: int | None


def is_registry_version(version: str) -> bool:
    """Registered versions are numbers; bundle folder names never are."""
    return version.isdigit()


def uris(cfg: Config) -> tuple[str, str, str]:
    """(tracking URI, registry URI, artifact location), defaults under the lakehouse folder."""
    r = cfg.registry
    local = Path(cfg.tables.root).resolve() / "mlflow"
    tracking = r.tracking_uri or f"sqlite:///{local / 'mlflow.db'}"
    return tracking, r.registry_uri or tracking, r.artifact_location or (local / "artifacts").as_uri()


@contextlib.contextmanager
def _mlflow(cfg: Config) -> Iterator[Any]:
    """An MlflowClient on the config's stores (MLflow's global URIs are left alone), with
    MLflow's errors named and its chatter kept out of the job's log."""
    from mlflow import MlflowClient

    tracking, registry, _ = uris(cfg)
    if tracking.startswith("sqlite:///"):
        Path(tracking[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)
    try:
        yield MlflowClient(tracking_uri=tracking, registry_uri=registry)
    except (ModelError, RegistryError):
        raise
    except Exception as exc:  # an MlflowException, or the store's own (SQLAlchemy, OS)
        # Redacted: the message becomes the run's `runs.error`, and a URI may carry a password.
        raise RegistryError(redact.text(f"MLflow registry at {registry}: {type(exc).__name__}: {_first_line(exc)}")) from exc


def _first_line(exc: BaseException) -> str:
    return next((line.strip() for line in str(exc).splitlines() if line.strip()), "")


def _not_found(exc: BaseException) -> bool:
    return "RESOURCE_DOES_NOT_EXIST" in str(getattr(exc, "error_code", "")) or "not found" in str(exc).lower()


# ---------------------------------------------------------------------------------------------
# train: log, register, promote


def log_training(
    cfg: Config, run_date: dt.date, metrics: dict[str, Any], folder: Path | None, lineage: dict[str, Any],
    failure: str | None, save_pyfunc: Callable[[Path, Path, Config], None] | None = None,
    hold: str | None = None,
) -> int | None:
    """Logs the train as an MLflow run and, when a bundle was saved (`folder`), registers it
    as the pyfunc that `save_pyfunc(path, folder, cfg)` writes (the serving layer's, passed in).

    The new version becomes champion only when `failure` is None; otherwise it is registered
    with the failure as a tag and never becomes champion. `hold` (e.g. the night's guard fired)
    registers a version that passed its gates without promoting it: `promote` can, by hand. Returns the version number (None
    when no model was made: no clustering passed its guardrails).
    """
    log = logs.get("train")
    with _mlflow(cfg) as client:
        run = client.create_run(_experiment(client, cfg), run_name=f"train {run_date.isoformat()}",
                                tags={"run_date": run_date.isoformat(), "bundle_version": str(lineage.get("bundle_version", ""))})
        run_id = run.info.run_id
        try:
            _log_params(client, run_id, _flat(redact.tree(cfg.model_dump())))
            _log_metrics(client, run_id, metrics)
            if folder is None:
                client.set_tag(run_id, REASON_TAG, failure or "")
                client.set_terminated(run_id, "FAILED")
                return None
            for item in sorted(folder.iterdir()):
                if item.name == store.BUNDLE_FILE:
                    continue  # it travels once, inside the model
                if item.is_dir():
                    client.log_artifacts(run_id, str(item), f"{BUNDLE_ARTIFACTS}/{item.name}")
                else:
                    client.log_artifact(run_id, str(item), BUNDLE_ARTIFACTS)
            if save_pyfunc is None:
                raise RegistryError("registering a model needs the serving layer's save_pyfunc")
            with tempfile.TemporaryDirectory() as tmp:
                save_pyfunc(Path(tmp) / MODEL_PATH, folder, cfg)
                whole = model_digest(Path(tmp) / MODEL_PATH)
                client.log_artifacts(run_id, str(Path(tmp) / MODEL_PATH), MODEL_PATH)
            version = _register(client, cfg, f"{run.info.artifact_uri}/{MODEL_PATH}", run_id, folder, lineage, failure,
                                whole)
            _mark_registry(cfg)
            client.set_terminated(run_id, "FINISHED")
        except BaseException:
            with contextlib.suppress(Exception):
                client.set_terminated(run_id, "FAILED")
            raise
        if failure is None and hold is not None:
            client.set_model_version_tag(cfg.registry.model_name, str(version), HOLD_TAG, hold[:5000])
            log.warning("registered %s version %d, NOT made %s: %s", cfg.registry.model_name, version,
                        cfg.registry.alias, hold)
        elif failure is None:
            previous = _promote(client, cfg, version)
            log.info("registered %s version %d and made it %s (previous: %s)", cfg.registry.model_name, version,
                     cfg.registry.alias, previous or "none")
        else:
            log.warning("registered %s version %d, NOT made %s: %s", cfg.registry.model_name, version,
                        cfg.registry.alias, failure)
        return version


def _experiment(client, cfg: Config) -> str:
    found = client.get_experiment_by_name(cfg.registry.experiment)
    if found is not None:
        return found.experiment_id
    return client.create_experiment(cfg.registry.experiment, artifact_location=uris(cfg)[2])


def _flat(tree: dict[str, Any], prefix: str = "") -> dict[str, str]:
    flat: dict[str, str] = {}
    for key, value in tree.items():
        if isinstance(value, dict) and value:
            flat.update(_flat(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = str(value)
    return flat


def _log_params(client, run_id: str, params: dict[str, str]) -> None:
    from mlflow.entities import Param

    items = [Param(k, v[:6000]) for k, v in sorted(params.items())]
    for start in range(0, len(items), 100):  # a batch holds at most 100 params
        client.log_batch(run_id, params=items[start:start + 100])


def _metric_key(text: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "_-./ " else "_" for ch in text)


def _log_metrics(client, run_id: str, metrics: dict[str, Any]) -> None:
    """Every candidate's figures, the winner's, and the forest's held-out agreement."""
    from mlflow.entities import Metric

    now = int(dt.datetime.now(dt.timezone.utc).timestamp() * 1000)
    values: dict[str, float] = {}
    for c in metrics.get("candidates", []):
        stem = _metric_key(f"candidate.{c['algorithm']}.{c['params']}")
        for key in ("silhouette", "stability", "rule_agreement", "purchase_type_ari", "calinski_harabasz",
                    "davies_bouldin", "noise_share", "smallest_share", "largest_share", "n_segments", "passed",
                    "resample_silhouette", "resample_sd", "resample_wins"):
            if c.get(key) is not None:
                values[f"{stem}.{key}"] = float(c[key])
    forest = metrics.get("forest") or {}
    for key in ("accuracy", "macro_f1", "train_rows", "test_rows"):
        if forest.get(key) is not None:
            values[f"forest.{key}"] = float(forest[key])
    for segment, f1 in (forest.get("per_segment_f1") or {}).items():
        values[f"forest.f1.segment_{segment}"] = float(f1)
    if metrics.get("sample_rows") is not None:
        values["sample_rows"] = float(metrics["sample_rows"])
    items = [Metric(k, v, now, 0) for k, v in sorted(values.items())]
    for start in range(0, len(items), 1000):
        client.log_batch(run_id, metrics=items[start:start + 1000])


def _register(client, cfg: Config, source: str, run_id: str, folder: Path, lineage: dict[str, Any],
              failure: str | None, whole: str) -> int:
    name = cfg.registry.model_name
    try:
        client.get_registered_model(name)
    except Exception as exc:  # noqa: BLE001 - MLflow says "does not exist" by exception
        if not _not_found(exc):
            raise
        client.create_registered_model(name, description="Behavioural segments of card holders (segmentation)")
    tags = {str(k): str(v) for k, v in lineage.items() if v is not None}
    tags[DIGEST_TAG] = store.digest_of(folder)
    tags[MODEL_DIGEST_TAG] = whole
    tags[GATES_TAG] = "passed" if failure is None else "failed"
    if failure is not None:
        tags[REASON_TAG] = failure[:5000]
    version = client.create_model_version(name, source, run_id=run_id, tags=tags,
                                          description=f"bundle {lineage.get('bundle_version')}")
    return int(version.version)


def code_version() -> str:
    """The package version and the commit (see `segmentation.core.build`)."""
    return build.code_version()


# ---------------------------------------------------------------------------------------------
# champion: promote and roll back


def _history(client, cfg: Config) -> list[int]:
    """Every champion in turn, oldest first: the list tag of versions before the event tags
    existed, then each event in key order ("+N" appends N, "-N" removes it)."""
    tags = client.get_registered_model(cfg.registry.model_name).tags
    history = [int(v) for v in tags.get(HISTORY_TAG, "").split(",") if v.strip().isdigit()]
    for key in sorted(k for k in tags if k.startswith(EVENT_TAG_PREFIX)):
        sign, number = tags[key][:1], tags[key][1:]
        if number.isdigit():
            history = [v for v in history if v != int(number)] + ([int(number)] if sign == "+" else [])
    return history[-_HISTORY_KEEP:]


def _record(client, cfg: Config, sign: str, version: int) -> int:
    """Appends one champion event, then points the alias at the history's newest champion.

    Each event is a tag key of its own, so two writers never overwrite each other's entry. The
    alias follows the history: set, the history read again, and set again until it is still the
    newest, so the last writer to finish leaves the alias at the end of a history holding every
    entry. Returns the champion the alias was left at.
    """
    name = cfg.registry.model_name
    key = f"{EVENT_TAG_PREFIX}{time.time_ns():020d}.{uuid.uuid4().hex[:8]}"
    client.set_registered_model_tag(name, key, f"{sign}{version}")
    for _ in range(20):
        history = _history(client, cfg)
        if not history:
            raise ModelError(f"{name}: the champion history is empty after recording {sign}{version}")
        target = history[-1]
        client.set_registered_model_alias(name, cfg.registry.alias, str(target))
        if _history(client, cfg)[-1:] == [target]:
            return target
        time.sleep(0.05)
    raise RegistryError(f"{name}: the champion history kept changing while {cfg.registry.alias} was set")


def _promote(client, cfg: Config, version: int) -> int | None:
    """Records `version` as the newest champion and points the alias at it; returns the previous."""
    previous = _champion_version(client, cfg)
    _record(client, cfg, "+", version)
    return previous


def _champion_version(client, cfg: Config) -> int | None:
    try:
        return int(client.get_model_version_by_alias(cfg.registry.model_name, cfg.registry.alias).version)
    except Exception as exc:  # noqa: BLE001 - no alias (or no model) is an exception in MLflow
        if _not_found(exc) or "alias" in str(exc).lower():
            return None
        raise


def promote(cfg: Config, version: int | None = None, previous: bool = False) -> dict[str, Any]:
    """Makes `version` the champion, or with `previous` the champion before the current one.

    A version that failed its quality gates is refused: promoting it by hand would score with a
    forest that does not reproduce its segments.
    """
    log = logs.get("promote")
    with _mlflow(cfg) as client:
        name = cfg.registry.model_name
        current = _champion_version(client, cfg)
        history = _history(client, cfg)
        if previous:
            earlier = [v for v in history if v != current]
            if current is None or not earlier:
                raise ModelError(f"{name}: no previous {cfg.registry.alias} to roll back to (history: "
                                 f"{','.join(map(str, history)) or 'empty'})")
            target = earlier[-1]
        elif version is None:
            raise ModelError("promote needs --version N or --previous")
        else:
            target = version
        mv = _version(client, cfg, target)
        mv_number = target
        if mv.tags.get(GATES_TAG) == "failed":
            raise ModelError(f"{name} version {target} failed its quality gates "
                             f"({mv.tags.get(REASON_TAG, 'no reason recorded')}); it cannot become {cfg.registry.alias}")
        # Rolled back: the current champion leaves the history, so a second --previous goes further back.
        target = _record(client, cfg, "-", current) if previous else _record(client, cfg, "+", target)
        if target != mv_number:  # another promotion landed meanwhile: it is the newest champion
            log.warning("%s: %s is version %d, recorded by another promotion at the same time", name,
                        cfg.registry.alias, target)
            mv = _version(client, cfg, target)
        log.info("%s: %s moved from version %s to %d", name, cfg.registry.alias, current, target)
        return {"model_version": mv.tags.get(BUNDLE_TAG), "registry_version": target, "previous_champion": current}


def _version(client, cfg: Config, version: int):
    try:
        return client.get_model_version(cfg.registry.model_name, str(version))
    except Exception as exc:  # noqa: BLE001
        if _not_found(exc):
            raise ModelError(f"{cfg.registry.model_name} has no version {version}") from None
        raise


# ---------------------------------------------------------------------------------------------
# scoring: which model, and its verified bundle


def _has_registered_model(client, cfg: Config) -> bool:
    try:
        client.get_registered_model(cfg.registry.model_name)
        return True
    except Exception as exc:  # noqa: BLE001
        if _not_found(exc):
            return False
        raise


def _local_store_exists(cfg: Config) -> bool:
    tracking = uris(cfg)[0]
    return not tracking.startswith("sqlite:///") or Path(tracking[len("sqlite:///"):]).is_file()


def current(cfg: Config) -> str | None:
    """What scoring uses when no version is asked for: the champion's number, or, with no
    registry (disabled, or a lakehouse from before it), the newest usable bundle folder.

    A lake that has had a registry (its `REGISTRY` marker) is refused without one: falling back
    to `LATEST` would check nothing but the manifest beside the pickle.
    """
    if cfg.registry.enabled and _local_store_exists(cfg):
        with _mlflow(cfg) as client:
            if _has_registered_model(client, cfg):
                _mark_registry(cfg)
                champion = _champion_version(client, cfg)
                if champion is None:
                    raise ModelError(f"{cfg.registry.model_name} has no {cfg.registry.alias}: no version passed its "
                                     "quality gates yet; run train, or promote a version")
                return str(champion)
    _require_no_registry_history(cfg)
    latest = store.latest(cfg.tables.models_dir)
    if latest and cfg.registry.enabled:
        logs.get("registry").warning(
            "no registered model %s: using bundle %s from %s (a model trained before the registry; the next "
            "train registers one)", cfg.registry.model_name, latest, cfg.tables.models_dir)
    return latest


def _marker(cfg: Config) -> Path:
    return Path(cfg.tables.models_dir) / REGISTRY_MARKER


def _marker_line(cfg: Config) -> str:
    """The marker's line for this config's registry: the model name and a digest of the registry
    URI (a URI may carry a password), so lakes that share `models_dir` with registries of their
    own each need only theirs."""
    return f"{cfg.registry.model_name} sha256:{hashlib.sha256(uris(cfg)[1].encode()).hexdigest()}"


def _marked(cfg: Config) -> bool:
    marker = _marker(cfg)
    return marker.is_file() and _marker_line(cfg) in marker.read_text().splitlines()


def _mark_registry(cfg: Config) -> None:
    """Adds this registry to the lake's `REGISTRY` marker once: from now on the lake needs it."""
    if _marked(cfg):
        return
    marker = _marker(cfg)
    marker.parent.mkdir(parents=True, exist_ok=True)
    lines = marker.read_text().splitlines() if marker.is_file() else []
    tmp = marker.with_name(f".{REGISTRY_MARKER}.{uuid.uuid4().hex}.tmp")
    tmp.write_text("\n".join([*lines, _marker_line(cfg)]) + "\n")
    tmp.replace(marker)


def _require_no_registry_history(cfg: Config) -> None:
    """Raises `RegistryMissingError` when the lake has had this registry and it is now gone or off."""
    if not _marked(cfg):
        return
    marker = _marker(cfg)
    state = "is turned off (registry.enabled=false)" if not cfg.registry.enabled else \
        f"has no registered model {cfg.registry.model_name} at {redact.text(uris(cfg)[1])}"
    raise RegistryMissingError(
        f"this lake has had a registry ({marker} names it) but the registry {state}: refusing to fall back to "
        f"{store.LATEST_FILE}, which checks only the manifest beside the pickle. Restore the registry; to run "
        f"without one on purpose, remove {marker}")


def scoring_version(cfg: Config) -> str | None:
    """The model `score` would use now: `score.model_version`, else `current`; None when there
    is none (no model yet, or a registry with no champion)."""
    try:
        return cfg.score.model_version or current(cfg)
    except RegistryMissingError:
        raise
    except ModelError as exc:
        logs.get("registry").info("no model to score with yet (%s)", exc)
        return None


def _passing_version(client, cfg: Config, version: int, purpose: str):
    """The registered `version`, refused when it failed its quality gates."""
    mv = _version(client, cfg, version)
    if mv.tags.get(GATES_TAG) == "failed":
        raise ModelError(f"{cfg.registry.model_name} version {version} failed its quality gates "
                         f"({mv.tags.get(REASON_TAG, 'no reason recorded')}) and is not {purpose}")
    return mv


def load(cfg: Config, version: str = "") -> Loaded:
    """The bundle of `version` ("" for `current`), its bytes checked before unpickling."""
    version = version or current(cfg) or ""
    if not is_registry_version(version):
        if not version:
            _require_no_registry_history(cfg)
        return Loaded(store.load(cfg.tables.models_dir, version), None)
    with _mlflow(cfg) as client:
        mv = _passing_version(client, cfg, int(version), "usable")
        digest = mv.tags.get(DIGEST_TAG)
        if not digest:
            raise ModelError(f"{cfg.registry.model_name} version {version} has no {DIGEST_TAG} tag: not registered by "
                             "this product, refusing to unpickle it")
        with tempfile.TemporaryDirectory() as tmp:
            folder = _download(client, cfg, int(version), Path(tmp))
            bundle = store.load_path(folder, f"{cfg.registry.model_name} version {version}", expected_sha256=digest)
    return Loaded(bundle, int(version))


def model_digest(folder: Path) -> str:
    """sha256 over every file under `folder` (sorted relative paths, each path's bytes and its
    content): the whole model as MLflow would load it, code, `MLmodel` and bundle alike."""
    h = hashlib.sha256()
    for path in sorted(p for p in Path(folder).rglob("*") if p.is_file() or p.is_symlink()):
        rel = path.relative_to(folder).as_posix().encode()
        data = path.read_bytes()
        h.update(len(rel).to_bytes(8, "big") + rel + len(data).to_bytes(8, "big"))
        h.update(data)
    return h.hexdigest()


def verified_model(cfg: Config, version: int | None, into: Path) -> tuple[int, Path]:
    """The registered `version` (None: the champion), downloaded into `into` and checked whole
    against its `model_sha256` tag; returns (version, the local model folder). Nothing of the
    model is imported or unpickled here: only its bytes are read."""
    if not cfg.registry.enabled or not _local_store_exists(cfg):
        raise ModelError(f"no model registry at {uris(cfg)[1]} to serve from (registry.enabled="
                         f"{str(cfg.registry.enabled).lower()}): serve needs a registered version")
    with _mlflow(cfg) as client:
        name = cfg.registry.model_name
        if version is None:
            version = _champion_version(client, cfg)
            if version is None:
                raise ModelError(f"{name} has no {cfg.registry.alias} to serve; pass --version N")
        mv = _passing_version(client, cfg, version, "servable")
        expected = mv.tags.get(MODEL_DIGEST_TAG)
        if not expected:
            raise ModelIntegrityError(f"{name} version {version} has no {MODEL_DIGEST_TAG} tag (registered before "
                                      "whole-model digests, or not by this product): refusing to serve it; train again")
        folder = _download(client, cfg, version, into).parent
    if Path(into).resolve() not in folder.resolve().parents:  # checked and served must be one private copy
        raise RegistryError(f"{name} version {version} was not downloaded into {into} but found at {folder}")
    found = model_digest(folder)
    if found != expected:
        raise ModelIntegrityError(f"{name} version {version}: the downloaded model's sha256 {found[:16]}... differs "
                                  f"from the registry's {MODEL_DIGEST_TAG} {expected[:16]}...: its files were changed "
                                  "after registration; refusing to serve it")
    return version, folder


def _download(client, cfg: Config, version: int, into: Path) -> Path:
    """The version's model folder, from the registry's copy; its `artifacts/` holds the bundle.

    Unity Catalog hands out its own storage credentials through a `models:/` URI; elsewhere the
    version's download URI is asked of our client, since MLflow resolves `models:/` URIs of
    other registries through its global one.
    """
    from mlflow.artifacts import download_artifacts

    tracking, registry, _ = uris(cfg)
    if registry.startswith("databricks-uc"):
        uri = f"models:/{cfg.registry.model_name}/{version}"
    else:
        uri = client.get_model_version_download_uri(cfg.registry.model_name, str(version))
    path = download_artifacts(artifact_uri=uri, dst_path=str(into), tracking_uri=tracking, registry_uri=registry)
    return Path(path) / "artifacts"


def bundle_folder(cfg: Config, version: str) -> str:
    """The bundle folder name of `version`: itself, or a registered version's `bundle_version` tag."""
    if not is_registry_version(version):
        return version
    with _mlflow(cfg) as client:
        return str(_version(client, cfg, int(version)).tags.get(BUNDLE_TAG) or "")



# ---------------------------------------------------------------------------------------------
# maintenance: which bundle folders the registry still needs


def referenced_bundles(cfg: Config) -> set[str]:
    """The bundle folders of every registered version (the champion's among them): never removed,
    since `promote` may make any of them champion and scoring a pinned one reads it."""
    if not _local_store_exists(cfg):
        _require_no_registry_history(cfg)  # a lost registry would leave every bundle unprotected
        return set()
    with _mlflow(cfg) as client:
        if not _has_registered_model(client, cfg):
            _require_no_registry_history(cfg)
            return set()
        found: set[str] = set()
        token = None
        while True:
            page = client.search_model_versions(f"name = '{cfg.registry.model_name}'", page_token=token)
            found.update(str(v.tags.get(BUNDLE_TAG)) for v in page if v.tags.get(BUNDLE_TAG))
            token = page.token
            if not token:
                return found
