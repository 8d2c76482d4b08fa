"""Synthetic credit-card customers in the raw table's schema, built from Spark column expressions.

Every value is a function of (seed, row id) through `xxhash64`, so a seed gives the same rows
whatever the partitioning, and no row passes through the driver: 100M rows cost what writing
them costs. A row is made in four steps:

1. an archetype, drawn with `ARCHETYPES`' weights: which of one-off purchases, instalment
   purchases and cash advances the customer uses (the zero pattern of the three amounts);
2. sixteen correlated standard normals, one per behaviour (a Gaussian copula with the archetype's
   correlation, `LATENT_CORRELATIONS`);
3. each column from its normal through the archetype's marginal: amounts log-normal with a share
   of exact zeros, active months out of TENURE as ceil(tenure * sigmoid(a + b * z)), counts
   rounded log-normals;
4. the data contract on top: PURCHASES is the sum of its parts, a frequency or count is zero
   exactly when its amount is, MINIMUM_PAYMENTS is missing when nothing was paid.

All parameters were fitted offline (pandas, scipy) on data/CC_GENERAL.csv, 8,950 customers:
the weights are the shares of the seven zero patterns (neither purchases nor cash advances occurs
once, so that pattern is left out); amounts are least-squares fits of log(amount), and of
logit(usage / USAGE_MAX), on the normal quantiles above the zero share; months and counts are
maximum-likelihood fits of their discretised forms; each archetype's correlation is that of its
customers' normal scores (ranks), its eigenvalues floored at 0.02 to keep it positive definite
(`python -m benchmarks.generator_dependence` fits and prints them). One correlation pooled over
the archetypes gave each the average dependence (one-off buyers' purchase months follow their
one-off months at 1.00, mixed buyers' at 0.69), blurring what sets segments apart: the notebook
forest on the model's labels grew larger on generated customers than on the real ones.
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass
from importlib import resources
from statistics import NormalDist

import numpy as np
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from segmentation.core.columns import ID_COLUMN, RAW_SCHEMA
from segmentation.core.errors import ArgumentError

ID_PREFIX = "G"  # real ids look like C10001; generated ones like G000000001
ID_DIGITS = 9
AMOUNT_CAP = 100_000.0  # about twice the largest amount in the real file; log-normal tails go further
USAGE_MAX = 1.2  # BALANCE / CREDIT_LIMIT above this: 0.3% of the real file
CREDIT_LIMIT_STEP = 50.0  # real limits are multiples of 50
CREDIT_LIMIT_RANGE = (50.0, 30_000.0)
ROWS_PER_PARTITION = 2_000_000  # about 100 MB of Parquet per partition
WRITE_FORMATS = ("parquet", "delta")


@dataclass(frozen=True)
class TwoPiece:
    """mu + sigma * z with sigma_low below the median and sigma_high above (a two-piece normal,
    which gives the skew one sigma cannot); the value is exactly 0 for the lowest `zero_share` of z.
    Amounts are exp() of it, a limit usage USAGE_MAX * sigmoid() of it."""

    mu: float
    sigma_low: float
    sigma_high: float
    zero_share: float = 0.0


@dataclass(frozen=True)
class Months:
    """Active months: ceil(tenure * sigmoid(a + b * z)) in [1, tenure]; 0 for the lowest `zero_share` of z."""

    a: float
    b: float
    zero_share: float = 0.0


@dataclass(frozen=True)
class Count:
    """round(exp(mu + sigma * z)), never fewer than the active months."""

    mu: float
    sigma: float


@dataclass(frozen=True)
class Activity:
    amount: TwoPiece
    months: Months


@dataclass(frozen=True)
class Archetype:
    """One behaviour; `None` marks an activity the archetype never has (amount, months, count all 0)."""

    name: str
    weight: float
    limit_usage: Activity  # BALANCE / CREDIT_LIMIT, and months with a balance
    one_off: Activity | None
    instalments: Activity | None
    purchase_months: Months | None
    purchases_trx: Count | None
    cash_advance: Activity | None
    cash_advance_trx: Count | None
    credit_limit: TwoPiece
    payments: TwoPiece
    minimum_payments: TwoPiece
    minimum_payments_missing: float  # share missing among customers who paid something
    full_payment_months: Months  # PRC_FULL_PAYMENT = months / tenure; zero_share among those who paid


PARAMETERS_FILE = "parameters.json"  # beside this module: fitted numbers are data, not code


def _activity(d: dict | None) -> Activity | None:
    return None if d is None else Activity(TwoPiece(**d["amount"]), Months(**d["months"]))


def _optional(kind: type, d: dict | None):
    return None if d is None else kind(**d)


def _archetype_of(d: dict) -> Archetype:
    return Archetype(
        name=d["name"], weight=d["weight"], limit_usage=_activity(d["limit_usage"]), one_off=_activity(d["one_off"]),
        instalments=_activity(d["instalments"]), purchase_months=_optional(Months, d["purchase_months"]),
        purchases_trx=_optional(Count, d["purchases_trx"]), cash_advance=_activity(d["cash_advance"]),
        cash_advance_trx=_optional(Count, d["cash_advance_trx"]), credit_limit=TwoPiece(**d["credit_limit"]),
        payments=TwoPiece(**d["payments"]), minimum_payments=TwoPiece(**d["minimum_payments"]),
        minimum_payments_missing=d["minimum_payments_missing"], full_payment_months=Months(**d["full_payment_months"]),
    )


def _load_parameters() -> dict:
    return json.loads(resources.files(__package__).joinpath(PARAMETERS_FILE).read_text())


_PARAMETERS = _load_parameters()
# Fitted on data/CC_GENERAL.csv (see the module docstring).
ARCHETYPES = tuple(_archetype_of(a) for a in _PARAMETERS["archetypes"])
TENURE_SHARES = {int(months): share for months, share in _PARAMETERS["tenure_shares"].items()}
LATENT_CORRELATIONS = {name: tuple(tuple(row) for row in matrix)
                       for name, matrix in _PARAMETERS["latent_correlations"].items()}
# The copula's variables, in the order of each LATENT_CORRELATIONS matrix's rows and columns.
LATENT = tuple(_PARAMETERS["latent"])

# One Cholesky factor per archetype, in ARCHETYPES' order.
_CHOLESKY = [np.linalg.cholesky(np.array(LATENT_CORRELATIONS[a.name], dtype=float)).tolist() for a in ARCHETYPES]
# Hash streams: one per independent uniform a row needs.
_ARCHETYPE_STREAM, _MISSING_STREAM, _NORMAL_STREAMS = 0, 1, 2
_ARCHETYPE, _MISSING_DRAW = "_archetype", "_missing_draw"
_KEY = "_key"  # what a row's draws hash: its id, or another key for the same id's other profile


def generate_customers(spark: SparkSession, rows: int, seed: int, partitions: int | None = None) -> DataFrame:
    """`rows` synthetic customers with RAW_SCHEMA's columns; the same seed gives the same rows,
    however many partitions. Default partitions: one per ROWS_PER_PARTITION rows, at least
    Spark's default parallelism."""
    if rows < 0:
        raise ArgumentError(f"rows must be 0 or more, got {rows}")
    ids = spark.range(0, rows, 1, _partitions(spark, rows, partitions)).withColumn(_KEY, F.col("id"))
    keyed = ids.withColumn(_ARCHETYPE, _archetype(_uniform(seed, _ARCHETYPE_STREAM)))
    return _raw(_customers(keyed, seed))


def _raw(customers: DataFrame) -> DataFrame:
    return customers.select(*[F.col(f.name).cast(f.dataType) for f in RAW_SCHEMA.fields])


def _partitions(spark: SparkSession, rows: int, partitions: int | None) -> int:
    if partitions is not None and partitions < 1:
        raise ArgumentError(f"partitions must be 1 or more, got {partitions}")
    if partitions is None:
        partitions = max(spark.sparkContext.defaultParallelism, math.ceil(rows / ROWS_PER_PARTITION))
    return partitions


def _customers(keyed: DataFrame, seed: int) -> DataFrame:
    """`id`, the behaviour columns and CUST_ID of each row of `keyed` (`id`, `_key`, `_archetype`):
    every draw but the archetype hashes `_key`, so one id can have more than one profile."""
    normals = _standard_normals(seed, len(LATENT))
    draws = keyed.select(
        "id",
        _ARCHETYPE,
        _uniform(seed, _MISSING_STREAM).alias(_MISSING_DRAW),
        *[n.alias(f"_e{j}") for j, n in enumerate(normals)],
    )
    latent = draws.select(
        "id",
        _ARCHETYPE,
        _MISSING_DRAW,
        *[_correlated(j).alias(_latent(name)) for j, name in enumerate(LATENT)],
    )
    return latent.transform(_behaviour).withColumn(
        ID_COLUMN, F.format_string(f"{ID_PREFIX}%0{ID_DIGITS}d", F.col("id"))
    )


# A Delta table the generator wrote carries this as its commits' userMetadata: `generate` may
# replace its own output, and refuses any other Delta table.
GENERATED_TAG = "segmentation-generate"


def write_customers(df: DataFrame, path: str, fmt: str = "parquet") -> None:
    """Writes (replacing) the generated table as Parquet or Delta at `path`."""
    if fmt not in WRITE_FORMATS:
        raise ArgumentError(f"format must be one of {', '.join(WRITE_FORMATS)}, got {fmt!r}")
    writer = df.write.format(fmt).mode("overwrite")
    if fmt == "delta":
        writer = writer.option("userMetadata", GENERATED_TAG)
    writer.save(path)


# ---------------------------------------------------------------------------------------------
# nights: one population, night after night


@dataclass(frozen=True)
class NightParams:
    """How a generated population changes from one night to the next (night 1 is
    `generate_customers`' population unchanged). Shares are per night.

    movement: standard deviation of the log of each night's factor on BALANCE, PAYMENTS and
        MINIMUM_PAYMENTS (drawn per customer and night from night 2 on: movement, not a walk);
    move_share: of the customers of the night before, those whose whole profile switches to one
        of another archetype (the next switch takes them back to their first);
    departure_share: of the customers of the night before, those absent from this night on;
    arrival_share: new customers each night from night 2 on, as a share of the first night's rows;
    drift_from: from this night on, every money column times `drift_scale` (None: no drift).
    """

    movement: float = 0.02
    move_share: float = 0.01
    departure_share: float = 0.005
    arrival_share: float = 0.005
    drift_from: int | None = None
    drift_scale: float = 1.5

    def __post_init__(self) -> None:
        for name in ("movement", "move_share", "departure_share", "arrival_share"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ArgumentError(f"{name} must be in [0, 1], got {value}")
        if self.drift_from is not None and self.drift_from < 1:
            raise ArgumentError(f"drift_from must be a night, 1 or later, got {self.drift_from}")
        if not 0.0 < self.drift_scale <= MAX_DRIFT_SCALE:
            raise ArgumentError(f"drift_scale must be in (0, {MAX_DRIFT_SCALE:g}], got {self.drift_scale}")


MAX_DRIFT_SCALE = 100.0  # keeps drifted amounts far inside the contract's float32 range
# The second profile's draws hash id + this: above every id (ID_DIGITS keeps ids under 10**9).
OTHER_PROFILE_KEY = 2**40
# Hash streams of the nights, apart from the customers' own (0 to 2 + len(LATENT)).
_DEPARTURE_STREAM, _PHASE_STREAM, _OTHER_ARCHETYPE_STREAM, _MOVEMENT_STREAMS = 1000, 1001, 1002, 1003
_AGE, _PROFILE = "_age", "_profile"
_OWN, _WIDTH, _START, _V = "_own", "_width", "_start", "_v"
# Money columns a drift scales, with the decimals the generator rounds them to; PURCHASES is their sum.
_DRIFTED = {"BALANCE": 6, "ONEOFF_PURCHASES": 2, "INSTALLMENTS_PURCHASES": 2, "CASH_ADVANCE": 6,
            "CREDIT_LIMIT": 2, "PAYMENTS": 6, "MINIMUM_PAYMENTS": 6}


def night(spark: SparkSession, rows: int, seed: int, n: int, params: NightParams = NightParams(),
          partitions: int | None = None) -> DataFrame:
    """Night `n` (from 1) of the population `generate_customers(spark, rows, seed)` starts, with
    RAW_SCHEMA's columns: a function of (rows, seed, n, params) alone, so night 5 needs no night 1-4."""
    population = _population(spark, rows, seed, n, params, partitions).transform(_with_archetype, seed)
    keyed = population.select(
        "id", (F.col("id") + F.col(_PROFILE) * OTHER_PROFILE_KEY).alias(_KEY), _ARCHETYPE)
    customers = _customers(keyed, seed)
    if n >= 2 and params.movement > 0:
        customers = customers.transform(_moved, seed, n, params.movement)
    if params.drift_from is not None and n >= params.drift_from:
        customers = customers.transform(_drifted, params.drift_scale)
    return _raw(customers)


def night_size(spark: SparkSession, rows: int, seed: int, n: int, params: NightParams = NightParams()) -> int:
    """How many customers night `n` holds, counted from the ids alone (no behaviour is generated)."""
    return _population(spark, rows, seed, n, params, None).count()


def night_profiles(spark: SparkSession, rows: int, seed: int, n: int, params: NightParams = NightParams()) -> DataFrame:
    """CUST_ID, `archetype` (its name) and `profile` (0 the first, 1 the other) of night `n`'s
    customers: who moved between two nights, without scoring them."""
    names = F.array(*[F.lit(a.name) for a in ARCHETYPES])
    population = _population(spark, rows, seed, n, params, None).transform(_with_archetype, seed)
    return population.select(
        F.format_string(f"{ID_PREFIX}%0{ID_DIGITS}d", F.col("id")).alias(ID_COLUMN),
        F.element_at(names, F.col(_ARCHETYPE)).alias("archetype"),
        F.col(_PROFILE).cast("int").alias("profile"),
    )


def night_path(output: str, n: int) -> str:
    """Night `n`'s folder under `output`: `output/night=n`, a table each night's `--input` reads."""
    return f"{output.rstrip('/')}/night={n}"


def _population(spark: SparkSession, rows: int, seed: int, n: int, params: NightParams,
                partitions: int | None) -> DataFrame:
    """`id`, `_age` (nights since arrival) and `_profile` of night `n`'s customers.

    Ids 0..rows-1 arrive on night 1, then round(arrival_share * rows) new ids each night. A
    customer is there `age` nights after arriving with probability (1 - departure_share) ** age
    (one uniform each, so once gone, gone). The profile flips each time q * age + phase, with the
    phase uniform per customer, passes an integer: a share q of customers flips each night.
    """
    if rows < 0:
        raise ArgumentError(f"rows must be 0 or more, got {rows}")
    if n < 1:
        raise ArgumentError(f"night must be 1 or later, got {n}")
    per_night = round(params.arrival_share * rows)
    ids = rows + (n - 1) * per_night
    if ids > 10**ID_DIGITS:
        raise ArgumentError(f"night {n} would need {ids} ids, more than {ID_DIGITS} digits hold")
    population = spark.range(0, ids, 1, _partitions(spark, ids, partitions))
    arrival = F.lit(1) if per_night == 0 else F.when(F.col("id") < rows, F.lit(1)).otherwise(
        F.floor((F.col("id") - rows) / per_night) + 2)
    aged = population.withColumn(_AGE, (F.lit(n) - arrival).cast("int"))
    stays = _uniform(seed, _DEPARTURE_STREAM, F.col("id")) <= F.pow(F.lit(1.0 - params.departure_share), F.col(_AGE))
    flips = F.floor(F.col(_AGE) * params.move_share + _uniform(seed, _PHASE_STREAM, F.col("id")))
    return aged.where(stays).withColumn(_PROFILE, (flips % 2).cast("int"))


def _with_archetype(population: DataFrame, seed: int) -> DataFrame:
    """Adds `_archetype`: in the first profile the customer's own (as `generate_customers` draws
    it), in the other one of another archetype, drawn with the others' weights (the own one's
    interval taken out of u). Each step is a column of its own, so no draw is repeated in the plan."""
    weights = np.array([a.weight for a in ARCHETYPES]) / sum(a.weight for a in ARCHETYPES)
    starts = np.concatenate([[0.0], np.cumsum(weights)[:-1]])
    own = population.withColumn(_OWN, _archetype(_uniform(seed, _ARCHETYPE_STREAM, F.col("id"))))
    spread = own.withColumns({
        _WIDTH: F.element_at(F.array(*[F.lit(float(w)) for w in weights]), F.col(_OWN)),
        _START: F.element_at(F.array(*[F.lit(float(x)) for x in starts]), F.col(_OWN)),
        _V: _uniform(seed, _OTHER_ARCHETYPE_STREAM, F.col("id")),
    }).withColumn(_V, F.col(_V) * (1.0 - F.col(_WIDTH)))
    other = spread.withColumn(_V, F.when(F.col(_V) >= F.col(_START), F.col(_V) + F.col(_WIDTH)).otherwise(F.col(_V)))
    chosen = F.when(F.col(_PROFILE) == 1, _archetype(F.col(_V))).otherwise(F.col(_OWN))
    return other.withColumn(_ARCHETYPE, chosen).drop(_OWN, _WIDTH, _START, _V)


def _moved(customers: DataFrame, seed: int, n: int, movement: float) -> DataFrame:
    """Balances and payments times exp(movement * z), z drawn per customer and night; zero stays zero."""
    balance, payments = (F.exp(z * movement) for z in _standard_normals(seed, 2, _MOVEMENT_STREAMS, F.col("id"), F.lit(n)))
    return customers.withColumns({
        "BALANCE": _scaled(F.col("BALANCE"), balance, 6, F.col("CREDIT_LIMIT") * USAGE_MAX),
        "PAYMENTS": _scaled(F.col("PAYMENTS"), payments, 6, F.lit(AMOUNT_CAP)),
        "MINIMUM_PAYMENTS": _scaled(F.col("MINIMUM_PAYMENTS"), payments, 6, F.lit(AMOUNT_CAP)),
    })


def _drifted(customers: DataFrame, scale: float) -> DataFrame:
    """Every money column times `scale`, PURCHASES again the sum of its parts."""
    drifted = customers.withColumns({c: _scaled(F.col(c), F.lit(scale), d) for c, d in _DRIFTED.items()})
    return drifted.withColumn("PURCHASES", F.round(F.col("ONEOFF_PURCHASES") + F.col("INSTALLMENTS_PURCHASES"), 2))


def _scaled(amount: Column, factor: Column, decimals: int, cap: Column | None = None) -> Column:
    """amount * factor as `_money` rounds it, at most `cap`; a missing amount stays missing."""
    value = amount * factor if cap is None else F.least(amount * factor, cap)
    return F.when(amount.isNull(), F.lit(None).cast("double")).otherwise(_money(value, decimals))


# ---------------------------------------------------------------------------------------------
# randomness


def _uniform(seed: int, stream: int, *keys: Column) -> Column:
    """Uniform in (0, 1) from the top 53 bits of xxhash64(seed, stream, keys), by default the row's `_key`."""
    keys = keys or (F.col(_KEY),)
    bits = F.shiftrightunsigned(F.xxhash64(F.lit(seed).cast("long"), F.lit(stream), *keys), 11)
    return (bits.cast("double") + 0.5) / float(2**53)


def _standard_normals(seed: int, count: int, stream: int = _NORMAL_STREAMS, *keys: Column) -> list[Column]:
    """Independent N(0, 1) draws by Box-Muller, two per pair of uniforms from `stream` on."""
    normals: list[Column] = []
    for pair in range((count + 1) // 2):
        radius = F.sqrt(F.log(_uniform(seed, stream + 2 * pair, *keys)) * -2.0)
        angle = _uniform(seed, stream + 2 * pair + 1, *keys) * (2 * math.pi)
        normals += [radius * F.cos(angle), radius * F.sin(angle)]
    return normals[:count]


@functools.cache
def _correlated(j: int) -> Column:
    """Row j of the Cholesky factor times the independent normals: N(0, 1), correlated as fitted.
    Built once per process (see _per_archetype)."""
    terms = []
    for k in range(j + 1):
        weights = [factor[j][k] for factor in _CHOLESKY]
        if any(w != 0.0 for w in weights):
            terms.append(F.col(f"_e{k}") * _per_archetype(weights))
    return sum(terms[1:], terms[0])


def _latent(name: str) -> str:
    return f"_z_{name}"


def _z(name: str) -> Column:
    return F.col(_latent(name))


def _archetype(u: Column) -> Column:
    """1-based position in ARCHETYPES, drawn with their weights."""
    weights = [a.weight for a in ARCHETYPES]
    edges = np.cumsum(weights)[:-1] / sum(weights)
    return sum(((u >= float(edge)).cast("int") for edge in edges), F.lit(1))


def _per_archetype(values: list[float]) -> Column:
    return _archetype_lookup(tuple(float(v) for v in values))


@functools.cache
def _archetype_lookup(values: tuple[float, ...]) -> Column:
    """The value of the row's archetype. Cached: a Column is an immutable expression that any
    plan can reuse, and each night rebuilt hundreds of these over py4j (about 1 s a night)."""
    return F.element_at(F.array(*[F.lit(v) for v in values]), F.col(_ARCHETYPE))


def _below(share: float) -> float:
    """The z under which a standard normal falls with probability `share`."""
    return -math.inf if share <= 0.0 else NormalDist().inv_cdf(share)


# ---------------------------------------------------------------------------------------------
# marginals: a latent normal -> a column value


def _two_piece(z: Column, params: list[TwoPiece | None]) -> tuple[Column, Column]:
    """(zero, value): whether z falls in the zero share (always, without the activity), and the
    two-piece normal's value."""
    mu = _per_archetype([p.mu if p else 0.0 for p in params])
    low = _per_archetype([p.sigma_low if p else 0.0 for p in params])
    high = _per_archetype([p.sigma_high if p else 0.0 for p in params])
    floor = _per_archetype([_below(p.zero_share) if p else math.inf for p in params])
    return z < floor, mu + F.when(z < 0, low).otherwise(high) * z


def _amount(z: Column, params: list[TwoPiece | None]) -> Column:
    zero, value = _two_piece(z, params)
    return F.when(zero, F.lit(0.0)).otherwise(F.least(F.exp(value), F.lit(AMOUNT_CAP)))


def _usage(z: Column, params: list[TwoPiece]) -> Column:
    zero, value = _two_piece(z, params)
    return F.when(zero, F.lit(0.0)).otherwise(USAGE_MAX / (1.0 + F.exp(-value)))


def _months(z: Column, params: list[Months | None], tenure: Column) -> Column:
    """Active months in [1, tenure], or 0 below the zero share or without the activity."""
    a = _per_archetype([p.a if p else 0.0 for p in params])
    b = _per_archetype([p.b if p else 0.0 for p in params])
    floor = _per_archetype([_below(p.zero_share) if p else math.inf for p in params])
    share = 1.0 / (1.0 + F.exp(-(a + b * z)))
    active = F.least(F.greatest(F.ceil(tenure * share).cast("double"), F.lit(1.0)), tenure)
    return F.when(z < floor, F.lit(0.0)).otherwise(active)


def _count(z: Column, params: list[Count | None], months: Column) -> Column:
    """Transactions: at least one per active month; 0 without any."""
    mu = _per_archetype([p.mu if p else 0.0 for p in params])
    sigma = _per_archetype([p.sigma if p else 0.0 for p in params])
    return F.when(months > 0, F.greatest(F.round(F.exp(mu + sigma * z)), months)).otherwise(F.lit(0.0))


def _tenure(z: Column) -> Column:
    """TENURE_SHARES by thresholds on z: 6 plus the number of cumulative shares z lies above."""
    months = sorted(TENURE_SHARES)
    total = sum(TENURE_SHARES.values())
    cumulative = np.cumsum([TENURE_SHARES[m] for m in months])[:-1] / total
    steps = [(z > _below(float(c))).cast("double") for c in cumulative]
    return sum(steps, F.lit(float(months[0])))


def _money(amount: Column, decimals: int) -> Column:
    """Rounded, and a positive amount never rounds to zero."""
    smallest = 10.0**-decimals
    return F.when(amount > 0, F.greatest(F.round(amount, decimals), F.lit(smallest))).otherwise(F.lit(0.0))


def _of(attribute: str) -> list:
    """One attribute path (e.g. 'one_off.amount') of every archetype, None where it is absent."""
    values = []
    for archetype in ARCHETYPES:
        value = archetype
        for part in attribute.split("."):
            value = None if value is None else getattr(value, part)
        values.append(value)
    return values


def _behaviour(latent: DataFrame) -> DataFrame:
    """The 17 behaviour columns from the latent normals, consistent with one another."""
    tenure = F.col("TENURE")
    limits = latent.withColumns(
        {
            "TENURE": _tenure(_z("TENURE")),
            "CREDIT_LIMIT": _credit_limit(_amount(_z("CREDIT_LIMIT"), _of("credit_limit"))),
        }
    )
    amounts = limits.withColumns(
        {
            "BALANCE": _money(F.col("CREDIT_LIMIT") * _usage(_z("LIMIT_USAGE"), _of("limit_usage.amount")), 6),
            "ONEOFF_PURCHASES": _money(_amount(_z("ONEOFF_PURCHASES"), _of("one_off.amount")), 2),
            "INSTALLMENTS_PURCHASES": _money(_amount(_z("INSTALLMENTS_PURCHASES"), _of("instalments.amount")), 2),
            "CASH_ADVANCE": _money(_amount(_z("CASH_ADVANCE"), _of("cash_advance.amount")), 6),
            "PAYMENTS": _money(_amount(_z("PAYMENTS"), _of("payments")), 6),
            "_minimum_payments": _money(_amount(_z("MINIMUM_PAYMENTS"), _of("minimum_payments")), 6),
        }
    )
    months = amounts.withColumns(
        {
            "_balance_months": F.when(F.col("BALANCE") > 0, _months(_z("BALANCE_FREQUENCY"), _of("limit_usage.months"), tenure))
            .otherwise(F.lit(0.0)),
            "_one_off_months": _months(_z("ONEOFF_PURCHASES_FREQUENCY"), _of("one_off.months"), tenure),
            "_instalment_months": _months(_z("PURCHASES_INSTALLMENTS_FREQUENCY"), _of("instalments.months"), tenure),
            "_any_purchase_months": _months(_z("PURCHASES_FREQUENCY"), _of("purchase_months"), tenure),
            "_cash_advance_months": _months(_z("CASH_ADVANCE_FREQUENCY"), _of("cash_advance.months"), tenure),
            "_full_payment_months": F.when(
                F.col("PAYMENTS") > 0, _months(_z("PRC_FULL_PAYMENT"), _of("full_payment_months"), tenure)
            ).otherwise(F.lit(0.0)),
        }
    )
    one_off, instalments = F.col("_one_off_months"), F.col("_instalment_months")
    purchase_months = months.withColumn(
        "_purchase_months", _purchase_months(F.col("_any_purchase_months"), one_off, instalments, tenure)
    )
    missing = F.col("PAYMENTS") == 0
    missing |= F.col(_MISSING_DRAW) < _per_archetype(_of("minimum_payments_missing"))
    return purchase_months.withColumns(
        {
            "PURCHASES": F.round(F.col("ONEOFF_PURCHASES") + F.col("INSTALLMENTS_PURCHASES"), 2),
            "BALANCE_FREQUENCY": F.col("_balance_months") / tenure,
            "PURCHASES_FREQUENCY": F.col("_purchase_months") / tenure,
            "ONEOFF_PURCHASES_FREQUENCY": one_off / tenure,
            "PURCHASES_INSTALLMENTS_FREQUENCY": instalments / tenure,
            "CASH_ADVANCE_FREQUENCY": F.col("_cash_advance_months") / tenure,
            "PURCHASES_TRX": _count(_z("PURCHASES_TRX"), _of("purchases_trx"), F.col("_purchase_months")),
            "CASH_ADVANCE_TRX": _count(_z("CASH_ADVANCE_TRX"), _of("cash_advance_trx"), F.col("_cash_advance_months")),
            "MINIMUM_PAYMENTS": F.when(missing, F.lit(None).cast("double")).otherwise(F.col("_minimum_payments")),
            "PRC_FULL_PAYMENT": F.col("_full_payment_months") / tenure,
        }
    )


def _purchase_months(drawn: Column, one_off: Column, instalments: Column, tenure: Column) -> Column:
    """Months with any purchase: at least the months of either kind and at most their sum (as in the
    real file: one-off-only buyers' months are their one-off months; instalment-only buyers' may exceed)."""
    lower = F.greatest(one_off, instalments)
    upper = (
        F.when(instalments == 0, one_off)
        .when(one_off == 0, tenure)
        .otherwise(F.least(one_off + instalments, tenure))
    )
    return F.when(lower == 0, F.lit(0.0)).otherwise(F.least(F.greatest(drawn, lower), upper))


def _credit_limit(amount: Column) -> Column:
    low, high = CREDIT_LIMIT_RANGE
    rounded = F.round(amount / CREDIT_LIMIT_STEP) * CREDIT_LIMIT_STEP
    return F.least(F.greatest(rounded, F.lit(low)), F.lit(high))


_RESPONSE_STREAM = 97


def responses(members: DataFrame, effects: dict[int, float], base_rate: float, seed: int,
              response_date) -> DataFrame:
    """Synthetic campaign responses with a known effect: each member of `members` (audience_members
    rows) responds with probability `base_rate`, plus `effects[segment_id]` in treatment (holdout
    never gets it), drawn from (seed, audience, CUST_ID) so a seed gives the same responses."""
    effect = F.lit(0.0)
    for segment_id, value in sorted(effects.items()):
        effect = F.when(F.col("segment_id") == segment_id, F.lit(float(value))).otherwise(effect)
    probability = F.lit(float(base_rate)) + F.when(F.col("group") == "treatment", effect).otherwise(0.0)
    u = _uniform(seed, _RESPONSE_STREAM, F.col("audience"), F.col("CUST_ID"))
    return members.select("CUST_ID", "audience", (u < probability).cast("int").alias("responded"),
                          (u < probability).cast("double").alias("value"),
                          F.lit(response_date).cast("date").alias("response_date"))
