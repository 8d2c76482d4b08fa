"""`clustering_candidates`: every clustering a train compared, its figures and why it passed or failed."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pyspark.sql.types import (
    BooleanType,
    DateType,
    DoubleType,
    IntegerType,
    StringType,
    StructField,
    StructType,
)

from segmentation.core.columns import RUN_DATE
from segmentation.io.rows import row
from segmentation.train.clustering import Candidate

# One row per (model_version, candidate); the figures are those of `Candidate.record()`.
CANDIDATES_SCHEMA = StructType(
    [
        StructField("model_version", StringType(), False),
        StructField(RUN_DATE, DateType(), False),
        StructField("algorithm", StringType(), False),
        StructField("params", StringType(), False),
        StructField("n_segments", IntegerType(), False),
        StructField("silhouette", DoubleType(), True),
        StructField("calinski_harabasz", DoubleType(), True),
        StructField("davies_bouldin", DoubleType(), True),
        StructField("noise_share", DoubleType(), False),
        StructField("smallest_share", DoubleType(), False),
        StructField("stability", DoubleType(), True),
        StructField("bic", DoubleType(), True),
        StructField("passed", BooleanType(), False),
        StructField("reason", StringType(), False),
        StructField("chosen", BooleanType(), False),
        StructField("fit_seconds", DoubleType(), False),
        StructField("sample_rows", IntegerType(), False),  # the rows the candidates were fitted on
        StructField("model_usable", BooleanType(), False),  # the trained model passed its gates
        StructField("largest_share", DoubleType(), True),
        StructField("rule_agreement", DoubleType(), True),
        StructField("purchase_type_ari", DoubleType(), True),
        # The selection's resamples (null: not resampled, a failed guardrail or resamples=0).
        StructField("resample_silhouette", DoubleType(), True),  # mean silhouette over the resamples
        StructField("resample_sd", DoubleType(), True),
        StructField("resample_wins", IntegerType(), True),  # resamples on which it scored highest
        StructField("within_noise", BooleanType(), True),  # tied with the best mean, within its noise
    ]
)


def table_rows(
    candidates: list[Candidate], version: str, run_date: dt.date, sample_rows: int, usable: bool,
) -> list[dict[str, Any]]:
    """Rows for CANDIDATES_SCHEMA, one per candidate in the order compared (figures from `record()`)."""
    out = []
    for c in candidates:
        r = c.record()
        out.append(row(
            CANDIDATES_SCHEMA, model_version=version, run_date=run_date, algorithm=r["algorithm"], params=r["params"],
            n_segments=r["n_segments"], silhouette=r["silhouette"], calinski_harabasz=r["calinski_harabasz"],
            davies_bouldin=r["davies_bouldin"], noise_share=r["noise_share"], smallest_share=r["smallest_share"],
            stability=r["stability"], bic=r["bic"], passed=r["passed"], reason=r["reason"], chosen=r["chosen"],
            fit_seconds=float(r["fit_seconds"]), sample_rows=sample_rows, model_usable=usable,
            largest_share=r["largest_share"], rule_agreement=r["rule_agreement"],
            purchase_type_ari=r["purchase_type_ari"], resample_silhouette=r["resample_silhouette"],
            resample_sd=r["resample_sd"], resample_wins=r["resample_wins"], within_noise=r["within_noise"],
        ))
    return out
