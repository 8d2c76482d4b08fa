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
        ( 1.00,  0.14,  0.34,  0.00,  0.00, -0.08,  0.00,  0.00,  0.00, -0.16, -0.01,  0.00,  0.12,  0.24,  0.20, -0.01),
        ( 0.14,  1.00,  0.61,  0.00,  0.00, -0.13,  0.00,  0.00,  0.00,  0.20, -0.02,  0.16, -0.10,  0.00,  0.55, -0.36),
        ( 0.34,  0.61,  1.00,  0.00,  0.00, -0.04,  0.00,  0.00,  0.00,  0.21, -0.02,  0.20,  0.14,  0.13,  0.41, -0.29),
        ( 0.00,  0.00,  0.00,  1.00,  0.00,  0.00,  0.00,  0.00,  0.00,  0.00,  0.00,  0.00,  0.00,  0.00,  0.00,  0.00),
        ( 0.00,  0.00,  0.00,  0.00,  1.00,  0.00,  0.00,  0.00,  0.00,  0.00,  0.00,  0.00,  0.00,  0.00,  0.00,  0.00),
        (-0.08, -0.13, -0.04,  0.00,  0.00,  1.00,  0.00,  0.00,  0.00,  0.48, -0.04,  0.58,  0.58,  0.52,  0.32,  0.12),
        ( 0.00,  0.00,  0.00,  0.00,  0.00,  0.00,  1.00,  0.00,  0.00,  0.00,  0.00,  0.00,  0.00,  0.00,  0.00,  0.00),
        ( 0.00,  0.00,  0.00,  0.00,  0.00,  0.00,  0.00,  1.00,  0.00,  0.00,  0.00,  0.00,  0.00,  0.00,  0.00,  0.00),
        ( 0.00,  0.00,  0.00,  0.00,  0.00,  0.00,  0.00,  0.00,  1.00,  0.00,  0.00,  0.00,  0.00,  0.00,  0.00,  0.00),
        (-0.16,  0.20,  0.21,  0.00,  0.00,  0.48,  0.00,  0.00,  0.00,  1.00, -0.02,  0.86,  0.25,  0.26,  0.25, -0.05),
        (-0.01, -0.02, -0.02,  0.00,  0.00, -0.04,  0.00,  0.00,  0.00, -0.02,  1.00, -0.01, -0.02, -0.02, -0.04,  0.03),
        ( 0.00,  0.16,  0.20,  0.00,  0.00,  0.58,  0.00,  0.00,  0.00,  0.86, -0.01,  1.00,  0.29,  0.32,  0.31,  0.00),
        ( 0.12, -0.10,  0.14,  0.00,  0.00,  0.58,  0.00,  0.00,  0.00,  0.25, -0.02,  0.29,  1.00,  0.46,  0.53, -0.09),
        ( 0.24,  0.00,  0.13,  0.00,  0.00,  0.52,  0.00,  0.00,  0.00,  0.26, -0.02,  0.32,  0.46,  1.00,  0.27,  0.42),
        ( 0.20,  0.55,  0.41,  0.00,  0.00,  0.32,  0.00,  0.00,  0.00,  0.25, -0.04,  0.31,  0.53,  0.27,  1.00, -0.33),
        (-0.01, -0.36, -0.29,  0.00,  0.00,  0.12,  0.00,  0.00,  0.00, -0.05,  0.03,  0.00, -0.09,  0.42, -0.33,  1.00),
    ),
    "instalments": (
        ( 1.00,  0.02,  0.01,  0.00,  0.06,  0.00, -0.09,  0.00,  0.05,  0.00,  0.17,  0.00,  0.23,  0.19,  0.29, -0.14),
        ( 0.02,  1.00,  0.69,  0.00,  0.34,  0.00,  0.22,  0.00,  0.23,  0.00,  0.27,  0.00, -0.34,  0.40,  0.69, -0.28),
        ( 0.01,  0.69,  1.00,  0.00,  0.32,  0.00,  0.47,  0.00,  0.46,  0.00,  0.43,  0.00, -0.10,  0.24,  0.48, -0.02),
        ( 0.00,  0.00,  0.00,  1.00,  0.00,  0.00,  0.00,  0.00,  0.00,  0.00,  0.00,  0.00,  0.00,  0.00,  0.00,  0.00),
        ( 0.06,  0.34,  0.32,  0.00,  1.00,  0.00,  0.58,  0.00,  0.58,  0.00,  0.65,  0.00,  0.09,  0.63,  0.23,  0.19),
        ( 0.00,  0.00,  0.00,  0.00,  0.00,  1.00,  0.00,  0.00,  0.00,  0.00,  0.00,  0.00,  0.00,  0.00,  0.00,  0.00),
        (-0.09,  0.22,  0.47,  0.00,  0.58,  0.00,  1.00,  0.00,  0.97,  0.00,  0.82,  0.00, -0.12,  0.18,  0.10,  0.13),
        ( 0.00,  0.00,  0.00,  0.00,  0.00,  0.00,  0.00,  1.00,  0.00,  0.00,  0.00,  0.00,  0.00,  0.00,  0.00,  0.00),
        ( 0.05,  0.23,  0.46,  0.00,  0.58,  0.00,  0.97,  0.00,  1.00,  0.00,  0.85,  0.00, -0.08,  0.22,  0.16,  0.08),
        ( 0.00,  0.00,  0.00,  0.00,  0.00,  0.00,  0.00,  0.00,  0.00,  1.00,  0.00,  0.00,  0.00,  0.00,  0.00,  0.00),
        ( 0.17,  0.27,  0.43,  0.00,  0.65,  0.00,  0.82,  0.00,  0.85,  0.00,  1.00,  0.00,  0.04,  0.30,  0.23,  0.07),
        ( 0.00,  0.00,  0.00,  0.00,  0.00,  0.00,  0.00,  0.00,  0.00,  0.00,  0.00,  1.00,  0.00,  0.00,  0.00,  0.00),
        ( 0.23, -0.34, -0.10,  0.00,  0.09,  0.00, -0.12,  0.00, -0.08,  0.00,  0.04,  0.00,  1.00,  0.20, -0.03,  0.09),
        ( 0.19,  0.40,  0.24,  0.00,  0.63,  0.00,  0.18,  0.00,  0.22,  0.00,  0.30,  0.00,  0.20,  1.00,  0.35,  0.15),
        ( 0.29,  0.69,  0.48,  0.00,  0.23,  0.00,  0.10,  0.00,  0.16,  0.00,  0.23,  0.00, -0.03,  0.35,  1.00, -0.27),
        (-0.14, -0.28, -0.02,  0.00,  0.19,  0.00,  0.13,  0.00,  0.08,  0.00,  0.07,  0.00,  0.09,  0.15, -0.27,  1.00),
    ),
    "instalments_and_cash": (
        ( 1.00,  0.08,  0.19,  0.00,  0.09, -0.06, -0.14,  0.00, -0.01, -0.15,  0.15,  0.01,  0.23,  0.35,  0.23,  0.01),
        ( 0.08,  1.00,  0.42,  0.00,  0.07, -0.12,  0.11,  0.00,  0.12,  0.00,  0.15,  0.09, -0.24, -0.03,  0.67, -0.46),
        ( 0.19,  0.42,  1.00,  0.00,  0.06, -0.06,  0.12,  0.00,  0.13,  0.08,  0.11,  0.08,  0.05,  0.15,  0.36, -0.16),
        ( 0.00,  0.00,  0.00,  1.00,  0.00,  0.00,  0.00,  0.00,  0.00,  0.00,  0.00,  0.00,  0.00,  0.00,  0.00,  0.00),
        ( 0.09,  0.07,  0.06,  0.00,  1.00, -0.01,  0.58,  0.00,  0.57, -0.13,  0.69, -0.11,  0.11,  0.30,  0.26,  0.11),
        (-0.06, -0.12, -0.06,  0.00, -0.01,  1.00, -0.08,  0.00, -0.11,  0.52, -0.04,  0.61,  0.53,  0.44,  0.22,  0.04),
        (-0.14,  0.11,  0.12,  0.00,  0.58, -0.08,  1.00,  0.00,  0.97, -0.08,  0.81, -0.08, -0.14,  0.02,  0.07,  0.03),
        ( 0.00,  0.00,  0.00,  0.00,  0.00,  0.00,  0.00,  1.00,  0.00,  0.00,  0.00,  0.00,  0.00,  0.00,  0.00,  0.00),
        (-0.01,  0.12,  0.13,  0.00,  0.57, -0.11,  0.97,  0.00,  1.00, -0.10,  0.83, -0.09, -0.10,  0.07,  0.10,  0.03),
        (-0.15,  0.00,  0.08,  0.00, -0.13,  0.52, -0.08,  0.00, -0.10,  1.00, -0.09,  0.84,  0.24,  0.20,  0.07, -0.05),
        ( 0.15,  0.15,  0.11,  0.00,  0.69, -0.04,  0.81,  0.00,  0.83, -0.09,  1.00, -0.05, -0.01,  0.20,  0.20,  0.01),
        ( 0.01,  0.09,  0.08,  0.00, -0.11,  0.61, -0.08,  0.00, -0.09,  0.84, -0.05,  1.00,  0.24,  0.25,  0.21, -0.06),
        ( 0.23, -0.24,  0.05,  0.00,  0.11,  0.53, -0.14,  0.00, -0.10,  0.24, -0.01,  0.24,  1.00,  0.51,  0.34, -0.03),
        ( 0.35, -0.03,  0.15,  0.00,  0.30,  0.44,  0.02,  0.00,  0.07,  0.20,  0.20,  0.25,  0.51,  1.00,  0.31,  0.26),
        ( 0.23,  0.67,  0.36,  0.00,  0.26,  0.22,  0.07,  0.00,  0.10,  0.07,  0.20,  0.21,  0.34,  0.31,  1.00, -0.33),
        ( 0.01, -0.46, -0.16,  0.00,  0.11,  0.04,  0.03,  0.00,  0.03, -0.05,  0.01, -0.06, -0.03,  0.26, -0.33,  1.00),
    ),
    "one_off": (
        ( 1.00,  0.01,  0.16, -0.02,  0.00,  0.00, -0.03, -0.03,  0.00,  0.00,  0.09,  0.00,  0.12,  0.20,  0.12,  0.10),
        ( 0.01,  1.00,  0.67,  0.21,  0.00,  0.00,  0.14,  0.14,  0.00,  0.00,  0.19,  0.00, -0.36,  0.21,  0.72, -0.25),
        ( 0.16,  0.67,  1.00,  0.21,  0.00,  0.00,  0.39,  0.39,  0.00,  0.00,  0.37,  0.00, -0.01,  0.14,  0.57,  0.02),
        (-0.02,  0.21,  0.21,  1.00,  0.00,  0.00,  0.53,  0.53,  0.00,  0.00,  0.64,  0.00,  0.25,  0.56,  0.16,  0.29),
        ( 0.00,  0.00,  0.00,  0.00,  1.00,  0.00,  0.00,  0.00,  0.00,  0.00,  0.00,  0.00,  0.00,  0.00,  0.00,  0.00),
        ( 0.00,  0.00,  0.00,  0.00,  0.00,  1.00,  0.00,  0.00,  0.00,  0.00,  0.00,  0.00,  0.00,  0.00,  0.00,  0.00),
        (-0.03,  0.14,  0.39,  0.53,  0.00,  0.00,  1.00,  0.98,  0.00,  0.00,  0.87,  0.00,  0.19,  0.30,  0.14,  0.41),
        (-0.03,  0.14,  0.39,  0.53,  0.00,  0.00,  0.98,  1.00,  0.00,  0.00,  0.87,  0.00,  0.19,  0.31,  0.14,  0.41),
        ( 0.00,  0.00,  0.00,  0.00,  0.00,  0.00,  0.00,  0.00,  1.00,  0.00,  0.00,  0.00,  0.00,  0.00,  0.00,  0.00),
        ( 0.00,  0.00,  0.00,  0.00,  0.00,  0.00,  0.00,  0.00,  0.00,  1.00,  0.00,  0.00,  0.00,  0.00,  0.00,  0.00),
        ( 0.09,  0.19,  0.37,  0.64,  0.00,  0.00,  0.87,  0.87,  0.00,  0.00,  1.00,  0.00,  0.20,  0.41,  0.19,  0.41),
        ( 0.00,  0.00,  0.00,  0.00,  0.00,  0.00,  0.00,  0.00,  0.00,  0.00,  0.00,  1.00,  0.00,  0.00,  0.00,  0.00),
        ( 0.12, -0.36, -0.01,  0.25,  0.00,  0.00,  0.19,  0.19,  0.00,  0.00,  0.20,  0.00,  1.00,  0.26,  0.00,  0.22),
        ( 0.20,  0.21,  0.14,  0.56,  0.00,  0.00,  0.30,  0.31,  0.00,  0.00,  0.41,  0.00,  0.26,  1.00,  0.27,  0.34),
        ( 0.12,  0.72,  0.57,  0.16,  0.00,  0.00,  0.14,  0.14,  0.00,  0.00,  0.19,  0.00,  0.00,  0.27,  1.00, -0.19),
        ( 0.10, -0.25,  0.02,  0.29,  0.00,  0.00,  0.41,  0.41,  0.00,  0.00,  0.41,  0.00,  0.22,  0.34, -0.19,  1.00),
    ),
    "one_off_and_cash": (
        ( 1.00,  0.06,  0.30, -0.04,  0.00, -0.06, -0.13, -0.13,  0.00, -0.19,  0.04, -0.04,  0.13,  0.18,  0.21, -0.01),
        ( 0.06,  1.00,  0.50, -0.11,  0.00,  0.01, -0.05, -0.05,  0.00,  0.15, -0.02,  0.16, -0.20, -0.04,  0.61, -0.39),
        ( 0.30,  0.50,  1.00,  0.01,  0.00,  0.02,  0.10,  0.10,  0.00,  0.15,  0.12,  0.13,  0.11,  0.09,  0.38, -0.21),
        (-0.04, -0.11,  0.01,  1.00,  0.00,  0.11,  0.61,  0.61,  0.00, -0.01,  0.70, -0.02,  0.25,  0.25,  0.09,  0.15),
        ( 0.00,  0.00,  0.00,  0.00,  1.00,  0.00,  0.00,  0.00,  0.00,  0.00,  0.00,  0.00,  0.00,  0.00,  0.00,  0.00),
        (-0.06,  0.01,  0.02,  0.11,  0.00,  1.00,  0.01,  0.01,  0.00,  0.61, -0.02,  0.67,  0.49,  0.48,  0.40,  0.04),
        (-0.13, -0.05,  0.10,  0.61,  0.00,  0.01,  1.00,  0.98,  0.00,  0.04,  0.85,  0.00,  0.10,  0.14,  0.01,  0.14),
        (-0.13, -0.05,  0.10,  0.61,  0.00,  0.01,  0.98,  1.00,  0.00,  0.04,  0.85,  0.00,  0.10,  0.14,  0.01,  0.15),
        ( 0.00,  0.00,  0.00,  0.00,  0.00,  0.00,  0.00,  0.00,  1.00,  0.00,  0.00,  0.00,  0.00,  0.00,  0.00,  0.00),
        (-0.19,  0.15,  0.15, -0.01,  0.00,  0.61,  0.04,  0.04,  0.00,  1.00, -0.01,  0.87,  0.21,  0.26,  0.26, -0.04),
        ( 0.04, -0.02,  0.12,  0.70,  0.00, -0.02,  0.85,  0.85,  0.00, -0.01,  1.00,  0.00,  0.12,  0.17,  0.09,  0.15),
        (-0.04,  0.16,  0.13, -0.02,  0.00,  0.67,  0.00,  0.00,  0.00,  0.87,  0.00,  1.00,  0.22,  0.29,  0.34, -0.02),
        ( 0.13, -0.20,  0.11,  0.25,  0.00,  0.49,  0.10,  0.10,  0.00,  0.21,  0.12,  0.22,  1.00,  0.43,  0.42, -0.05),
        ( 0.18, -0.04,  0.09,  0.25,  0.00,  0.48,  0.14,  0.14,  0.00,  0.26,  0.17,  0.29,  0.43,  1.00,  0.25,  0.40),
        ( 0.21,  0.61,  0.38,  0.09,  0.00,  0.40,  0.01,  0.01,  0.00,  0.26,  0.09,  0.34,  0.42,  0.25,  1.00, -0.33),
        (-0.01, -0.39, -0.21,  0.15,  0.00,  0.04,  0.14,  0.15,  0.00, -0.04,  0.15, -0.02, -0.05,  0.40, -0.33,  1.00),
    ),
    "mixed": (
        ( 1.00,  0.04,  0.21,  0.09,  0.09,  0.00,  0.10,  0.04,  0.10,  0.00,  0.16,  0.00,  0.13,  0.18,  0.18, -0.02),
        ( 0.04,  1.00,  0.50,  0.19,  0.07,  0.00,  0.09,  0.06,  0.09,  0.00,  0.18,  0.00, -0.26,  0.13,  0.78, -0.53),
        ( 0.21,  0.50,  1.00,  0.24,  0.20,  0.00,  0.46,  0.30,  0.31,  0.00,  0.39,  0.00,  0.09,  0.19,  0.49, -0.15),
        ( 0.09,  0.19,  0.24,  1.00,  0.33,  0.00,  0.38,  0.71,  0.14,  0.00,  0.62,  0.00,  0.37,  0.64,  0.28,  0.10),
        ( 0.09,  0.07,  0.20,  0.33,  1.00,  0.00,  0.52,  0.19,  0.68,  0.00,  0.65,  0.00,  0.31,  0.55,  0.17,  0.18),
        ( 0.00,  0.00,  0.00,  0.00,  0.00,  1.00,  0.00,  0.00,  0.00,  0.00,  0.00,  0.00,  0.00,  0.00,  0.00,  0.00),
        ( 0.10,  0.09,  0.46,  0.38,  0.52,  0.00,  1.00,  0.51,  0.76,  0.00,  0.76,  0.00,  0.20,  0.40,  0.16,  0.18),
        ( 0.04,  0.06,  0.30,  0.71,  0.19,  0.00,  0.51,  1.00,  0.11,  0.00,  0.63,  0.00,  0.30,  0.45,  0.14,  0.17),
        ( 0.10,  0.09,  0.31,  0.14,  0.68,  0.00,  0.76,  0.11,  1.00,  0.00,  0.64,  0.00,  0.14,  0.31,  0.16,  0.09),
        ( 0.00,  0.00,  0.00,  0.00,  0.00,  0.00,  0.00,  0.00,  0.00,  1.00,  0.00,  0.00,  0.00,  0.00,  0.00,  0.00),
        ( 0.16,  0.18,  0.39,  0.62,  0.65,  0.00,  0.76,  0.63,  0.64,  0.00,  1.00,  0.00,  0.32,  0.59,  0.29,  0.14),
        ( 0.00,  0.00,  0.00,  0.00,  0.00,  0.00,  0.00,  0.00,  0.00,  0.00,  0.00,  1.00,  0.00,  0.00,  0.00,  0.00),
        ( 0.13, -0.26,  0.09,  0.37,  0.31,  0.00,  0.20,  0.30,  0.14,  0.00,  0.32,  0.00,  1.00,  0.43,  0.17,  0.11),
        ( 0.18,  0.13,  0.19,  0.64,  0.55,  0.00,  0.40,  0.45,  0.31,  0.00,  0.59,  0.00,  0.43,  1.00,  0.27,  0.27),
        ( 0.18,  0.78,  0.49,  0.28,  0.17,  0.00,  0.16,  0.14,  0.16,  0.00,  0.29,  0.00,  0.17,  0.27,  1.00, -0.46),
        (-0.02, -0.53, -0.15,  0.10,  0.18,  0.00,  0.18,  0.17,  0.09,  0.00,  0.14,  0.00,  0.11,  0.27, -0.46,  1.00),
    ),
    "mixed_and_cash": (
        ( 1.00, -0.03,  0.38,  0.09,  0.14, -0.07,  0.06, -0.01,  0.11, -0.17,  0.17, -0.10,  0.18,  0.24,  0.12,  0.01),
        (-0.03,  1.00,  0.26, -0.19, -0.02,  0.15, -0.02, -0.19,  0.03,  0.17, -0.01,  0.21, -0.19, -0.08,  0.68, -0.47),
        ( 0.38,  0.26,  1.00,  0.06,  0.08,  0.02,  0.23,  0.12,  0.16,  0.03,  0.19,  0.02,  0.17,  0.09,  0.25, -0.13),
        ( 0.09, -0.19,  0.06,  1.00,  0.30,  0.06,  0.33,  0.72,  0.16, -0.01,  0.57, -0.02,  0.36,  0.43,  0.07,  0.19),
        ( 0.14, -0.02,  0.08,  0.30,  1.00,  0.11,  0.58,  0.18,  0.67, -0.03,  0.69,  0.00,  0.27,  0.43,  0.22,  0.17),
        (-0.07,  0.15,  0.02,  0.06,  0.11,  1.00, -0.03, -0.01, -0.03,  0.64,  0.03,  0.72,  0.42,  0.41,  0.44, -0.06),
        ( 0.06, -0.02,  0.23,  0.33,  0.58, -0.03,  1.00,  0.44,  0.84, -0.03,  0.75, -0.04,  0.19,  0.23,  0.11,  0.09),
        (-0.01, -0.19,  0.12,  0.72,  0.18, -0.01,  0.44,  1.00,  0.15,  0.05,  0.58, -0.01,  0.25,  0.28, -0.04,  0.14),
        ( 0.11,  0.03,  0.16,  0.16,  0.67, -0.03,  0.84,  0.15,  1.00, -0.05,  0.68, -0.03,  0.16,  0.21,  0.14,  0.07),
        (-0.17,  0.17,  0.03, -0.01, -0.03,  0.64, -0.03,  0.05, -0.05,  1.00, -0.01,  0.88,  0.16,  0.19,  0.24, -0.10),
        ( 0.17, -0.01,  0.19,  0.57,  0.69,  0.03,  0.75,  0.58,  0.68, -0.01,  1.00,  0.01,  0.30,  0.39,  0.21,  0.13),
        (-0.10,  0.21,  0.02, -0.02,  0.00,  0.72, -0.04, -0.01, -0.03,  0.88,  0.01,  1.00,  0.18,  0.24,  0.33, -0.08),
        ( 0.18, -0.19,  0.17,  0.36,  0.27,  0.42,  0.19,  0.25,  0.16,  0.16,  0.30,  0.18,  1.00,  0.50,  0.41, -0.06),
        ( 0.24, -0.08,  0.09,  0.43,  0.43,  0.41,  0.23,  0.28,  0.21,  0.19,  0.39,  0.24,  0.50,  1.00,  0.30,  0.33),
        ( 0.12,  0.68,  0.25,  0.07,  0.22,  0.44,  0.11, -0.04,  0.14,  0.24,  0.21,  0.33,  0.41,  0.30,  1.00, -0.40),
        ( 0.01, -0.47, -0.13,  0.19,  0.17, -0.06,  0.09,  0.14,  0.07, -0.10,  0.13, -0.08, -0.06,  0.33, -0.40,  1.00),
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
