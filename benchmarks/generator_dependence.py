"""Fits the generator's latent correlations, one per archetype, on the real file.

    python -m benchmarks.generator_dependence [--input data/CC_GENERAL.csv] [--rows 100000]

Each archetype (the zero pattern of one-off purchases, instalments and cash advances) gets the
correlation of the normal scores (ranks) of the generator's sixteen latent behaviours among the
real customers of that pattern; a behaviour the archetype never has is uncorrelated (it is not
drawn). Eigenvalues are floored at 0.02 to keep each matrix positive definite.

Behaviours hang together differently per pattern: among one-off-only buyers the months with a
purchase are the months with a one-off purchase (normal-score correlation 1.00), among mixed
buyers 0.69; payments follow purchase counts among mixed buyers (0.59) and not at all among
cash-advance-only customers. One correlation pooled over the patterns gives every archetype
the average, blurring the behaviours that set segments apart.

Prints the matrices for `segmentation.synthetic.generator.LATENT_CORRELATIONS`, then how far generated
customers' dependence is from the real file's, per archetype (mean absolute difference).
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd
from scipy import stats

from segmentation.core.columns import ID_COLUMN
from segmentation.synthetic import generator

EIGEN_FLOOR = 0.02
DECIMALS = 2


def activity_code(one_off, instalments, cash_advance):
    """The zero pattern as a number (booleans, or boolean Series)."""
    return one_off * 4 + instalments * 2 + cash_advance * 1


def archetype_codes(frame: pd.DataFrame) -> pd.Series:
    """Each customer's zero pattern, coded as `activity_code`."""
    return activity_code((frame.ONEOFF_PURCHASES > 0).astype(int), (frame.INSTALLMENTS_PURCHASES > 0).astype(int),
                         (frame.CASH_ADVANCE > 0).astype(int))


def normal_score_correlation(frame: pd.DataFrame) -> np.ndarray:
    """Correlation of the normal scores of `generator.LATENT`'s columns; NaN for a constant column."""
    frame = frame.assign(LIMIT_USAGE=np.where(frame.CREDIT_LIMIT > 0, frame.BALANCE / frame.CREDIT_LIMIT, 0.0))
    values = frame[list(generator.LATENT)].astype(float)
    values = values.fillna(values.median())  # MINIMUM_PAYMENTS' gaps, as the product imputes them
    scores = np.column_stack([stats.norm.ppf(stats.rankdata(values[c]) / (len(values) + 1)) for c in values])
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.corrcoef(scores, rowvar=False)


def nearest_correlation(matrix: np.ndarray, floor: float = EIGEN_FLOOR) -> np.ndarray:
    """Symmetric, eigenvalues floored at `floor`, unit diagonal."""
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
    fixed = vectors @ np.diag(np.maximum(values, floor)) @ vectors.T
    scale = np.sqrt(np.diag(fixed))
    return fixed / np.outer(scale, scale)


def fit(real: pd.DataFrame) -> dict[str, np.ndarray]:
    codes = archetype_codes(real)
    fitted = {}
    for archetype in generator.ARCHETYPES:
        code = activity_code(archetype.one_off is not None, archetype.instalments is not None,
                             archetype.cash_advance is not None)
        corr = normal_score_correlation(real[codes == code])
        corr = np.where(np.isnan(corr), 0.0, corr)  # a behaviour the archetype lacks is not drawn
        np.fill_diagonal(corr, 1.0)
        fitted[archetype.name] = np.round(nearest_correlation(corr), DECIMALS)
        np.linalg.cholesky(fitted[archetype.name])  # still positive definite once rounded
    return fitted


def gaps(real: pd.DataFrame, generated: pd.DataFrame) -> dict[str, float]:
    """Per archetype: mean absolute difference of the normal-score correlations both vary in."""
    real_codes, generated_codes = archetype_codes(real), archetype_codes(generated)
    out = {}
    for archetype in generator.ARCHETYPES:
        code = activity_code(archetype.one_off is not None, archetype.instalments is not None,
                             archetype.cash_advance is not None)
        a = normal_score_correlation(real[real_codes == code])
        b = normal_score_correlation(generated[generated_codes == code])
        known = ~np.eye(len(a), dtype=bool) & ~np.isnan(a) & ~np.isnan(b)
        out[archetype.name] = float(np.abs(a - b)[known].mean())
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--input", default="data/CC_GENERAL.csv")
    p.add_argument("--rows", type=int, default=100_000, help="generated customers compared with the real ones")
    p.add_argument("--seed", type=int, default=42)
    args = p.parse_args(argv)

    real = pd.read_csv(args.input)
    print("LATENT_CORRELATIONS = {")
    for name, matrix in fit(real).items():
        print(f'    "{name}": (')
        for row in matrix:
            print("        (" + ", ".join(f"{v + 0.0:5.2f}".replace("-0.00", " 0.00") for v in row) + "),")
        print("    ),")
    print("}")

    from pyspark.sql import SparkSession

    spark = SparkSession.builder.master("local[*]").config("spark.ui.enabled", "false").getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    generated = generator.generate_customers(spark, args.rows, args.seed).drop(ID_COLUMN).toPandas()  # a fit's rows
    print(f"\nnormal-score correlations, generated ({args.rows:,} rows, seed {args.seed}) against real, "
          "mean absolute difference per archetype:")
    for name, gap in gaps(real, generated).items():
        print(f"  {name:<22}{gap:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
