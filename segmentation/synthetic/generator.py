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


def generate_customers(spark: SparkSession, rows: int, seed: int, partitions: int | None = None) -> DataFrame:
    """`rows` synthetic customers with RAW_SCHEMA's columns; the same seed gives the same rows,
    however many partitions. Default partitions: one per ROWS_PER_PARTITION rows, at least
    Spark's default parallelism."""
    if rows < 0:
        raise ArgumentError(f"rows must be 0 or more, got {rows}")
    if partitions is not None and partitions < 1:
        raise ArgumentError(f"partitions must be 1 or more, got {partitions}")
    if partitions is None:
        partitions = max(spark.sparkContext.defaultParallelism, math.ceil(rows / ROWS_PER_PARTITION))
    normals = _standard_normals(seed, len(LATENT))
    draws = spark.range(0, rows, 1, partitions).select(
        "id",
        _archetype(_uniform(seed, _ARCHETYPE_STREAM)).alias(_ARCHETYPE),
        _uniform(seed, _MISSING_STREAM).alias(_MISSING_DRAW),
        *[n.alias(f"_e{j}") for j, n in enumerate(normals)],
    )
    latent = draws.select(
        "id",
        _ARCHETYPE,
        _MISSING_DRAW,
        *[_correlated(j).alias(_latent(name)) for j, name in enumerate(LATENT)],
    )
    customers = latent.transform(_behaviour).withColumn(
        ID_COLUMN, F.format_string(f"{ID_PREFIX}%0{ID_DIGITS}d", F.col("id"))
    )
    return customers.select(*[F.col(f.name).cast(f.dataType) for f in RAW_SCHEMA.fields])


def write_customers(df: DataFrame, path: str, fmt: str = "parquet") -> None:
    """Writes (replacing) the generated table as Parquet or Delta at `path`."""
    if fmt not in WRITE_FORMATS:
        raise ArgumentError(f"format must be one of {', '.join(WRITE_FORMATS)}, got {fmt!r}")
    df.write.format(fmt).mode("overwrite").save(path)


# ---------------------------------------------------------------------------------------------
# randomness


def _uniform(seed: int, stream: int) -> Column:
    """Uniform in (0, 1) from the top 53 bits of xxhash64(seed, stream, id)."""
    bits = F.shiftrightunsigned(F.xxhash64(F.lit(seed).cast("long"), F.lit(stream), F.col("id")), 11)
    return (bits.cast("double") + 0.5) / float(2**53)


def _standard_normals(seed: int, count: int) -> list[Column]:
    """Independent N(0, 1) draws by Box-Muller, two per pair of uniforms."""
    normals: list[Column] = []
    for pair in range((count + 1) // 2):
        radius = F.sqrt(F.log(_uniform(seed, _NORMAL_STREAMS + 2 * pair)) * -2.0)
        angle = _uniform(seed, _NORMAL_STREAMS + 2 * pair + 1) * (2 * math.pi)
        normals += [radius * F.cos(angle), radius * F.sin(angle)]
    return normals[:count]


def _correlated(j: int) -> Column:
    """Row j of the Cholesky factor times the independent normals: N(0, 1), correlated as fitted."""
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
    return F.element_at(F.array(*[F.lit(float(v)) for v in values]), F.col(_ARCHETYPE))


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
