"""`audience_lift`: treatment against holdout response rates, per audience and segment.

Each response is joined to the customer's membership at its `response_date`: the last
`audience_events` row of the customer and audience on a published night up to that date; an
`entered` row makes it a member, of that row's group and entry segment. Responses from
customers who were not members then are left out (counted). The interval of the difference is
Newcombe's hybrid score interval (his method 10: Wilson intervals of each rate, combined); the
p-value is the two-sided pooled two-proportion z-test.
"""

from __future__ import annotations

import datetime as dt
import math
from statistics import NormalDist
from typing import Any

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql.types import (DateType, DoubleType, IntegerType, LongType, StringType, StructField, StructType,
                               TimestampType)

from segmentation.core.columns import ID_COLUMN, RUN_DATE
from segmentation.core.errors import InputError
from segmentation.downstream.audiences import ENTERED
from segmentation.downstream.holdout import HOLDOUT, TREATMENT

METHOD = "newcombe-hybrid-score"
RESPONSE_COLUMNS = {ID_COLUMN: "string", "audience": "string", "responded": "int", "response_date": "date"}

LIFT_SCHEMA = StructType(
    [
        StructField("audience", StringType(), False),
        StructField("segment_id", IntegerType(), True),  # null: the audience overall
        StructField("treatment_customers", LongType(), False),
        StructField("holdout_customers", LongType(), False),
        StructField("treatment_responders", LongType(), False),
        StructField("holdout_responders", LongType(), False),
        StructField("treatment_rate", DoubleType(), True),  # null: no customers in the group
        StructField("holdout_rate", DoubleType(), True),
        StructField("lift", DoubleType(), True),  # treatment_rate - holdout_rate
        StructField("ci_low", DoubleType(), True),
        StructField("ci_high", DoubleType(), True),
        StructField("p_value", DoubleType(), True),
        StructField("confidence", DoubleType(), False),
        StructField("method", StringType(), False),
        StructField("treatment_value", DoubleType(), True),  # sum of `value` (null: no value column)
        StructField("holdout_value", DoubleType(), True),
        StructField("first_response_date", DateType(), True),
        StructField("last_response_date", DateType(), True),
        StructField("measured_at", TimestampType(), False),
    ]
)


def checked_responses(responses: DataFrame) -> DataFrame:
    """The responses with their columns typed; a named error for a missing column or a `responded` not 0/1."""
    missing = [c for c in RESPONSE_COLUMNS if c not in responses.columns]
    if missing:
        raise InputError(f"responses lack column(s) {', '.join(missing)} (columns: {', '.join(responses.columns)}); "
                         f"expected {', '.join(RESPONSE_COLUMNS)} and optionally value")
    typed = responses.select(*[F.col(c).cast(t).alias(c) for c, t in RESPONSE_COLUMNS.items()],
                             (F.col("value").cast("double") if "value" in responses.columns
                              else F.lit(None).cast("double")).alias("value"))
    bad = typed.where(~F.col("responded").isin(0, 1) | F.col("responded").isNull() | F.col("response_date").isNull()
                      | F.col(ID_COLUMN).isNull() | F.col("audience").isNull()).limit(1).collect()
    if bad:
        raise InputError(f"responses: every row needs CUST_ID, audience, response_date and responded 0 or 1; "
                         f"first bad row: {bad[0].asDict()}")
    return typed


def at_the_time(responses: DataFrame, events: DataFrame) -> DataFrame:
    """Each response of a member at its `response_date`, with that membership's `group` and `segment_id`."""
    keyed = responses.withColumn("_response", F.monotonically_increasing_id())
    joined = keyed.alias("r").join(
        events.select("audience", ID_COLUMN, RUN_DATE, "event", "group", "segment_id").alias("e"),
        (F.col("r.audience") == F.col("e.audience")) & (F.col(f"r.{ID_COLUMN}") == F.col(f"e.{ID_COLUMN}"))
        & (F.col(f"e.{RUN_DATE}") <= F.col("r.response_date")))
    w = Window.partitionBy("_response").orderBy(F.col(f"e.{RUN_DATE}").desc())
    return (joined.withColumn("_n", F.row_number().over(w)).where((F.col("_n") == 1) & (F.col("e.event") == ENTERED))
            .select("r.audience", f"r.{ID_COLUMN}", "r.responded", "r.value", "r.response_date", "e.group",
                    "e.segment_id"))


def counts(matched: DataFrame) -> DataFrame:
    """Per audience, segment and group: customers, responders, value, first and last response date."""
    return matched.groupBy("audience", "segment_id", "group").agg(
        F.count(F.lit(1)).alias("customers"), F.sum("responded").cast("long").alias("responders"),
        F.sum("value").alias("value"), F.min("response_date").alias("first"), F.max("response_date").alias("last"))


def wilson(x: int, n: int, z: float) -> tuple[float, float]:
    """Wilson's score interval of a proportion x/n."""
    p = x / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def difference(x1: int, n1: int, x0: int, n0: int, confidence: float) -> dict[str, float | None]:
    """rate1 - rate0 with Newcombe's hybrid score interval and the pooled z-test's two-sided p-value."""
    if not n1 or not n0:
        return {"lift": None, "ci_low": None, "ci_high": None, "p_value": None}
    z = NormalDist().inv_cdf((1 + confidence) / 2)
    p1, p0 = x1 / n1, x0 / n0
    l1, u1 = wilson(x1, n1, z)
    l0, u0 = wilson(x0, n0, z)
    d = p1 - p0
    pooled = (x1 + x0) / (n1 + n0)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n0))
    p_value = math.erfc(abs(d / se) / math.sqrt(2)) if se > 0 else 1.0
    return {"lift": d, "ci_low": d - math.sqrt((p1 - l1) ** 2 + (u0 - p0) ** 2),
            "ci_high": d + math.sqrt((u1 - p1) ** 2 + (p0 - l0) ** 2), "p_value": p_value}


def lift_rows(grouped: list[dict[str, Any]], confidence: float, measured_at: dt.datetime) -> list[dict[str, Any]]:
    """LIFT_SCHEMA rows from `counts` (a few rows per audience): per segment, then overall."""
    cells: dict[tuple[str, int | None], dict[str, dict[str, Any]]] = {}
    for r in grouped:
        for key in ((r["audience"], r["segment_id"]), (r["audience"], None)):
            cell = cells.setdefault(key, {}).setdefault(r["group"], {"customers": 0, "responders": 0, "value": None,
                                                                     "first": None, "last": None})
            cell["customers"] += r["customers"]
            cell["responders"] += r["responders"]
            if r["value"] is not None:
                cell["value"] = (cell["value"] or 0.0) + r["value"]
            cell["first"] = min(d for d in (cell["first"], r["first"]) if d) if r["first"] or cell["first"] else None
            cell["last"] = max(d for d in (cell["last"], r["last"]) if d) if r["last"] or cell["last"] else None
    empty = {"customers": 0, "responders": 0, "value": None, "first": None, "last": None}
    out = []
    for (audience, segment_id), groups in sorted(cells.items(), key=lambda kv: (kv[0][0], kv[0][1] is None,
                                                                                 kv[0][1] or 0)):
        t, h = groups.get(TREATMENT, empty), groups.get(HOLDOUT, empty)
        dates = [d for g in (t, h) for d in (g["first"], g["last"]) if d]
        out.append({
            "audience": audience, "segment_id": segment_id,
            "treatment_customers": t["customers"], "holdout_customers": h["customers"],
            "treatment_responders": t["responders"], "holdout_responders": h["responders"],
            "treatment_rate": t["responders"] / t["customers"] if t["customers"] else None,
            "holdout_rate": h["responders"] / h["customers"] if h["customers"] else None,
            **difference(t["responders"], t["customers"], h["responders"], h["customers"], confidence),
            "confidence": confidence, "method": METHOD, "treatment_value": t["value"], "holdout_value": h["value"],
            "first_response_date": min(dates) if dates else None, "last_response_date": max(dates) if dates else None,
            "measured_at": measured_at,
        })
    return out
