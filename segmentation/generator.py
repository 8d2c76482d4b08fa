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

import math
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from segmentation.errors import ArgumentError
from segmentation.schema import ID_COLUMN, RAW_SCHEMA

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


# Fitted on data/CC_GENERAL.csv (see the module docstring).
ARCHETYPES = (
    Archetype(
        name="cash_advance_only",
        weight=0.2281,
        limit_usage=Activity(TwoPiece(0.5, 2.916, 0.595, zero_share=0.0039), Months(4.058, 3.219)),
        one_off=None,
        instalments=None,
        purchase_months=None,
        purchases_trx=None,
        cash_advance=Activity(TwoPiece(7.153, 1.755, 1.002), Months(-1.647, 1.39)),
        cash_advance_trx=Count(1.295, 1.067),
        credit_limit=TwoPiece(7.994, 0.812, 0.797),
        payments=TwoPiece(6.698, 1.307, 1.202, zero_share=0.0333),
        minimum_payments=TwoPiece(6.265, 1.188, 1.055),
        minimum_payments_missing=0.0041,
        full_payment_months=Months(-7.017, 3.614, zero_share=0.7983),
    ),
    Archetype(
        name="instalments",
        weight=0.201,
        limit_usage=Activity(TwoPiece(-3.944, 2.193, 3.366, zero_share=0.0334), Months(2.709, 2.778)),
        one_off=None,
        instalments=Activity(TwoPiece(5.804, 1.172, 0.979), Months(1.026, 2.269)),
        purchase_months=Months(1.407, 2.431),
        purchases_trx=Count(2.146, 0.815),
        cash_advance=None,
        cash_advance_trx=None,
        credit_limit=TwoPiece(7.644, 0.546, 0.857),
        payments=TwoPiece(6.056, 1.127, 1.043, zero_share=0.0356),
        minimum_payments=TwoPiece(4.992, 0.823, 1.507),
        minimum_payments_missing=0.0248,
        full_payment_months=Months(-2.356, 3.945, zero_share=0.4352),
    ),
    Archetype(
        name="instalments_and_cash",
        weight=0.0515,
        limit_usage=Activity(TwoPiece(0.406, 2.102, 1.061), Months(4.849, 2.549)),
        one_off=None,
        instalments=Activity(TwoPiece(5.886, 1.305, 0.903), Months(0.417, 2.128)),
        purchase_months=Months(0.888, 2.347),
        purchases_trx=Count(2.064, 0.938),
        cash_advance=Activity(TwoPiece(7.225, 1.704, 0.965), Months(-1.755, 1.44)),
        cash_advance_trx=Count(1.267, 1.062),
        credit_limit=TwoPiece(8.006, 0.72, 0.865),
        payments=TwoPiece(7.06, 1.194, 1.005, zero_share=0.0108),
        minimum_payments=TwoPiece(6.678, 1.197, 1.074),
        minimum_payments_missing=0.0,
        full_payment_months=Months(-5.336, 2.573, zero_share=0.7961),
    ),
    Archetype(
        name="one_off",
        weight=0.1197,
        limit_usage=Activity(TwoPiece(-2.466, 2.9, 2.374, zero_share=0.0065), Months(2.459, 3.012)),
        one_off=Activity(TwoPiece(6.166, 1.694, 1.139), Months(-1.509, 2.713)),
        instalments=None,
        purchase_months=Months(-1.504, 2.709),
        purchases_trx=Count(1.199, 1.369),
        cash_advance=None,
        cash_advance_trx=None,
        credit_limit=TwoPiece(8.118, 0.895, 0.774),
        payments=TwoPiece(6.474, 1.501, 1.112, zero_share=0.0467),
        minimum_payments=TwoPiece(5.283, 0.888, 1.236),
        minimum_payments_missing=0.0157,
        full_payment_months=Months(-7.224, 6.305, zero_share=0.7218),
    ),
    Archetype(
        name="one_off_and_cash",
        weight=0.0897,
        limit_usage=Activity(TwoPiece(0.167, 2.182, 0.758, zero_share=0.0012), Months(4.188, 2.634)),
        one_off=Activity(TwoPiece(5.816, 1.681, 1.15), Months(-2.024, 2.177)),
        instalments=None,
        purchase_months=Months(-2.02, 2.172),
        purchases_trx=Count(1.039, 1.27),
        cash_advance=Activity(TwoPiece(7.132, 1.75, 1.048), Months(-1.486, 1.373)),
        cash_advance_trx=Count(1.404, 1.065),
        credit_limit=TwoPiece(8.21, 0.885, 0.72),
        payments=TwoPiece(6.993, 1.304, 1.079, zero_share=0.0311),
        minimum_payments=TwoPiece(6.317, 1.022, 1.093),
        minimum_payments_missing=0.0013,
        full_payment_months=Months(-7.292, 4.104, zero_share=0.7789),
    ),
    Archetype(
        name="mixed",
        weight=0.1963,
        limit_usage=Activity(TwoPiece(-2.075, 1.975, 1.928, zero_share=0.0023), Months(4.411, 2.633)),
        one_off=Activity(TwoPiece(6.691, 1.726, 1.129), Months(-0.543, 2.551)),
        instalments=Activity(TwoPiece(6.335, 1.376, 1.054), Months(0.842, 2.274)),
        purchase_months=Months(2.122, 2.071),
        purchases_trx=Count(3.139, 0.898),
        cash_advance=None,
        cash_advance_trx=None,
        credit_limit=TwoPiece(8.508, 0.917, 0.609),
        payments=TwoPiece(7.234, 1.119, 0.992, zero_share=0.0108),
        minimum_payments=TwoPiece(5.387, 0.502, 1.353),
        minimum_payments_missing=0.0029,
        full_payment_months=Months(-3.594, 4.674, zero_share=0.5178),
    ),
    Archetype(
        name="mixed_and_cash",
        weight=0.1136,
        limit_usage=Activity(TwoPiece(-0.124, 1.729, 1.008), Months(4.569, 2.125)),
        one_off=Activity(TwoPiece(6.503, 1.617, 1.086), Months(-0.939, 1.956)),
        instalments=Activity(TwoPiece(6.123, 1.286, 1.048), Months(0.672, 2.151)),
        purchase_months=Months(1.69, 1.875),
        purchases_trx=Count(3.046, 0.871),
        cash_advance=Activity(TwoPiece(7.098, 1.592, 1.078), Months(-1.526, 1.436)),
        cash_advance_trx=Count(1.448, 1.145),
        credit_limit=TwoPiece(8.513, 0.955, 0.63),
        payments=TwoPiece(7.485, 1.101, 1.028, zero_share=0.0088),
        minimum_payments=TwoPiece(6.549, 0.978, 1.065),
        minimum_payments_missing=0.0,
        full_payment_months=Months(-6.704, 3.858, zero_share=0.7202),
    ),
)
TENURE_SHARES = {6: 0.0228, 7: 0.0212, 8: 0.0219, 9: 0.0196, 10: 0.0264, 11: 0.0408, 12: 0.8474}
LATENT_CORRELATIONS = {
    "cash_advance_only": (
        ( 1.000,  0.141,  0.337,  0.000,  0.000, -0.083,  0.000,  0.000,  0.000, -0.157, -0.010, -0.002,  0.117,  0.239,  0.204, -0.014),
        ( 0.141,  1.000,  0.606,  0.000,  0.000, -0.130,  0.000,  0.000,  0.000,  0.196, -0.024,  0.165, -0.103, -0.004,  0.553, -0.362),
        ( 0.337,  0.606,  1.000,  0.000,  0.000, -0.042,  0.000,  0.000,  0.000,  0.210, -0.018,  0.200,  0.142,  0.131,  0.406, -0.289),
        ( 0.000,  0.000,  0.000,  1.000,  0.000,  0.000,  0.000,  0.000,  0.000,  0.000,  0.000,  0.000,  0.000,  0.000,  0.000,  0.000),
        ( 0.000,  0.000,  0.000,  0.000,  1.000,  0.000,  0.000,  0.000,  0.000,  0.000,  0.000,  0.000,  0.000,  0.000,  0.000,  0.000),
        (-0.083, -0.130, -0.042,  0.000,  0.000,  1.000,  0.000,  0.000,  0.000,  0.483, -0.042,  0.581,  0.575,  0.518,  0.319,  0.120),
        ( 0.000,  0.000,  0.000,  0.000,  0.000,  0.000,  1.000,  0.000,  0.000,  0.000,  0.000,  0.000,  0.000,  0.000,  0.000,  0.000),
        ( 0.000,  0.000,  0.000,  0.000,  0.000,  0.000,  0.000,  1.000,  0.000,  0.000,  0.000,  0.000,  0.000,  0.000,  0.000,  0.000),
        ( 0.000,  0.000,  0.000,  0.000,  0.000,  0.000,  0.000,  0.000,  1.000,  0.000,  0.000,  0.000,  0.000,  0.000,  0.000,  0.000),
        (-0.157,  0.196,  0.210,  0.000,  0.000,  0.483,  0.000,  0.000,  0.000,  1.000, -0.022,  0.856,  0.248,  0.260,  0.253, -0.052),
        (-0.010, -0.024, -0.018,  0.000,  0.000, -0.042,  0.000,  0.000,  0.000, -0.022,  1.000, -0.008, -0.017, -0.018, -0.039,  0.035),
        (-0.002,  0.165,  0.200,  0.000,  0.000,  0.581,  0.000,  0.000,  0.000,  0.856, -0.008,  1.000,  0.294,  0.322,  0.312,  0.004),
        ( 0.117, -0.103,  0.142,  0.000,  0.000,  0.575,  0.000,  0.000,  0.000,  0.248, -0.017,  0.294,  1.000,  0.459,  0.529, -0.093),
        ( 0.239, -0.004,  0.131,  0.000,  0.000,  0.518,  0.000,  0.000,  0.000,  0.260, -0.018,  0.322,  0.459,  1.000,  0.271,  0.421),
        ( 0.204,  0.553,  0.406,  0.000,  0.000,  0.319,  0.000,  0.000,  0.000,  0.253, -0.039,  0.312,  0.529,  0.271,  1.000, -0.331),
        (-0.014, -0.362, -0.289,  0.000,  0.000,  0.120,  0.000,  0.000,  0.000, -0.052,  0.035,  0.004, -0.093,  0.421, -0.331,  1.000),
    ),
    "instalments": (
        ( 1.000,  0.018,  0.009,  0.000,  0.064,  0.000, -0.092,  0.000,  0.049,  0.000,  0.172,  0.000,  0.230,  0.195,  0.289, -0.139),
        ( 0.018,  1.000,  0.690,  0.000,  0.342,  0.000,  0.222,  0.000,  0.231,  0.000,  0.271,  0.000, -0.341,  0.405,  0.694, -0.277),
        ( 0.009,  0.690,  1.000,  0.000,  0.319,  0.000,  0.470,  0.000,  0.457,  0.000,  0.427,  0.000, -0.105,  0.237,  0.483, -0.018),
        ( 0.000,  0.000,  0.000,  1.000,  0.000,  0.000,  0.000,  0.000,  0.000,  0.000,  0.000,  0.000,  0.000,  0.000,  0.000,  0.000),
        ( 0.064,  0.342,  0.319,  0.000,  1.000,  0.000,  0.575,  0.000,  0.578,  0.000,  0.654,  0.000,  0.092,  0.630,  0.225,  0.193),
        ( 0.000,  0.000,  0.000,  0.000,  0.000,  1.000,  0.000,  0.000,  0.000,  0.000,  0.000,  0.000,  0.000,  0.000,  0.000,  0.000),
        (-0.092,  0.222,  0.470,  0.000,  0.575,  0.000,  1.000,  0.000,  0.968,  0.000,  0.819,  0.000, -0.124,  0.177,  0.104,  0.130),
        ( 0.000,  0.000,  0.000,  0.000,  0.000,  0.000,  0.000,  1.000,  0.000,  0.000,  0.000,  0.000,  0.000,  0.000,  0.000,  0.000),
        ( 0.049,  0.231,  0.457,  0.000,  0.578,  0.000,  0.968,  0.000,  1.000,  0.000,  0.847,  0.000, -0.082,  0.216,  0.164,  0.081),
        ( 0.000,  0.000,  0.000,  0.000,  0.000,  0.000,  0.000,  0.000,  0.000,  1.000,  0.000,  0.000,  0.000,  0.000,  0.000,  0.000),
        ( 0.172,  0.271,  0.427,  0.000,  0.654,  0.000,  0.819,  0.000,  0.847,  0.000,  1.000,  0.000,  0.044,  0.304,  0.225,  0.065),
        ( 0.000,  0.000,  0.000,  0.000,  0.000,  0.000,  0.000,  0.000,  0.000,  0.000,  0.000,  1.000,  0.000,  0.000,  0.000,  0.000),
        ( 0.230, -0.341, -0.105,  0.000,  0.092,  0.000, -0.124,  0.000, -0.082,  0.000,  0.044,  0.000,  1.000,  0.199, -0.028,  0.090),
        ( 0.195,  0.405,  0.237,  0.000,  0.630,  0.000,  0.177,  0.000,  0.216,  0.000,  0.304,  0.000,  0.199,  1.000,  0.349,  0.151),
        ( 0.289,  0.694,  0.483,  0.000,  0.225,  0.000,  0.104,  0.000,  0.164,  0.000,  0.225,  0.000, -0.028,  0.349,  1.000, -0.266),
        (-0.139, -0.277, -0.018,  0.000,  0.193,  0.000,  0.130,  0.000,  0.081,  0.000,  0.065,  0.000,  0.090,  0.151, -0.266,  1.000),
    ),
    "instalments_and_cash": (
        ( 1.000,  0.081,  0.193,  0.000,  0.086, -0.061, -0.139,  0.000, -0.009, -0.146,  0.146,  0.014,  0.227,  0.346,  0.233,  0.007),
        ( 0.081,  1.000,  0.423,  0.000,  0.067, -0.124,  0.108,  0.000,  0.124, -0.004,  0.148,  0.091, -0.244, -0.026,  0.667, -0.461),
        ( 0.193,  0.423,  1.000,  0.000,  0.064, -0.056,  0.120,  0.000,  0.132,  0.082,  0.107,  0.083,  0.053,  0.148,  0.356, -0.160),
        ( 0.000,  0.000,  0.000,  1.000,  0.000,  0.000,  0.000,  0.000,  0.000,  0.000,  0.000,  0.000,  0.000,  0.000,  0.000,  0.000),
        ( 0.086,  0.067,  0.064,  0.000,  1.000, -0.007,  0.578,  0.000,  0.572, -0.135,  0.686, -0.107,  0.109,  0.298,  0.258,  0.110),
        (-0.061, -0.124, -0.056,  0.000, -0.007,  1.000, -0.077,  0.000, -0.105,  0.523, -0.043,  0.613,  0.527,  0.440,  0.219,  0.043),
        (-0.139,  0.108,  0.120,  0.000,  0.578, -0.077,  1.000,  0.000,  0.966, -0.082,  0.808, -0.081, -0.142,  0.017,  0.067,  0.034),
        ( 0.000,  0.000,  0.000,  0.000,  0.000,  0.000,  0.000,  1.000,  0.000,  0.000,  0.000,  0.000,  0.000,  0.000,  0.000,  0.000),
        (-0.009,  0.124,  0.132,  0.000,  0.572, -0.105,  0.966,  0.000,  1.000, -0.098,  0.827, -0.092, -0.104,  0.067,  0.101,  0.034),
        (-0.146, -0.004,  0.082,  0.000, -0.135,  0.523, -0.082,  0.000, -0.098,  1.000, -0.087,  0.840,  0.243,  0.197,  0.072, -0.054),
        ( 0.146,  0.148,  0.107,  0.000,  0.686, -0.043,  0.808,  0.000,  0.827, -0.087,  1.000, -0.046, -0.009,  0.195,  0.204,  0.009),
        ( 0.014,  0.091,  0.083,  0.000, -0.107,  0.613, -0.081,  0.000, -0.092,  0.840, -0.046,  1.000,  0.243,  0.254,  0.212, -0.063),
        ( 0.227, -0.244,  0.053,  0.000,  0.109,  0.527, -0.142,  0.000, -0.104,  0.243, -0.009,  0.243,  1.000,  0.514,  0.339, -0.034),
        ( 0.346, -0.026,  0.148,  0.000,  0.298,  0.440,  0.017,  0.000,  0.067,  0.197,  0.195,  0.254,  0.514,  1.000,  0.312,  0.261),
        ( 0.233,  0.667,  0.356,  0.000,  0.258,  0.219,  0.067,  0.000,  0.101,  0.072,  0.204,  0.212,  0.339,  0.312,  1.000, -0.334),
        ( 0.007, -0.461, -0.160,  0.000,  0.110,  0.043,  0.034,  0.000,  0.034, -0.054,  0.009, -0.063, -0.034,  0.261, -0.334,  1.000),
    ),
    "one_off": (
        ( 1.000,  0.007,  0.160, -0.024,  0.000,  0.000, -0.029, -0.030,  0.000,  0.000,  0.091,  0.000,  0.124,  0.202,  0.125,  0.102),
        ( 0.007,  1.000,  0.675,  0.207,  0.000,  0.000,  0.141,  0.141,  0.000,  0.000,  0.190,  0.000, -0.356,  0.208,  0.725, -0.255),
        ( 0.160,  0.675,  1.000,  0.206,  0.000,  0.000,  0.389,  0.389,  0.000,  0.000,  0.365,  0.000, -0.006,  0.140,  0.570,  0.019),
        (-0.024,  0.207,  0.206,  1.000,  0.000,  0.000,  0.532,  0.533,  0.000,  0.000,  0.641,  0.000,  0.250,  0.564,  0.164,  0.290),
        ( 0.000,  0.000,  0.000,  0.000,  1.000,  0.000,  0.000,  0.000,  0.000,  0.000,  0.000,  0.000,  0.000,  0.000,  0.000,  0.000),
        ( 0.000,  0.000,  0.000,  0.000,  0.000,  1.000,  0.000,  0.000,  0.000,  0.000,  0.000,  0.000,  0.000,  0.000,  0.000,  0.000),
        (-0.029,  0.141,  0.389,  0.532,  0.000,  0.000,  1.000,  0.980,  0.000,  0.000,  0.870,  0.000,  0.191,  0.304,  0.139,  0.409),
        (-0.030,  0.141,  0.389,  0.533,  0.000,  0.000,  0.980,  1.000,  0.000,  0.000,  0.870,  0.000,  0.193,  0.306,  0.139,  0.409),
        ( 0.000,  0.000,  0.000,  0.000,  0.000,  0.000,  0.000,  0.000,  1.000,  0.000,  0.000,  0.000,  0.000,  0.000,  0.000,  0.000),
        ( 0.000,  0.000,  0.000,  0.000,  0.000,  0.000,  0.000,  0.000,  0.000,  1.000,  0.000,  0.000,  0.000,  0.000,  0.000,  0.000),
        ( 0.091,  0.190,  0.365,  0.641,  0.000,  0.000,  0.870,  0.870,  0.000,  0.000,  1.000,  0.000,  0.197,  0.414,  0.187,  0.407),
        ( 0.000,  0.000,  0.000,  0.000,  0.000,  0.000,  0.000,  0.000,  0.000,  0.000,  0.000,  1.000,  0.000,  0.000,  0.000,  0.000),
        ( 0.124, -0.356, -0.006,  0.250,  0.000,  0.000,  0.191,  0.193,  0.000,  0.000,  0.197,  0.000,  1.000,  0.255,  0.001,  0.217),
        ( 0.202,  0.208,  0.140,  0.564,  0.000,  0.000,  0.304,  0.306,  0.000,  0.000,  0.414,  0.000,  0.255,  1.000,  0.267,  0.337),
        ( 0.125,  0.725,  0.570,  0.164,  0.000,  0.000,  0.139,  0.139,  0.000,  0.000,  0.187,  0.000,  0.001,  0.267,  1.000, -0.193),
        ( 0.102, -0.255,  0.019,  0.290,  0.000,  0.000,  0.409,  0.409,  0.000,  0.000,  0.407,  0.000,  0.217,  0.337, -0.193,  1.000),
    ),
    "one_off_and_cash": (
        ( 1.000,  0.055,  0.298, -0.043,  0.000, -0.058, -0.131, -0.132,  0.000, -0.189,  0.038, -0.037,  0.127,  0.176,  0.215, -0.011),
        ( 0.055,  1.000,  0.496, -0.109,  0.000,  0.013, -0.051, -0.052,  0.000,  0.153, -0.024,  0.156, -0.203, -0.040,  0.608, -0.391),
        ( 0.298,  0.496,  1.000,  0.010,  0.000,  0.019,  0.098,  0.097,  0.000,  0.149,  0.119,  0.127,  0.112,  0.092,  0.384, -0.210),
        (-0.043, -0.109,  0.010,  1.000,  0.000,  0.113,  0.612,  0.613,  0.000, -0.012,  0.703, -0.024,  0.253,  0.253,  0.092,  0.146),
        ( 0.000,  0.000,  0.000,  0.000,  1.000,  0.000,  0.000,  0.000,  0.000,  0.000,  0.000,  0.000,  0.000,  0.000,  0.000,  0.000),
        (-0.058,  0.013,  0.019,  0.113,  0.000,  1.000,  0.009,  0.008,  0.000,  0.606, -0.017,  0.674,  0.494,  0.481,  0.402,  0.042),
        (-0.131, -0.051,  0.098,  0.612,  0.000,  0.009,  1.000,  0.980,  0.000,  0.045,  0.854, -0.003,  0.100,  0.144,  0.011,  0.145),
        (-0.132, -0.052,  0.097,  0.613,  0.000,  0.008,  0.980,  1.000,  0.000,  0.043,  0.855, -0.005,  0.100,  0.142,  0.011,  0.145),
        ( 0.000,  0.000,  0.000,  0.000,  0.000,  0.000,  0.000,  0.000,  1.000,  0.000,  0.000,  0.000,  0.000,  0.000,  0.000,  0.000),
        (-0.189,  0.153,  0.149, -0.012,  0.000,  0.606,  0.045,  0.043,  0.000,  1.000, -0.007,  0.870,  0.208,  0.259,  0.265, -0.039),
        ( 0.038, -0.024,  0.119,  0.703,  0.000, -0.017,  0.854,  0.855,  0.000, -0.007,  1.000, -0.002,  0.118,  0.171,  0.086,  0.146),
        (-0.037,  0.156,  0.127, -0.024,  0.000,  0.674, -0.003, -0.005,  0.000,  0.870, -0.002,  1.000,  0.220,  0.295,  0.341, -0.015),
        ( 0.127, -0.203,  0.112,  0.253,  0.000,  0.494,  0.100,  0.100,  0.000,  0.208,  0.118,  0.220,  1.000,  0.431,  0.421, -0.047),
        ( 0.176, -0.040,  0.092,  0.253,  0.000,  0.481,  0.144,  0.142,  0.000,  0.259,  0.171,  0.295,  0.431,  1.000,  0.250,  0.398),
        ( 0.215,  0.608,  0.384,  0.092,  0.000,  0.402,  0.011,  0.011,  0.000,  0.265,  0.086,  0.341,  0.421,  0.250,  1.000, -0.328),
        (-0.011, -0.391, -0.210,  0.146,  0.000,  0.042,  0.145,  0.145,  0.000, -0.039,  0.146, -0.015, -0.047,  0.398, -0.328,  1.000),
    ),
    "mixed": (
        ( 1.000,  0.037,  0.206,  0.085,  0.091,  0.000,  0.098,  0.043,  0.096,  0.000,  0.159,  0.000,  0.130,  0.182,  0.182, -0.022),
        ( 0.037,  1.000,  0.498,  0.189,  0.072,  0.000,  0.087,  0.062,  0.094,  0.000,  0.179,  0.000, -0.264,  0.134,  0.780, -0.533),
        ( 0.206,  0.498,  1.000,  0.244,  0.197,  0.000,  0.459,  0.297,  0.311,  0.000,  0.386,  0.000,  0.087,  0.190,  0.489, -0.147),
        ( 0.085,  0.189,  0.244,  1.000,  0.327,  0.000,  0.376,  0.708,  0.138,  0.000,  0.620,  0.000,  0.372,  0.639,  0.281,  0.103),
        ( 0.091,  0.072,  0.197,  0.327,  1.000,  0.000,  0.524,  0.185,  0.679,  0.000,  0.652,  0.000,  0.310,  0.551,  0.170,  0.181),
        ( 0.000,  0.000,  0.000,  0.000,  0.000,  1.000,  0.000,  0.000,  0.000,  0.000,  0.000,  0.000,  0.000,  0.000,  0.000,  0.000),
        ( 0.098,  0.087,  0.459,  0.376,  0.524,  0.000,  1.000,  0.510,  0.757,  0.000,  0.758,  0.000,  0.203,  0.399,  0.160,  0.183),
        ( 0.043,  0.062,  0.297,  0.708,  0.185,  0.000,  0.510,  1.000,  0.115,  0.000,  0.628,  0.000,  0.304,  0.451,  0.139,  0.166),
        ( 0.096,  0.094,  0.311,  0.138,  0.679,  0.000,  0.757,  0.115,  1.000,  0.000,  0.636,  0.000,  0.143,  0.315,  0.157,  0.088),
        ( 0.000,  0.000,  0.000,  0.000,  0.000,  0.000,  0.000,  0.000,  0.000,  1.000,  0.000,  0.000,  0.000,  0.000,  0.000,  0.000),
        ( 0.159,  0.179,  0.386,  0.620,  0.652,  0.000,  0.758,  0.628,  0.636,  0.000,  1.000,  0.000,  0.318,  0.595,  0.285,  0.143),
        ( 0.000,  0.000,  0.000,  0.000,  0.000,  0.000,  0.000,  0.000,  0.000,  0.000,  0.000,  1.000,  0.000,  0.000,  0.000,  0.000),
        ( 0.130, -0.264,  0.087,  0.372,  0.310,  0.000,  0.203,  0.304,  0.143,  0.000,  0.318,  0.000,  1.000,  0.430,  0.170,  0.111),
        ( 0.182,  0.134,  0.190,  0.639,  0.551,  0.000,  0.399,  0.451,  0.315,  0.000,  0.595,  0.000,  0.430,  1.000,  0.269,  0.272),
        ( 0.182,  0.780,  0.489,  0.281,  0.170,  0.000,  0.160,  0.139,  0.157,  0.000,  0.285,  0.000,  0.170,  0.269,  1.000, -0.463),
        (-0.022, -0.533, -0.147,  0.103,  0.181,  0.000,  0.183,  0.166,  0.088,  0.000,  0.143,  0.000,  0.111,  0.272, -0.463,  1.000),
    ),
    "mixed_and_cash": (
        ( 1.000, -0.033,  0.384,  0.089,  0.141, -0.071,  0.056, -0.007,  0.107, -0.168,  0.169, -0.095,  0.177,  0.236,  0.116,  0.013),
        (-0.033,  1.000,  0.258, -0.191, -0.016,  0.153, -0.016, -0.185,  0.030,  0.169, -0.015,  0.208, -0.187, -0.079,  0.684, -0.470),
        ( 0.384,  0.258,  1.000,  0.064,  0.076,  0.016,  0.227,  0.115,  0.160,  0.029,  0.187,  0.024,  0.172,  0.093,  0.253, -0.127),
        ( 0.089, -0.191,  0.064,  1.000,  0.302,  0.063,  0.331,  0.719,  0.158, -0.010,  0.570, -0.022,  0.358,  0.432,  0.066,  0.187),
        ( 0.141, -0.016,  0.076,  0.302,  1.000,  0.110,  0.580,  0.178,  0.667, -0.034,  0.688,  0.004,  0.269,  0.429,  0.218,  0.166),
        (-0.071,  0.153,  0.016,  0.063,  0.110,  1.000, -0.029, -0.014, -0.025,  0.644,  0.032,  0.718,  0.419,  0.411,  0.439, -0.058),
        ( 0.056, -0.016,  0.227,  0.331,  0.580, -0.029,  1.000,  0.441,  0.839, -0.034,  0.750, -0.040,  0.187,  0.229,  0.107,  0.092),
        (-0.007, -0.185,  0.115,  0.719,  0.178, -0.014,  0.441,  1.000,  0.149,  0.053,  0.577, -0.007,  0.248,  0.275, -0.035,  0.144),
        ( 0.107,  0.030,  0.160,  0.158,  0.667, -0.025,  0.839,  0.149,  1.000, -0.054,  0.678, -0.032,  0.161,  0.214,  0.143,  0.067),
        (-0.168,  0.169,  0.029, -0.010, -0.034,  0.644, -0.034,  0.053, -0.054,  1.000, -0.006,  0.884,  0.164,  0.189,  0.245, -0.099),
        ( 0.169, -0.015,  0.187,  0.570,  0.688,  0.032,  0.750,  0.577,  0.678, -0.006,  1.000,  0.010,  0.296,  0.393,  0.214,  0.130),
        (-0.095,  0.208,  0.024, -0.022,  0.004,  0.718, -0.040, -0.007, -0.032,  0.884,  0.010,  1.000,  0.180,  0.238,  0.334, -0.082),
        ( 0.177, -0.187,  0.172,  0.358,  0.269,  0.419,  0.187,  0.248,  0.161,  0.164,  0.296,  0.180,  1.000,  0.496,  0.410, -0.059),
        ( 0.236, -0.079,  0.093,  0.432,  0.429,  0.411,  0.229,  0.275,  0.214,  0.189,  0.393,  0.238,  0.496,  1.000,  0.295,  0.335),
        ( 0.116,  0.684,  0.253,  0.066,  0.218,  0.439,  0.107, -0.035,  0.143,  0.245,  0.214,  0.334,  0.410,  0.295,  1.000, -0.399),
        ( 0.013, -0.470, -0.127,  0.187,  0.166, -0.058,  0.092,  0.144,  0.067, -0.099,  0.130, -0.082, -0.059,  0.335, -0.399,  1.000),
    ),
}

# The copula's variables, in the order of each LATENT_CORRELATIONS matrix's rows and columns.
LATENT = (
    "TENURE",
    "LIMIT_USAGE",
    "BALANCE_FREQUENCY",
    "ONEOFF_PURCHASES",
    "INSTALLMENTS_PURCHASES",
    "CASH_ADVANCE",
    "PURCHASES_FREQUENCY",
    "ONEOFF_PURCHASES_FREQUENCY",
    "PURCHASES_INSTALLMENTS_FREQUENCY",
    "CASH_ADVANCE_FREQUENCY",
    "PURCHASES_TRX",
    "CASH_ADVANCE_TRX",
    "CREDIT_LIMIT",
    "PAYMENTS",
    "MINIMUM_PAYMENTS",
    "PRC_FULL_PAYMENT",
)

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
