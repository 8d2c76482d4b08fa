"""Typed configuration: every key's type, default and allowed values, declared once, here.

`conf/base.yaml` and the profile overlays (`conf/<name>.yaml`) hold only what differs from these
defaults. The models are strict pydantic ones, so an unknown key, a value of the wrong type or
one outside its range, from a file or from `--set`, is a `ConfigError` naming the dotted key
before any session starts. Every section is frozen, like the dataclasses it replaced: a config
is read, never changed (`model_copy(update=...)` makes a changed copy).
"""

import warnings
from pathlib import Path
from typing import Annotated, Any, Literal, Mapping, Optional, TypeVar, get_args

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator
from pydantic_core import PydanticCustomError

from segmentation.core.columns import MONEY_COLUMNS, RAW_NUMERIC_COLUMNS
from segmentation.core.errors import ConfigError


class _Section(BaseModel):
    # strict: YAML's types are taken as they are; an int is a float where a float is declared,
    # nothing else converts (no "5" for 5, no bool for an int). validate_default: the defaults
    # below obey their own ranges. allow_inf_nan: no range here admits inf or NaN.
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True, validate_default=True, allow_inf_nan=False)


def _number_as_text(value: Any) -> Any:
    # YAML reads `model_version: 3` as an int; a text key takes it as written. A bool stays
    # refused: `yes` where a name is expected is a slip, not a name.
    return str(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else value


def _one_as_list(value: Any) -> Any:
    return value if isinstance(value, list) else [value]  # `k: 4` is the list [4]


def _keys_as_text(value: Any) -> Any:
    return {str(k): v for k, v in value.items()} if isinstance(value, dict) else value


T = TypeVar("T")
Text = Annotated[str, BeforeValidator(_number_as_text)]
Many = Annotated[list[T], BeforeValidator(_one_as_list)]
Named = Annotated[dict[str, T], BeforeValidator(_keys_as_text)]
Share = Annotated[float, Field(ge=0, le=1)]
Count = Annotated[int, Field(ge=1)]
Seed = Annotated[int, Field(ge=0, le=4294967295)]  # what scikit-learn and numpy take as random_state
Int32 = Annotated[int, Field(ge=1, le=2147483647)]  # a Java int on the Spark side
RawColumn = Literal[tuple(RAW_NUMERIC_COLUMNS)]
LogLevel = Annotated[
    Literal["ALL", "DEBUG", "ERROR", "FATAL", "INFO", "OFF", "TRACE", "WARN"],
    BeforeValidator(lambda v: v.upper() if isinstance(v, str) else v),
]


def _relation(rule: str, **keys: tuple[str, Any]) -> PydanticCustomError:
    """A broken check between keys of one section. `keys` maps each `{name}` in `rule` to the
    key's path within the section and its value; the loader prefixes the section's dotted path."""
    text = rule.format(**{name: f"{path} ({value})" for name, (path, value) in keys.items()})
    return PydanticCustomError("relation", "{text}", {"text": text, "rule": rule, "keys": keys})


class InputConfig(_Section):
    source: Text = "data/CC_GENERAL.csv"  # a CSV, Parquet or Delta path, or a metastore table name
    format: Literal["auto", "csv", "parquet", "delta", "table"] = "auto"


with warnings.catch_warnings():
    # `schema` is the key's name in every profile; on an instance it is the field, not BaseModel's
    # deprecated `schema()` method.
    warnings.filterwarnings("ignore", message='Field name "schema"', category=UserWarning)

    class TablesConfig(_Section):
        # Path-based Delta tables live under `root`; when `schema` is set (e.g. `main.segmentation`)
        # they are metastore tables `<schema>.<name>` instead.
        root: Text = "lakehouse"
        schema: Text = ""
        features: Text = "features"
        segments: Text = "segments"
        imputation: Text = "imputation"
        clustering_candidates: Text = "clustering_candidates"
        quarantine: Text = "quarantine"
        runs: Text = "runs"
        segment_profiles: Text = "segment_profiles"  # per model version: each segment (and the population) per feature
        segment_drivers: Text = "segment_drivers"  # per model version: global and per-segment drivers
        segment_shares: Text = "segment_shares"  # per run date: each segment's share of the scored customers
        segment_lineage: Text = "segment_lineage"  # per model version: ids kept, new, retired, split, merged
        segments_current: Text = "segments_current"  # one row per customer: the segment now (MERGE of the changes, change data feed)
        segment_migrations: Text = "segment_migrations"  # per run date: customers from segment a to b since last night
        drift: Text = "drift"  # per run date: feature PSI and segment share changes, flagged
        night_profile: Text = "night_profile"  # per run date: what the next night's guard compares with
        nights: Text = "nights"  # per run date: PUBLISHING while a run writes the night, PUBLISHED once all is written
        segment_events: Text = "segment_events"  # per run date: one row per customer whose membership changed
        audience_members: Text = "audience_members"  # one row per audience and member: the membership now
        audience_events: Text = "audience_events"  # per run date: who entered and exited each audience, and why
        audience_lift: Text = "audience_lift"  # per audience and segment: treatment against holdout response rates
        models_dir: Text = "lakehouse/models"  # versioned model bundles and the LATEST pointer


# The tables.* keys that name a Delta table (the others are where tables and models live).
TABLE_KEYS = tuple(name for name in TablesConfig.model_fields if name not in ("root", "schema", "models_dir"))


class SparkConfig(_Section):
    app_name: Text = "segmentation"
    master: Text = "local[*]"  # used only when the job builds its own session
    shuffle_partitions: int = Field(8, ge=1)
    log_level: LogLevel = "WARN"
    # Files a write task keeps open before it falls back to sorting its rows by partition value.
    # Our writes each replace one run_date, so one writer suffices and no task sorts or spills
    # (0: Spark's default, the sort).
    concurrent_output_writers: int = Field(4, ge=0)
    extra: Named[Text] = {}  # more Spark SQL settings, applied to the session the job runs in


class ContractConfig(_Section):
    # More bad rows than this share stops the night before anything is written: an upstream break.
    max_quarantine_share: Share = 0.05
    tenure_min: float = Field(6.0, ge=0)
    tenure_max: float = Field(12.0, ge=0)
    # The bundled data holds CASH_ADVANCE_FREQUENCY up to 1.5 (8 rows); other shares stay in [0, 1].
    max_cash_advance_frequency: float = Field(1.5, ge=0)
    # PURCHASES never exceeds ONEOFF + INSTALLMENTS in the bundled data by more than rounding;
    # the reverse happens (19 rows, up to 600) and is tolerated.
    purchases_tolerance: float = Field(0.01, ge=0)

    @model_validator(mode="after")
    def _tenure_range(self) -> "ContractConfig":
        if self.tenure_min > self.tenure_max:
            raise _relation("{low} must not exceed {high}", low=("tenure_min", self.tenure_min),
                            high=("tenure_max", self.tenure_max))
        return self


class ImputationConfig(_Section):
    columns: Many[RawColumn] = ["MINIMUM_PAYMENTS", "CREDIT_LIMIT"]
    # exact: Spark's `percentile` (the same value as pandas' median); approx: `percentile_approx`, one pass.
    method: Literal["exact", "approx"] = "approx"
    accuracy: Int32 = 10000  # percentile_approx's relative error is 1/accuracy


class GuardConfig(_Section):
    # The night against the last published night before it (docs/data-contract.md, from night to
    # night): past any threshold the features stage refuses the night before anything is written.
    enabled: bool = True
    accept: bool = False  # --accept-night: take a night past a threshold, with a warning
    max_count_change: float = Field(0.2, ge=0)  # |tonight's customers / last night's - 1|
    max_departed_share: Share = 0.1  # of last night's customers, absent tonight
    max_new_share: Share = 0.2  # of tonight's customers, absent last night
    max_unseen_id_format_share: Share = 0.01  # of tonight's ids, of a shape (A for a letter, 9 for a digit) not seen last night
    max_median_ratio: float = Field(5.0, ge=1)  # a money median over its previous value, or the inverse (cents: ~100)
    median_columns: Many[Literal[tuple(MONEY_COLUMNS)]] = list(MONEY_COLUMNS)
    accuracy: Int32 = 10000  # percentile_approx's relative error of the medians is 1/accuracy
    # Shapes kept per night; a night of more shapes (ids without a format) is not compared on it.
    max_id_shapes: Count = 1000


class FeaturesConfig(_Section):
    ratio_epsilon: float = Field(1e-6, ge=0)  # PAYMENTS / (MINIMUM_PAYMENTS + epsilon)


class SampleConfig(_Section):
    max_rows: Count = 10000  # rows that reach the driver; every clustering candidate and metric sees them
    seed: int = 42


class TransformConfig(_Section):
    # log1p: log(1 + x), zero stays zero, so "no cash advance" vs "a little" is a small step, not
    # the 14-standard-unit cliff log(x + 1e-6) makes of it; log: log(x + offset), the notebook's.
    kind: Literal["log1p", "log"] = "log1p"
    offset: float = Field(1e-6, gt=0)  # kind=log only


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


class SpaceConfig(_Section):
    # The distance the clusterers see. families: only the columns named in `families`, each family
    # scaled to equal total weight (1/sqrt(columns) per column), so no behaviour counts more because
    # more columns describe it; the purchase-type indicators, functions of ONEOFF_PURCHASES and
    # INSTALLMENTS_PURCHASES, stay out (they dominated the distance and made the segments the
    # purchase-type rule). all: every model feature at weight 1, the notebook's space.
    kind: Literal["families", "all"] = "families"
    families: Named[Many[Text]] = DEFAULT_FAMILIES


class KMeansConfig(_Section):
    k: Many[Count] = list(range(2, 11))
    n_init: Count = 4


class GMMConfig(_Section):
    k: Many[Count] = list(range(2, 11))
    n_init: Count = 2


class DBSCANConfig(_Section):
    # An empty eps list derives eps from the k-distance distribution at `eps_quantiles`.
    eps: Many[Annotated[float, Field(gt=0)]] = []
    eps_quantiles: Many[Share] = [0.90, 0.95, 0.98]
    min_samples: Many[Count] = [10, 20]


class StabilityConfig(_Section):
    resamples: int = Field(3, ge=0)  # 0 skips the stability measure
    fraction: float = Field(0.8, gt=0, le=1)


class GuardrailsConfig(_Section):
    enabled: bool = True
    min_segments: Count = 3
    max_segments: Count = 8
    min_segment_share: Share = 0.02
    max_noise_share: Share = 0.10
    # A segment holding most customers is the base, not an audience a campaign can target.
    max_segment_share: float = Field(0.5, gt=0, le=1)
    # A labelling that a `rule_depth`-level decision tree on the raw columns reproduces for more
    # than this share of customers is a rule in disguise, not a behavioural segmentation.
    max_rule_agreement: Share = 0.90

    @model_validator(mode="after")
    def _segment_range(self) -> "GuardrailsConfig":
        if self.min_segments > self.max_segments:
            raise _relation("{low} must not exceed {high}", low=("min_segments", self.min_segments),
                            high=("max_segments", self.max_segments))
        return self


class SelectionConfig(_Section):
    """How the winner is chosen among the candidates that passed the guardrails.

    One silhouette from one sample flips between segmentations whose scores differ by less
    than their noise (k=4 and k=7 on the bundled data). Each passing candidate's labels are
    scored again on `resamples` random subsets of the metric rows (the same subsets for every
    candidate); candidates whose mean is within `noise_sd` standard deviations of the paired
    difference to the best (at least `tie_tolerance`) are tied, and the tie goes to the fewest
    segments. Measured in docs/how-it-works.md#choosing-a-segmentation.
    """

    resamples: int = Field(20, ge=0)  # 0: one silhouette per candidate, ties broken by stability
    # Half of the rows: the spread of a statistic over half-samples is about its sampling
    # spread at the full sample's size (what another sample of the same size would give).
    fraction: float = Field(0.5, gt=0, lt=1)
    noise_sd: float = Field(1.0, ge=0)
    # A retrain keeps the champion's structure (algorithm and number of segments) unless the
    # candidate it would otherwise choose has a mean silhouette this much higher, on the same
    # resamples. `reshape: true` (the train's --reshape) takes that candidate regardless.
    reshape_margin: float = Field(0.01, ge=0)
    reshape: bool = False


class ClusteringConfig(_Section):
    random_state: Seed = 42
    algorithms: Many[Literal["kmeans", "dbscan", "gmm"]] = ["kmeans", "dbscan", "gmm"]
    kmeans: KMeansConfig = KMeansConfig()
    gmm: GMMConfig = GMMConfig()
    dbscan: DBSCANConfig = DBSCANConfig()
    # drop: DBSCAN's metrics on its non-noise rows only (the notebook, which flatters it);
    # cluster: noise rows count as one more group, so noise is not free.
    dbscan_noise_in_silhouette: Literal["drop", "cluster"] = "cluster"
    stability: StabilityConfig = StabilityConfig()
    guardrails: GuardrailsConfig = GuardrailsConfig()
    tie_tolerance: float = Field(0.005, ge=0)  # silhouettes this close are always a tie (see `selection`)
    selection: SelectionConfig = SelectionConfig()
    # Silhouette is quadratic in rows: metrics and stability refits see at most this many
    # rows of the sample, the same rows for every candidate.
    metric_max_rows: int = Field(5000, ge=2)
    rule_depth: Count = 2  # depth of the shallow tree whose agreement measures "a rule in disguise"


class ForestConfig(_Section):
    # Sized by `python -m benchmarks.forest_sizing` (README: forest sizing): scoring time is almost
    # proportional to the number of trees, and 40 trees of depth <= 12 with leaves of >= 5 rows
    # agree with the notebook's 150 full-depth trees on 98.6% of the sample at ~4x the speed and
    # a sixth of the bundle size, with macro-F1 within 0.008.
    n_estimators: Count = 40
    max_depth: Optional[Count] = 12  # None: full depth
    min_samples_leaf: Count = 5
    class_weight: Optional[Literal["balanced", "balanced_subsample"]] = "balanced"
    test_size: float = Field(0.3, gt=0, lt=1)
    random_state: Seed = 42
    # Held-out agreement with the clusterer below this: no usable model. Macro-F1 is at most 1;
    # a higher floor keeps every model unusable, and the run says so.
    min_macro_f1: float = Field(0.90, ge=0)


class ExplainConfig(_Section):
    permutation_repeats: Count = 5  # shuffles per feature of the forest's permutation importance
    trait_threshold: float = Field(0.4, gt=0)  # population standard deviations a persona trait needs
    report: bool = True  # write report.html and report.md next to the bundle


class LineageConfig(_Section):
    # A new segment keeps a current segment's id when their overlap covers this share of either.
    min_overlap: float = Field(0.5, gt=0, le=1)
    # A source (or destination) covering this share of a segment counts in a split or merge.
    part: float = Field(0.25, gt=0, le=1)


class TrainConfig(_Section):
    retrain: bool = False  # nightly trains only when no model exists, unless this is true
    # BLAS/OpenMP threads of the driver-side fits; 0 leaves the libraries' default (every core).
    # One thread: the driver shares its cores with Spark, and busy-waiting BLAS threads then slow
    # GMM fits ~20x.
    blas_threads: int = Field(1, ge=0)
    sample: SampleConfig = SampleConfig()
    transform: TransformConfig = TransformConfig()
    space: SpaceConfig = SpaceConfig()
    clustering: ClusteringConfig = ClusteringConfig()
    forest: ForestConfig = ForestConfig()
    explain: ExplainConfig = ExplainConfig()
    lineage: LineageConfig = LineageConfig()

    @model_validator(mode="after")
    def _sample_holds_every_k(self) -> "TrainConfig":
        for algorithm in ("kmeans", "gmm"):
            ks = getattr(self.clustering, algorithm).k
            if algorithm in self.clustering.algorithms and ks and max(ks) > self.sample.max_rows:
                raise _relation("{rows} must be at least the largest {k}: a sample cannot hold more segments than rows",
                                rows=("sample.max_rows", self.sample.max_rows),
                                k=(f"clustering.{algorithm}.k", max(ks)))
        return self


class ScoreConfig(_Section):
    # empty: the registry's champion (the latest saved model without a registry); N: registered
    # version N; a bundle folder name (e.g. 20261125T140200Z-ab12cd): that folder's bundle.
    model_version: Text = ""
    arrow_batch_rows: Int32 = 100000  # Spark's maxRecordsPerBatch


class DriftConfig(_Section):
    bins: int = Field(10, ge=2)  # PSI bins at the training sample's quantiles (stored in the bundle)
    psi_threshold: float = Field(0.2, gt=0)  # a feature's PSI above this flags drift
    # A segment's share moving more than this many points since the last night flags drift.
    share_change_points: float = Field(5.0, gt=0, le=100)
    retrain_on_drift: bool = False  # nightly retrains before scoring when the features drifted


class RegistryConfig(_Section):
    # MLflow: each train logs a run (config, every candidate's metrics, the forest's held-out
    # figures, the report) and registers a version of `model_name`; a version that passes every
    # quality gate becomes `alias`, which scoring uses by default.
    enabled: bool = True
    tracking_uri: Text = ""  # empty: sqlite:///<tables.root>/mlflow/mlflow.db, embedded, no server
    registry_uri: Text = ""  # empty: the tracking URI
    artifact_location: Text = ""  # empty: <tables.root>/mlflow/artifacts (a new experiment's only)
    experiment: Text = "segmentation"
    model_name: Text = "segmentation"  # on Unity Catalog: catalog.schema.model
    alias: Text = "champion"


class ServingConfig(_Section):
    # The `serve` job's real-time scoring server. A request over `max_bytes` is answered 413
    # before its body is read further; one of more than `max_rows` customers, 413 before scoring.
    host: Text = "127.0.0.1"  # loopback: put a proxy (TLS, authentication) in front to serve others
    port: int = Field(5000, ge=1, le=65535)
    max_rows: int = Field(1000, ge=1, le=1_000_000)
    max_bytes: int = Field(1_048_576, ge=1024, le=1_073_741_824)  # 1 MiB; a customer is ~400 bytes of JSON


class RunsConfig(_Section):
    # A RUNNING row older than this, of any job and date, belongs to a run that died without
    # recording its end; the next run of any job marks it ABANDONED. Younger ones of other jobs or
    # dates stay RUNNING: runs side by side are legitimate.
    stale_after_hours: float = Field(24.0, gt=0, le=24 * 366)


class MaintainConfig(_Section):
    # The `maintain` job (docs/tables.md, maintenance): compaction, VACUUM, retention, old models.
    # VACUUM deletes the files no table version newer than this needs, so time travel reaches back
    # this far. A dead night is put back by time travel to before its run's first commit, and the
    # run stays RUNNING (its night untouched) up to runs.stale_after_hours; maintain sets dead
    # nights aside before it vacuums. So this is at least runs.stale_after_hours (checked below).
    # Whole hours: Delta rounds VACUUM's retention to the hour. Also each table's
    # delta.deletedFileRetentionDuration.
    vacuum_retention_hours: int = Field(168, ge=1)
    # delta.logRetentionDuration: the commit history (DESCRIBE HISTORY, the change feed's versions);
    # time travel needs the log as well as the files, so it covers vacuum_retention_hours.
    log_retention_days: int = Field(30, ge=1)
    # Bundle folders kept besides the champion, LATEST and every registered version's: the newest N.
    keep_models: int = Field(5, ge=0)
    # A `.tmp` staging entry untouched for this long belongs to a save that crashed.
    staging_max_age_hours: float = Field(24.0, gt=0)
    compact: bool = True  # OPTIMIZE (bin-packing) each table
    vacuum: bool = True
    tables: Many[Literal[TABLE_KEYS]] = []  # the tables.* keys to maintain; empty: every table
    # VACUUM lists a table's files in this many tasks (Spark's default, 10000, is for huge tables).
    listing_parallelism: Count = 16


AudienceName = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
SegmentId = Annotated[int, Field(ge=0)]


class EnteredFromConfig(_Section):
    # The customer moved into its segment tonight or on one of the `within_nights - 1` published
    # nights before, from one of `segments` (segment_events' `moved`).
    segments: Annotated[Many[SegmentId], Field(min_length=1)]
    within_nights: Count


class AudienceConfig(_Section):
    """One campaign audience: who is in it tonight, and its holdout (docs/tables.md#audiences)."""

    name: AudienceName
    segments: Annotated[Many[SegmentId], Field(min_length=1)]  # stable segment ids
    min_confidence: Optional[Share] = None  # the night's segment_confidence at least this
    # In the same segment on each of the last N published nights (tonight included): no flapping.
    min_nights_in_segment: Optional[Count] = None
    entered_from: Optional[EnteredFromConfig] = None
    # A suppression list: a CSV, Parquet or Delta path, or a table, with a CUST_ID column.
    exclude: Text = ""
    # sha2(salt:CUST_ID)'s first 8 hex digits / 2^32 below this: holdout. Changing either moves customers.
    holdout_share: Annotated[float, Field(ge=0, lt=1)]
    salt: Annotated[Text, Field(min_length=1)]
    exclusive_group: Text = ""  # within a group a customer is in one audience: the lowest priority
    priority: int = Field(0, ge=0)


class LiftConfig(_Section):
    # The lift job's page (the table is tables.audience_lift); relative to the project.
    report: Text = "lakehouse/reports/audience_lift.html"
    confidence: float = Field(0.95, gt=0, lt=1)  # of ci_low/ci_high (Newcombe's hybrid score interval)


class MonitorConfig(_Section):
    # The monitoring page (`report --nights N`, docs/how-it-works.md): the last `nights` published
    # nights' shares, drift, migrations, quarantine, run durations and flags in one HTML file.
    nights: Count = 30
    output: Text = ""  # empty: monitor.html beside tables.models_dir (lakehouse/monitor.html locally)


class ReportConfig(_Section):
    # The training report's customer sample (report_data/sample.parquet, beside the model and in
    # MLflow): full: the sampled customers' raw balances, limits and payments (no CUST_ID); pseudonymised:
    # rows shuffled, each raw value rounded to 2 significant digits, the components and silhouettes
    # to 2 decimals; off: no rows, the scatter, silhouette and distribution charts say so
    # (docs/security.md#secrets-and-personal-data).
    # YAML reads a bare `off` as false: taken as "off" (`--set report.sample=off` means that).
    sample: Annotated[Literal["full", "pseudonymised", "off"],
                      BeforeValidator(lambda v: "off" if v is False else v)] = "full"


class Config(_Section):
    input: InputConfig = InputConfig()
    tables: TablesConfig = TablesConfig()
    spark: SparkConfig = SparkConfig()
    contract: ContractConfig = ContractConfig()
    imputation: ImputationConfig = ImputationConfig()
    features: FeaturesConfig = FeaturesConfig()
    guard: GuardConfig = GuardConfig()
    train: TrainConfig = TrainConfig()
    score: ScoreConfig = ScoreConfig()
    drift: DriftConfig = DriftConfig()
    registry: RegistryConfig = RegistryConfig()
    serving: ServingConfig = ServingConfig()
    runs: RunsConfig = RunsConfig()
    maintain: MaintainConfig = MaintainConfig()
    audiences: list[AudienceConfig] = []
    lift: LiftConfig = LiftConfig()
    monitor: MonitorConfig = MonitorConfig()
    report: ReportConfig = ReportConfig()

    @model_validator(mode="after")
    def _audiences_apart(self) -> "Config":
        seen: dict[str, int] = {}
        ranks: dict[tuple[str, int], int] = {}
        for i, audience in enumerate(self.audiences):
            if audience.name in seen:
                raise _relation("{name} is also the name of {other}: audience names are unique",
                                name=(f"audiences[{i}].name", audience.name),
                                other=(f"audiences[{seen[audience.name]}].name", audience.name))
            seen[audience.name] = i
            if audience.exclusive_group:
                rank = (audience.exclusive_group, audience.priority)
                if rank in ranks:
                    raise _relation("{priority} is also {other}'s in exclusive group {group}: priorities in a group "
                                    "are unique", priority=(f"audiences[{i}].priority", audience.priority),
                                    other=(f"audiences[{ranks[rank]}].priority", audience.priority),
                                    group=(f"audiences[{i}].exclusive_group", audience.exclusive_group))
                ranks[rank] = i
        return self

    @model_validator(mode="after")
    def _retention_covers_time_travel(self) -> "Config":
        m = self.maintain
        if m.vacuum_retention_hours < self.runs.stale_after_hours:
            raise _relation("{vacuum} must be at least {stale}: a dead night is put back by time travel to before "
                            "its run, which may stay RUNNING that long", vacuum=("maintain.vacuum_retention_hours",
                            m.vacuum_retention_hours), stale=("runs.stale_after_hours", self.runs.stale_after_hours))
        if m.log_retention_days * 24 < m.vacuum_retention_hours:
            raise _relation("{log} must cover {vacuum}: time travel needs the log as well as the files",
                            log=("maintain.log_retention_days", m.log_retention_days),
                            vacuum=("maintain.vacuum_retention_hours", m.vacuum_retention_hours))
        return self


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
    try:
        return Config.model_validate(merged)
    except ValidationError as exc:
        raise ConfigError("; ".join(_describe(error) for error in exc.errors(include_url=False))) from None


def _describe(error: Mapping[str, Any]) -> str:
    """One of pydantic's errors as the loader states it: the dotted key, what it expects, what it got."""
    loc, kind = tuple(error["loc"]), error["type"]
    key = _dotted(loc)
    if kind == "extra_forbidden":
        section: Any = Config
        for part in loc[:-1]:
            if not isinstance(part, int):  # a list's index stays in the list's item section
                section = _section_in(section.model_fields[part].annotation)
        return (f"unknown config key {key} (known under {_dotted(loc[:-1]) or 'top level'}: "
                f"{', '.join(sorted(section.model_fields))})")
    if kind == "relation":
        ctx = error["ctx"]
        named = {name: f"{_dotted(loc + tuple(path.split('.')))} ({value})"
                 for name, (path, value) in ctx["keys"].items()}
        return f"config key {ctx['rule'].format(**named)}"
    if kind == "model_type":
        expected = "a section (mapping)"
    elif kind == "literal_error":
        expected = f"one of {error['ctx']['expected']}"
    else:
        expected = error["msg"].removeprefix("Input should be ")
    return f"config key {key} must be {expected}, got {error['input']!r}"


def _section_in(annotation: Any) -> Any:
    """The section class an annotation holds: itself, or inside a list or an Optional."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _section_in(arg)
        if found is not None:
            return found
    return None


def _dotted(loc: tuple[Any, ...]) -> str:
    """('train', 'clustering', 'kmeans', 'k', 1) -> 'train.clustering.kmeans.k[1]'."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else str(part)
    return text


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


def resolve_path(value: str, base: Path) -> str:
    """Relative paths in config are relative to the project (the folder holding conf/)."""
    if not value or "://" in value or value.startswith("/"):
        return value
    return str((base / value).resolve())
