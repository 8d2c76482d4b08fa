"""Lift: the interval and test on a published example, and, through the `lift` job, a known effect
per segment put into synthetic responses by the generator and recovered within its interval,
with no effect found where none was put; the page checked in headless Chromium."""

import datetime as dt

import pytest
from conftest import PROJECT, TEST_SESSION
from pyspark.sql import functions as F
from test_report_browser import check_report_in_browser

from jobs import lift as lift_job
from segmentation.campaign import lift
from segmentation.core.config import load_config
from segmentation.core.errors import InputError
from segmentation.downstream import holdout
from segmentation.downstream.audiences import AUDIENCE_EVENTS_SCHEMA
from segmentation.io import nights
from segmentation.synthetic.generator import responses as synthetic_responses

D1, D2, RESPONDED_ON = dt.date(2026, 1, 1), dt.date(2026, 1, 10), dt.date(2026, 1, 15)
EFFECTS = {0: 0.10, 1: 0.0, 2: 0.05, 3: 0.0}


def test_newcombes_hybrid_score_interval_matches_his_example():
    # Newcombe (1998), Statistics in Medicine 17:873, table II example (a): 56/70 - 48/80, method 10.
    got = lift.difference(56, 70, 48, 80, 0.95)
    assert got["lift"] == pytest.approx(0.2)
    assert (round(got["ci_low"], 4), round(got["ci_high"], 4)) == (0.0524, 0.3339)
    # The pooled z-test: z = 0.2 / sqrt(.6933 * .3067 * (1/70 + 1/80)) = 2.6502, two-sided p = 0.00805.
    assert got["p_value"] == pytest.approx(0.00805, abs=1e-5)
    assert lift.difference(0, 10, 0, 10, 0.95)["p_value"] == 1.0
    assert lift.difference(3, 10, 0, 0, 0.95)["lift"] is None


@pytest.fixture(scope="module")
def campaign(spark, tmp_path_factory):
    """A lake whose audience `a` has 20,000 members in four segments since D1, of whom the first
    200 exit on D2, and the generator's responses to it on RESPONDED_ON."""
    root = tmp_path_factory.mktemp("lift")
    args = ["--set", f"tables.root={root}", "--set", f"lift.report={root / 'lift.html'}", *TEST_SESSION]
    cfg = load_config(PROJECT / "conf", overrides=[a for a in args if a != "--set"])
    members = (spark.range(20_000).select(F.concat(F.lit("C"), F.col("id").cast("string")).alias("CUST_ID"),
                                          (F.col("id") % 4).cast("int").alias("segment_id"), "id")
               .withColumn("group", holdout.group_column("spring", 0.3)).withColumn("audience", F.lit("a")))
    entered = members.select(F.lit(D1).alias("run_date"), "audience", "CUST_ID", F.lit("entered").alias("event"),
                             "group", F.lit("eligible").alias("reason"), "segment_id")
    exited = members.where(F.col("id") < 200).select(
        F.lit(D2).alias("run_date"), "audience", "CUST_ID", F.lit("exited").alias("event"), "group",
        F.lit("moved").alias("reason"), "segment_id")
    spark.createDataFrame(entered.unionByName(exited).rdd, AUDIENCE_EVENTS_SCHEMA).write.format("delta") \
        .partitionBy("run_date").save(str(root / "audience_events"))
    for night in (D1, D2):
        nights.publish(spark, cfg, night, "m", 20_000, None, dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc))
    answers = synthetic_responses(members, EFFECTS, 0.10, seed=5, response_date=RESPONDED_ON)
    stranger = spark.createDataFrame([("X1", "a", 1, 1.0, RESPONDED_ON)], answers.schema)
    answers.unionByName(stranger).write.parquet(str(root / "responses.parquet"))
    assert lift_job.main(["--responses", str(root / "responses.parquet"), *args]) == 0
    rows = {r.segment_id: r for r in spark.read.format("delta").load(str(root / "audience_lift")).collect()}
    return root, args, rows


def test_a_known_effect_is_recovered_and_no_effect_found_where_none_was_put(campaign):
    _, _, rows = campaign
    assert set(rows) == {0, 1, 2, 3, None}
    for segment_id, effect in EFFECTS.items():
        r = rows[segment_id]
        assert r.ci_low <= effect <= r.ci_high, (segment_id, r.lift, r.ci_low, r.ci_high)
        assert (r.ci_low > 0 and r.p_value < 0.01) if effect else (r.ci_low < 0 < r.ci_high and r.p_value > 0.01)
        assert r.lift == pytest.approx(r.treatment_rate - r.holdout_rate)
    overall = rows[None]
    assert overall.ci_low <= sum(EFFECTS.values()) / 4 <= overall.ci_high
    # the 200 who exited before responding, and a stranger, are not counted
    assert overall.treatment_customers + overall.holdout_customers == 20_000 - 200
    assert abs(overall.holdout_customers / (20_000 - 200) - 0.3) < 0.01
    assert overall.method == "newcombe-hybrid-score" and overall.confidence == 0.95


def test_the_lift_page_opens_offline_with_its_chart(campaign):
    root, _, _ = campaign
    html = (root / "lift.html").read_text()
    assert "segment 2" in html and "Newcombe" in html
    check_report_in_browser(root / "lift.html")


def test_responses_without_a_column_are_refused_by_name(spark, campaign, tmp_path):
    _, args, _ = campaign
    spark.createDataFrame([("C1", "a", 1)], "CUST_ID string, audience string, responded int") \
        .write.parquet(str(tmp_path / "r.parquet"))
    assert lift_job.main(["--responses", str(tmp_path / "r.parquet"), *args]) == InputError.exit_code
    with pytest.raises(InputError, match="responded 0 or 1"):
        lift.checked_responses(spark.createDataFrame([("C1", "a", 2, RESPONDED_ON)],
                                                     "CUST_ID string, audience string, responded int, "
                                                     "response_date date"))
