"""Typed configuration: `conf/base.yaml` plus named overlays, loaded once per job.

Every key is declared here; an unknown key, a value of the wrong type or one outside its
range (`RANGES`, `CHOICES` and `_check_relations`, below the declarations) is a `ConfigError`
naming the dotted key, whether it came from a file or from `--set`.
"""

from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Mapping, Optional, Union

import yaml

from segmentation.core.columns import RAW_NUMERIC_COLUMNS
from segmentation.core.errors import ConfigError


@dataclass(frozen=True)
class InputConfig:
    source: str = "data/CC_GENERAL.csv"
    format: Literal["auto", "csv", "parquet", "delta", "table"] = "auto"


@dataclass(frozen=True)
class TablesConfig:
    # Path-based Delta tables live under `root`; when `schema` is set (e.g. `main.segmentation`)
    # they are metastore tables `<schema>.<name>` instead.
    root: str = "lakehouse"
    schema: str = ""
    features: str = "features"
    segments: str = "segments"
    imputation: str = "imputation"
    clustering_candidates: str = "clustering_candidates"
    quarantine: str = "quarantine"
    runs: str = "runs"
    segment_profiles: str = "segment_profiles"
    segment_drivers: str = "segment_drivers"
    segment_shares: str = "segment_shares"
    segment_lineage: str = "segment_lineage"
    segments_current: str = "segments_current"
    segment_migrations: str = "segment_migrations"
    drift: str = "drift"
    models_dir: str = "lakehouse/models"


@dataclass(frozen=True)
class SparkConfig:
    app_name: str = "segmentation"
    master: str = "local[*]"
    shuffle_partitions: int = 8
    log_level: str = "WARN"
    # Files a write task keeps open before it falls back to sorting its rows by partition value.
    # Our writes each replace one run_date, so one writer suffices and no task sorts (0: Spark's sort).
    concurrent_output_writers: int = 4
    extra: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ContractConfig:
    max_quarantine_share: float = 0.05  # above this the night stops: an upstream break
    tenure_min: float = 6
    tenure_max: float = 12
    # The bundled data holds CASH_ADVANCE_FREQUENCY up to 1.5 (8 rows); other shares stay in [0, 1].
    max_cash_advance_frequency: float = 1.5
    # PURCHASES never exceeds ONEOFF + INSTALLMENTS in the bundled data by more than rounding;
    # the reverse happens (19 rows, up to 600) and is tolerated.
    purchases_tolerance: float = 0.01


@dataclass(frozen=True)
class ImputationConfig:
    columns: list[str] = field(default_factory=lambda: ["MINIMUM_PAYMENTS", "CREDIT_LIMIT"])
    # exact: Spark's `percentile` (same value as pandas' median); approx: `percentile_approx`.
    method: Literal["exact", "approx"] = "approx"
    accuracy: int = 10000


@dataclass(frozen=True)
class FeaturesConfig:
    ratio_epsilon: float = 1e-6


@dataclass(frozen=True)
class SampleConfig:
    max_rows: int = 10000  # also the rows every clustering candidate and metric sees
    seed: int = 42


@dataclass(frozen=True)
class TransformConfig:
    # log1p: log(1 + x), zero stays zero; log: log(x + offset), the notebook's choice.
    kind: Literal["log1p", "log"] = "log1p"
    offset: float = 1e-6


# Behaviour families of the model features: the clustering space gives each family equal total
# weight, and the personas describe segments family by family.
DEFAULT_FAMILIES = {
    "spending": ["PURCHASES", "PURCHASES_FREQUENCY", "PURCHASES_TRX", "MONTHLY_AVG_PURCHASES"],
    "purchase_mix": [
        "ONEOFF_PURCHASES", "INSTALLMENTS_PURCHASES", "ONEOFF_PURCHASES_FREQUENCY", "PURCHASES_INSTALLMENTS_FREQUENCY",
    ],
    "cash_advance": ["CASH_ADVANCE", "CASH_ADVANCE_FREQUENCY", "CASH_ADVANCE_TRX", "MONTHLY_CASH_ADVANCE"],
    "revolving": ["BALANCE", "BALANCE_FREQUENCY", "LIMIT_USAGE", "CREDIT_LIMIT"],
    "payment_discipline": ["PAYMENTS", "MINIMUM_PAYMENTS", "PAYMENT_MINPAY_RATIO", "PRC_FULL_PAYMENT"],
    "tenure": ["TENURE"],
}


@dataclass(frozen=True)
class SpaceConfig:
    # families: only the columns named in `families`, each family scaled to equal total weight
    # (the purchase-type indicators, functions of two columns already in a family, stay out);
    # all: every model feature at unit weight, the notebook's space.
    kind: Literal["families", "all"] = "families"
    families: dict[str, list[str]] = field(default_factory=lambda: {k: list(v) for k, v in DEFAULT_FAMILIES.items()})


@dataclass(frozen=True)
class KMeansConfig:
    k: list[int] = field(default_factory=lambda: list(range(2, 11)))
    n_init: int = 4


@dataclass(frozen=True)
class GMMConfig:
    k: list[int] = field(default_factory=lambda: list(range(2, 11)))
    n_init: int = 2


@dataclass(frozen=True)
class DBSCANConfig:
    # An empty eps list derives eps from the k-distance distribution at `eps_quantiles`.
    eps: list[float] = field(default_factory=list)
    eps_quantiles: list[float] = field(default_factory=lambda: [0.90, 0.95, 0.98])
    min_samples: list[int] = field(default_factory=lambda: [10, 20])


@dataclass(frozen=True)
class StabilityConfig:
    resamples: int = 3  # 0 skips the stability measure
    fraction: float = 0.8


@dataclass(frozen=True)
class GuardrailsConfig:
    enabled: bool = True
    min_segments: int = 3
    max_segments: int = 8
    min_segment_share: float = 0.02
    max_noise_share: float = 0.10
    # A segment holding most customers is the base, not an audience a campaign can target.
    max_segment_share: float = 0.5
    # A labelling that a `rule_depth`-level decision tree on the raw columns reproduces for more
    # than this share of customers is a rule in disguise, not a behavioural segmentation.
    max_rule_agreement: float = 0.90


@dataclass(frozen=True)
class ClusteringConfig:
    random_state: int = 42
    algorithms: list[str] = field(default_factory=lambda: ["kmeans", "dbscan", "gmm"])
    kmeans: KMeansConfig = field(default_factory=KMeansConfig)
    gmm: GMMConfig = field(default_factory=GMMConfig)
    dbscan: DBSCANConfig = field(default_factory=DBSCANConfig)
    # drop: DBSCAN's metrics on its non-noise rows only (the notebook, which flatters it);
    # cluster: noise rows count as one more group, so noise is not free.
    dbscan_noise_in_silhouette: Literal["drop", "cluster"] = "cluster"
    stability: StabilityConfig = field(default_factory=StabilityConfig)
    guardrails: GuardrailsConfig = field(default_factory=GuardrailsConfig)
    tie_tolerance: float = 0.005  # silhouettes this close are a tie, broken by stability
    # Silhouette is quadratic in rows: metrics and stability refits see at most this many
    # rows of the sample, the same rows for every candidate.
    metric_max_rows: int = 5000
    rule_depth: int = 2  # depth of the shallow tree whose agreement measures "a rule in disguise"


@dataclass(frozen=True)
class ForestConfig:
    n_estimators: int = 40
    max_depth: Optional[int] = 12
    min_samples_leaf: int = 5
    class_weight: Optional[str] = "balanced"
    test_size: float = 0.3
    random_state: int = 42
    min_macro_f1: float = 0.90  # held-out agreement with the clusterer below this: no usable model


@dataclass(frozen=True)
class ExplainConfig:
    permutation_repeats: int = 5  # shuffles per feature for permutation importance
    trait_threshold: float = 0.4  # standardized difference a persona trait needs
    report: bool = True  # write report.html and report.md next to the bundle


@dataclass(frozen=True)
class LineageConfig:
    # A new segment keeps a current segment's id when their overlap covers this share of either.
    min_overlap: float = 0.5
    # A source (or destination) covering this share of a segment counts in a split or merge.
    part: float = 0.25


@dataclass(frozen=True)
class TrainConfig:
    retrain: bool = False
    # BLAS/OpenMP threads of the driver-side fits; 0 leaves the libraries' default (all cores).
    blas_threads: int = 1
    sample: SampleConfig = field(default_factory=SampleConfig)
    transform: TransformConfig = field(default_factory=TransformConfig)
    space: SpaceConfig = field(default_factory=SpaceConfig)
    clustering: ClusteringConfig = field(default_factory=ClusteringConfig)
    forest: ForestConfig = field(default_factory=ForestConfig)
    explain: ExplainConfig = field(default_factory=ExplainConfig)
    lineage: LineageConfig = field(default_factory=LineageConfig)


@dataclass(frozen=True)
class ScoreConfig:
    # empty: the registry's champion (the latest saved model without a registry); N: registered
    # version N; a bundle folder name (e.g. 20261125T140200Z-ab12cd): that folder's bundle.
    model_version: str = ""
    arrow_batch_rows: int = 100000


@dataclass(frozen=True)
class DriftConfig:
    bins: int = 10  # PSI bins at the training sample's quantiles
    psi_threshold: float = 0.2  # a feature's PSI above this flags drift
    share_change_points: float = 5.0  # a segment's share moving more than this (points) flags drift
    retrain_on_drift: bool = False  # nightly retrains before scoring when the features drifted


@dataclass(frozen=True)
class RegistryConfig:
    # MLflow: every train logs a run and registers a version; scoring uses the `alias` version.
    enabled: bool = True
    tracking_uri: str = ""  # empty: sqlite:///<tables.root>/mlflow/mlflow.db, embedded, no server
    registry_uri: str = ""  # empty: the tracking URI
    artifact_location: str = ""  # empty: <tables.root>/mlflow/artifacts (a new experiment's only)
    experiment: str = "segmentation"
    model_name: str = "segmentation"  # on Unity Catalog: catalog.schema.model
    alias: str = "champion"


@dataclass(frozen=True)
class Config:
    input: InputConfig = field(default_factory=InputConfig)
    tables: TablesConfig = field(default_factory=TablesConfig)
    spark: SparkConfig = field(default_factory=SparkConfig)
    contract: ContractConfig = field(default_factory=ContractConfig)
    imputation: ImputationConfig = field(default_factory=ImputationConfig)
    features: FeaturesConfig = field(default_factory=FeaturesConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    score: ScoreConfig = field(default_factory=ScoreConfig)
    drift: DriftConfig = field(default_factory=DriftConfig)
    registry: RegistryConfig = field(default_factory=RegistryConfig)


# ---------------------------------------------------------------------------------------------
# ranges: every numeric key's allowed values, in one place

# Checked when the config loads, so a value that would fail deep inside scikit-learn or Spark
# fails first, naming its key. "[a, b]" closed, "(a, b)" open, inf for no bound; for a list the
# range applies to each element; None (an optional key left empty) is always allowed.
_SEED = "[0, 4294967295]"  # what scikit-learn and numpy accept as random_state
RANGES: dict[str, str] = {
    "spark.shuffle_partitions": "[1, inf)",
    "spark.concurrent_output_writers": "[0, inf)",
    "contract.max_quarantine_share": "[0, 1]",
    "contract.tenure_min": "[0, inf)",
    "contract.tenure_max": "[0, inf)",
    "contract.max_cash_advance_frequency": "[0, inf)",
    "contract.purchases_tolerance": "[0, inf)",
    "imputation.accuracy": "[1, 2147483647]",
    "features.ratio_epsilon": "[0, inf)",
    "train.sample.max_rows": "[1, inf)",
    "train.transform.offset": "(0, inf)",
    "train.clustering.random_state": _SEED,
    "train.clustering.kmeans.k": "[1, inf)",
    "train.clustering.kmeans.n_init": "[1, inf)",
    "train.clustering.gmm.k": "[1, inf)",
    "train.clustering.gmm.n_init": "[1, inf)",
    "train.clustering.dbscan.eps": "(0, inf)",
    "train.clustering.dbscan.eps_quantiles": "[0, 1]",
    "train.clustering.dbscan.min_samples": "[1, inf)",
    "train.clustering.stability.resamples": "[0, inf)",
    "train.clustering.stability.fraction": "(0, 1]",
    "train.clustering.guardrails.min_segments": "[1, inf)",
    "train.clustering.guardrails.max_segments": "[1, inf)",
    "train.clustering.guardrails.min_segment_share": "[0, 1]",
    "train.clustering.guardrails.max_noise_share": "[0, 1]",
    "train.clustering.guardrails.max_segment_share": "(0, 1]",
    "train.clustering.guardrails.max_rule_agreement": "[0, 1]",
    "train.clustering.rule_depth": "[1, inf)",
    "train.blas_threads": "[0, inf)",
    "train.explain.permutation_repeats": "[1, inf)",
    "train.explain.trait_threshold": "(0, inf)",
    "train.lineage.min_overlap": "(0, 1]",
    "train.lineage.part": "(0, 1]",
    "drift.bins": "[2, inf)",
    "drift.psi_threshold": "(0, inf)",
    "drift.share_change_points": "(0, 100]",
    "train.clustering.tie_tolerance": "[0, inf)",
    "train.clustering.metric_max_rows": "[2, inf)",
    "train.forest.n_estimators": "[1, inf)",
    "train.forest.max_depth": "[1, inf)",
    "train.forest.min_samples_leaf": "[1, inf)",
    "train.forest.test_size": "(0, 1)",
    "train.forest.random_state": _SEED,
    # Macro-F1 is at most 1; a higher floor keeps every model unusable, and the run says so.
    "train.forest.min_macro_f1": "[0, inf)",
    "score.arrow_batch_rows": "[1, 2147483647]",  # Spark's maxRecordsPerBatch is an int
}

# Keys whose values come from a fixed set (in addition to their declared type).
CHOICES: dict[str, tuple[Any, ...]] = {
    "spark.log_level": ("ALL", "DEBUG", "ERROR", "FATAL", "INFO", "OFF", "TRACE", "WARN"),
    "imputation.columns": tuple(RAW_NUMERIC_COLUMNS),
    "train.clustering.algorithms": ("kmeans", "dbscan", "gmm"),
    "train.forest.class_weight": ("balanced", "balanced_subsample", None),
}

_INTERVAL = re.compile(r"^([\[(])\s*(-?inf|[-+0-9.e]+)\s*,\s*(-?inf|[-+0-9.e]+)\s*([\])])$")


@dataclass(frozen=True)
class Interval:
    low: float
    high: float
    low_closed: bool
    high_closed: bool
    text: str

    @classmethod
    def parse(cls, text: str) -> "Interval":
        match = _INTERVAL.match(text)
        if not match:
            raise ValueError(f"not an interval: {text!r}")
        left, low, high, right = match.groups()
        return cls(float(low), float(high), left == "[", right == "]", text)

    def __contains__(self, value: float) -> bool:
        if isinstance(value, float) and math.isnan(value):
            return False
        above = value >= self.low if self.low_closed else value > self.low
        below = value <= self.high if self.high_closed else value < self.high
        return above and below


_INTERVALS = {key: Interval.parse(text) for key, text in RANGES.items()}


def value_at(cfg: Config, key: str) -> Any:
    """The value of a dotted key, e.g. `train.forest.test_size`."""
    node: Any = cfg
    for part in key.split("."):
        if not dataclasses.is_dataclass(node) or part not in {f.name for f in dataclasses.fields(node)}:
            raise KeyError(key)
        node = getattr(node, part)
    return node


def _elements(key: str, value: Any) -> list[tuple[str, Any]]:
    if isinstance(value, list):
        return [(f"{key}[{i}]", v) for i, v in enumerate(value)]
    return [(key, value)]


def validate(cfg: Config) -> Config:
    """Every range, choice and relation between keys; the first broken one is a `ConfigError`."""
    for key, interval in _INTERVALS.items():
        for name, value in _elements(key, value_at(cfg, key)):
            if value is not None and value not in interval:
                raise ConfigError(f"config key {name} must be in {interval.text}, got {value!r}")
    for key, allowed in CHOICES.items():
        for name, value in _elements(key, value_at(cfg, key)):
            normalised = value.upper() if key == "spark.log_level" and isinstance(value, str) else value
            if normalised not in allowed:
                raise ConfigError(f"config key {name} must be one of {list(allowed)}, got {value!r}")
    _check_relations(cfg)
    return cfg


def _check_relations(cfg: Config) -> None:
    """Checks between keys: each names both."""
    guard = cfg.train.clustering.guardrails
    if guard.min_segments > guard.max_segments:
        raise ConfigError(
            f"config key train.clustering.guardrails.min_segments ({guard.min_segments}) must not exceed "
            f"train.clustering.guardrails.max_segments ({guard.max_segments})"
        )
    if cfg.contract.tenure_min > cfg.contract.tenure_max:
        raise ConfigError(
            f"config key contract.tenure_min ({cfg.contract.tenure_min}) must not exceed "
            f"contract.tenure_max ({cfg.contract.tenure_max})"
        )
    clustering = cfg.train.clustering
    for algorithm in ("kmeans", "gmm"):
        ks = getattr(clustering, algorithm).k
        if algorithm in clustering.algorithms and ks and max(ks) > cfg.train.sample.max_rows:
            raise ConfigError(
                f"config key train.sample.max_rows ({cfg.train.sample.max_rows}) must be at least the largest "
                f"train.clustering.{algorithm}.k ({max(ks)}): a sample cannot hold more segments than rows"
            )


# ---------------------------------------------------------------------------------------------
# loading


def load_config(
    conf_dir: Path,
    profiles: list[str] | None = None,
    overrides: list[str] | None = None,
    extra_files: list[Path] | None = None,
    values: Mapping[str, Any] | None = None,
) -> Config:
    """base.yaml, then each profile overlay, then extra files, then `--set` overrides, then `values`.

    `overrides` are `key=value` text read as YAML (`--set`); `values` are taken as they are
    (e.g. a path from `--input`, where YAML would read ` #...` as a comment).
    """
    conf_dir = Path(conf_dir)
    merged: dict[str, Any] = {}
    files = [conf_dir / "base.yaml"]
    for name in profiles or []:
        if not name or "/" in name or name.startswith("."):
            raise ConfigError(f"profile name {name!r} is not a plain name of a file in {conf_dir}")
        path = conf_dir / f"{name}.yaml"
        if not path.is_file():
            known = sorted(p.stem for p in conf_dir.glob("*.yaml") if p.stem != "base")
            raise ConfigError(f"unknown profile {name!r}: no {path} (profiles: {', '.join(known)})")
        files.append(path)
    files.extend(Path(p) for p in extra_files or [])
    for path in files:
        _deep_merge(merged, _read_yaml(path))
    for item in overrides or []:
        key, value = _parse_override(item)
        _set_dotted(merged, key, value)
    for key, value in (values or {}).items():
        _set_dotted(merged, key, value)
    return validate(_build(Config, merged, prefix=""))


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping at the top level")
    return data


def _parse_override(item: str) -> tuple[str, Any]:
    key, sep, raw = item.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set expects dotted.key=value, got {item!r}")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return key.strip(), value


def _set_dotted(tree: dict[str, Any], key: str, value: Any) -> None:
    node = tree
    parts = key.split(".")
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"--set {key}: {part!r} is a value, not a section")
        node = child
    node[parts[-1]] = value


def _deep_merge(into: dict[str, Any], other: dict[str, Any]) -> None:
    for key, value in other.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _deep_merge(into[key], value)
        else:
            into[key] = value


def _build(cls: type, data: Any, prefix: str) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"config key {prefix.rstrip('.') or '<root>'} must be a section (mapping)")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(
            f"unknown config key {prefix}{unknown[0]} (known under {prefix.rstrip('.') or 'top level'}: "
            f"{', '.join(sorted(names))})"
        )
    values = {name: _coerce(hints[name], data[name], f"{prefix}{name}") for name in data}
    return cls(**values)


def _coerce(tp: Any, value: Any, key: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, prefix=f"{key}.")
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(inner[0], value, key)
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"config key {key} must be one of {list(args)}, got {value!r}")
        return value
    if origin is list:
        if not isinstance(value, list):
            value = [value]  # a single value where a list is expected is a list of one
        return [_coerce(args[0], v, f"{key}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"config key {key} must be a mapping, got {type(value).__name__}")
        return {str(k): _coerce(args[1], v, f"{key}.{k}") for k, v in value.items()}
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif tp is str:
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
    raise ConfigError(f"config key {key} must be {getattr(tp, '__name__', tp)}, got {value!r}")


def resolve_path(value: str, base: Path) -> str:
    """Relative paths in config are relative to the project (the folder holding conf/)."""
    if not value or "://" in value or value.startswith("/"):
        return value
    return str((base / value).resolve())
