"""Personal data kept only where it must be: quarantine holds the contract's columns, not the
whole line, and the report's customer sample is kept only as `report.sample` allows."""

import json

import pandas as pd
import pytest
from conftest import BUNDLED_CSV, PROJECT
from test_report import CHART_COUNT, DISTRIBUTION_COLUMNS, synthetic_inputs

from jobs import features as features_job
from jobs import train as train_job
from segmentation.core.config import load_config
from segmentation.core.errors import ConfigError
from segmentation.report import inputs as report_inputs
from segmentation.report.charts import NO_SAMPLE
from segmentation.report.html import render_html
from segmentation.report.markdown import render_markdown

RUN_DATE = "2026-03-01"
HEADER = BUNDLED_CSV.read_text().splitlines()[0].split(",")
GOOD = BUNDLED_CSV.read_text().splitlines()[1:101]
EMAIL = "jane.doe@example.com"


def _with_email(line: str, email: str, **changes) -> str:
    values = dict(zip(HEADER, line.split(",")))
    values.update({k: str(v) for k, v in changes.items()})
    # EMAIL sits between the contract's columns: fields are found by the header's names.
    return ",".join([values["CUST_ID"], email, *[values[c] for c in HEADER[1:]]])


def test_quarantine_keeps_only_the_contracts_columns_of_a_malformed_line(spark, tmp_path, lake):
    header = ",".join([HEADER[0], "EMAIL", *HEADER[1:]])
    lines = [_with_email(line, f"c{i}@example.com") for i, line in enumerate(GOOD)]
    malformed = _with_email(GOOD[0], EMAIL, CUST_ID="X1", BALANCE="lots")  # a value that is not a number
    negative = _with_email(GOOD[1], "john@example.com", CUST_ID="X2", BALANCE=-5)  # breaks a rule, parses
    unparseable = "X3,broken@example.com,1.0,2.0"  # too few fields
    source = tmp_path / "with_email.csv"
    source.write_text("\n".join([header, *lines, malformed, negative, unparseable]) + "\n")
    args = ["--run-date", RUN_DATE, "--input", str(source), *lake, "--set", "contract.max_quarantine_share=0.1"]
    assert features_job.main(args) == 0

    rows = {r.CUST_ID: r for r in spark.read.format("delta").load(str(tmp_path / "lake" / "quarantine")).collect()}
    assert set(rows) == {"X1", "X2", "X3"}
    kept = json.loads(rows["X1"].raw)
    assert "malformed_line" in rows["X1"].reasons
    assert kept["CUST_ID"] == "X1" and kept["BALANCE"] == "lots" and "EMAIL" not in kept
    assert set(kept) <= set(HEADER)
    assert EMAIL not in rows["X1"].raw and "@" not in rows["X2"].raw
    assert json.loads(rows["X2"].raw)["BALANCE"] == -5.0
    # Too few fields: Spark reads only the columns the contract needs, so the line is not taken as
    # malformed; its contract columns are kept (and it lacks values). A line that is flagged and
    # does not split into the header's fields is kept whole: test_bad_input's X8.
    assert "@" not in rows["X3"].raw and json.loads(rows["X3"].raw)["CUST_ID"] == "X3"


# ---------------------------------------------------------------------------------------------
# the report's customer sample: report.sample = full | pseudonymised | off



def _report(mode: str):
    base = synthetic_inputs()
    base.sample = report_inputs.shared_sample(base.sample, mode, seed=3)
    return base


def test_the_full_sample_is_kept_as_it_is():
    original = synthetic_inputs().sample
    assert report_inputs.shared_sample(original, "full") is original


def test_a_pseudonymised_sample_holds_no_exact_value_and_keeps_the_charts(tmp_path):
    original = synthetic_inputs().sample
    shown = report_inputs.shared_sample(original, "pseudonymised", seed=3)
    assert len(shown) == len(original) and list(shown.columns) == list(original.columns)
    assert sorted(shown["segment_id"]) == sorted(original["segment_id"])
    assert not shown.reset_index(drop=True)[["pc1"]].equals(original.reset_index(drop=True)[["pc1"]])  # shuffled
    for column in DISTRIBUTION_COLUMNS:
        exact = set(original[column].round(6)) - {0.0}
        values = shown[column].dropna()
        digits = values[values != 0].map(lambda v: len(f"{abs(v):.6e}".split("e")[0].replace(".", "").rstrip("0")))
        assert (digits <= 2).all(), column  # 2 significant digits at most
        assert len(exact & set(values.round(6))) < 0.05 * len(exact), column  # almost no value survives exactly
        # Rounding to 2 significant digits moves a value by at most 5%.
        assert abs(values.sum() - original[column].dropna().sum()) <= 0.05 * original[column].abs().sum()
    html = render_html(_report("pseudonymised"))
    assert html.count("data:image/png;base64,") == CHART_COUNT and NO_SAMPLE not in html


def test_with_the_sample_off_the_report_renders_and_says_why_three_charts_are_missing(tmp_path):
    inputs = _report("off")
    assert inputs.sample.empty and {"segment_id", "pc1", "pc2", "silhouette"} <= set(inputs.sample.columns)
    html, md = render_html(inputs), render_markdown(inputs)
    assert html.count("data:image/png;base64,") == CHART_COUNT  # every figure is there, three as a notice
    assert html.count(f"<figcaption>{NO_SAMPLE}") == 3
    assert md.count(NO_SAMPLE) == 3
    report_inputs.save(inputs, tmp_path / "report_data")  # rebuilt later from what was saved
    assert pd.read_parquet(tmp_path / "report_data" / "sample.parquet").empty
    assert render_html(report_inputs.load(tmp_path / "report_data")).count(f"<figcaption>{NO_SAMPLE}") == 3


def test_the_report_sample_mode_is_declared_and_off_on_databricks():
    assert load_config(PROJECT / "conf", ["local"]).report.sample == "full"
    assert load_config(PROJECT / "conf", ["databricks"]).report.sample == "off"
    assert load_config(PROJECT / "conf", ["local"], ["report.sample=off"]).report.sample == "off"  # YAML's false
    with pytest.raises(ConfigError, match=r"report\.sample must be one of 'full', 'pseudonymised' or 'off'"):
        load_config(PROJECT / "conf", ["local"], ["report.sample=everyone"])


def test_a_train_with_the_sample_off_keeps_no_customer_row_in_the_bundle_or_mlflow(spark, tmp_path, lake):
    args = ["--run-date", RUN_DATE, "--input", str(BUNDLED_CSV), *lake, "--set", "report.sample=off",
            "--set", "train.clustering.algorithms=[kmeans]", "--set", "train.clustering.kmeans.k=[4]",
            "--set", "train.clustering.stability.resamples=0", "--set", "train.sample.max_rows=2000"]
    assert features_job.main(args) == 0
    assert train_job.main(args) == 0
    lake_dir = tmp_path / "lake"
    samples = [*(lake_dir / "models").rglob("report_data/sample.parquet"),
               *(lake_dir / "mlflow" / "artifacts").rglob("report_data/sample.parquet")]
    assert len(samples) == 2 and all(pd.read_parquet(p).empty for p in samples)
    [page] = list((lake_dir / "models").rglob("report.html"))
    assert page.read_text().count(f"<figcaption>{NO_SAMPLE}") == 3
