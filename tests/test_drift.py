"""The PSI of a features partition: Spark's aggregate, the scoring pass's numpy counts and a plain
numpy computation over the same values agree."""

import math

import numpy as np
import pyarrow as pa
import pytest
from pyspark.sql.types import DoubleType, StructField, StructType

from segmentation.downstream import drift

SCHEMA = StructType([StructField("A", DoubleType(), True), StructField("B", DoubleType(), True),
                     StructField("C", DoubleType(), True)])
REF = {
    "A": {"edges": [1.0, 2.0, 3.0, 5.0, 8.0], "shares": [0.1, 0.2, 0.2, 0.2, 0.2, 0.1]},
    "B": {"edges": [0.5], "shares": [0.7, 0.3]},
    "C": {"edges": [], "shares": [1.0]},  # a constant column in the training sample: one bin
}
A = [0.0, 1.0, 1.5, 2.0, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 9.0, float("nan"), None, 1.0000001, -3.0]
B = [0.5, 0.4, 0.6, None, 0.5, 0.7, 0.1, float("nan"), 0.5, 0.2, 3.0, 0.0, 0.5, None, 0.9]
C = [2.0] * 10 + [None, 3.0, float("nan"), 2.0, 1.0]


def _numpy_psi(values: list, ref: dict) -> float:
    """Bin i holds values <= edges[i] and > edges[i-1]; NaN above every edge; None in no bin."""
    edges = np.array(ref["edges"])
    counts = np.zeros(len(edges) + 1)
    for v in values:
        if v is None:
            continue
        counts[len(edges) if math.isnan(v) else int(np.searchsorted(edges, v, side="left"))] += 1
    return drift.psi(counts / len(values), np.array(ref["shares"]))


def _batches(split: int) -> list[pa.RecordBatch]:
    table = pa.table({"A": A, "B": B, "C": C}, schema=pa.schema([(n, pa.float64()) for n in "ABC"]))
    return [table.slice(0, split).to_batches()[0], table.slice(split).to_batches()[0]]


def test_spark_and_the_scoring_pass_count_every_edge_nan_and_null_like_numpy(spark):
    expected = {"A": _numpy_psi(A, REF["A"]), "B": _numpy_psi(B, REF["B"]), "C": _numpy_psi(C, REF["C"])}
    from_spark = drift.feature_psi(spark.createDataFrame(list(zip(A, B, C)), SCHEMA), REF)

    param = drift.BinCounts()
    total = drift.zero_counts(REF)
    for batch in _batches(6):  # two batches, as two tasks' accumulator updates would arrive
        total = param.addInPlace(total, drift.batch_counts(batch, REF))
    from_batches = drift.psi_of_counts(total, REF)

    for name, value in expected.items():
        assert from_spark[name] == pytest.approx(value, rel=1e-12, abs=1e-15), name
        assert from_batches[name] == from_spark[name], name
    assert int(total[drift.ROWS][0]) == len(A)
    assert from_spark["A"] > 0.1  # the shares differ from the reference: a real figure, not a floor


def test_an_empty_partition_gives_the_floor_psi_not_an_error(spark):
    got = drift.feature_psi(spark.createDataFrame([], SCHEMA), REF)
    assert set(got) == {"A", "B", "C"} and all(math.isfinite(v) for v in got.values())
    assert got == drift.psi_of_counts(drift.zero_counts(REF), REF)
