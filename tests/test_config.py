from pathlib import Path

import pytest

from segmentation.core.config import Config, load_config
from segmentation.core.errors import ConfigError

CONF = Path(__file__).resolve().parents[1] / "conf"


def test_base_and_every_profile_load_into_typed_objects():
    for profile in sorted(p.stem for p in CONF.glob("*.yaml") if p.stem != "base"):
        cfg = load_config(CONF, [profile])
        assert isinstance(cfg, Config)
        assert isinstance(cfg.train.sample.max_rows, int)


def test_set_overrides_one_value_with_its_type():
    cfg = load_config(CONF, ["local"], ["train.sample.max_rows=500", "train.forest.max_depth=12"])
    assert cfg.train.sample.max_rows == 500
    assert cfg.train.forest.max_depth == 12
    assert cfg.train.clustering.kmeans.k == load_config(CONF, ["local"]).train.clustering.kmeans.k


def test_set_accepts_a_list_value():
    cfg = load_config(CONF, [], ["train.clustering.kmeans.k=[3, 4, 5]"])
    assert cfg.train.clustering.kmeans.k == [3, 4, 5]


@pytest.mark.parametrize(
    "override, key",
    [
        ("train.sample.max_rowz=5", "train.sample.max_rowz"),
        ("train.sample.max_rows=many", "train.sample.max_rows"),
        ("train.retrain=yes please", "train.retrain"),
        ("imputation.method=mean", "imputation.method"),
        ("nosuchsection.x=1", "nosuchsection"),
    ],
)
def test_bad_override_names_the_key(override, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_config(CONF, [], [override])


def test_unknown_key_in_a_file_names_the_key(tmp_path):
    (tmp_path / "base.yaml").write_text("train:\n  forest:\n    n_trees: 10\n")
    with pytest.raises(ConfigError, match=r"train\.forest\.n_trees"):
        load_config(tmp_path)


def test_wrong_type_in_a_file_names_the_key(tmp_path):
    (tmp_path / "base.yaml").write_text("score:\n  arrow_batch_rows: lots\n")
    with pytest.raises(ConfigError, match=r"score\.arrow_batch_rows"):
        load_config(tmp_path)


def test_unknown_profile_and_bad_yaml_are_named(tmp_path):
    (tmp_path / "base.yaml").write_text("input: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(tmp_path)
    with pytest.raises(ConfigError, match="unknown profile 'prod'"):
        load_config(CONF, ["prod"])
    with pytest.raises(ConfigError, match="dotted.key=value"):
        load_config(CONF, [], ["no-equals-sign"])


@pytest.mark.parametrize(
    "override, message",
    [
        # Each of these used to pass the loader and end in a raw ValueError inside scikit-learn or Spark.
        ("train.clustering.stability.fraction=2", r"train\.clustering\.stability\.fraction must be in \(0, 1\], got 2"),
        ("train.forest.test_size=1.5", r"train\.forest\.test_size must be in \(0, 1\), got 1\.5"),
        ("train.clustering.guardrails.min_segments=9",
         r"train\.clustering\.guardrails\.min_segments \(9\) must not exceed train\.clustering\.guardrails\.max_segments \(8\)"),
        ("train.sample.max_rows=0", r"train\.sample\.max_rows must be in \[1, inf\), got 0"),
        ("score.arrow_batch_rows=-100", r"score\.arrow_batch_rows must be in \[1, 2147483647\], got -100"),
        ("train.clustering.kmeans.k=[4, 0]", r"train\.clustering\.kmeans\.k\[1\] must be in \[1, inf\), got 0"),
        ("contract.max_quarantine_share=.nan", r"contract\.max_quarantine_share must be in \[0, 1\], got nan"),
        ("spark.shuffle_partitions=0", r"spark\.shuffle_partitions must be in \[1, inf\)"),
        ("train.clustering.algorithms=[kmeans, hdbscan]", r"train\.clustering\.algorithms\[1\] must be one of"),
        ("imputation.columns=[TENUR]", r"imputation\.columns\[0\] must be one of"),
        ("train.sample.max_rows=6", r"train\.sample\.max_rows \(6\) must be at least the largest train\.clustering\.kmeans\.k \(10\)"),
    ],
)
def test_values_out_of_range_are_refused_at_load_naming_the_key(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(CONF, ["local"], [override])


def test_ranges_name_real_keys_and_the_shipped_profiles_keep_them():
    from segmentation.core.config import CHOICES, RANGES, value_at

    cfg = Config()
    for key in [*RANGES, *CHOICES]:
        value_at(cfg, key)  # a KeyError here: a range declared for a key that does not exist
    # Edges and optional values that are allowed.
    cfg = load_config(CONF, ["local"], ["train.forest.max_depth=null", "train.clustering.stability.fraction=1",
                                        "spark.log_level=info", "train.forest.class_weight=null"])
    assert cfg.train.forest.max_depth is None and cfg.train.clustering.stability.fraction == 1.0


def test_values_are_taken_as_they_are_not_read_as_yaml():
    # --input passes its path as a value: YAML would read " #1.csv" as a comment and "yes" as true.
    cfg = load_config(CONF, ["local"], [], values={"input.source": "/data/a #1.csv"})
    assert cfg.input.source == "/data/a #1.csv"
    assert load_config(CONF, [], values={"input.source": "yes"}).input.source == "yes"
