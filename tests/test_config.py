from pathlib import Path

import pytest
import yaml

from segmentation.core.config import Config, ContractConfig, load_config
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
        ("train.clustering.stability.fraction=2",
         r"train\.clustering\.stability\.fraction must be less than or equal to 1, got 2"),
        ("train.forest.test_size=1.5", r"train\.forest\.test_size must be less than 1, got 1\.5"),
        ("train.clustering.guardrails.min_segments=9",
         r"train\.clustering\.guardrails\.min_segments \(9\) must not exceed train\.clustering\.guardrails\.max_segments \(8\)"),
        ("train.sample.max_rows=0", r"train\.sample\.max_rows must be greater than or equal to 1, got 0"),
        ("score.arrow_batch_rows=-100", r"score\.arrow_batch_rows must be greater than or equal to 1, got -100"),
        ("score.arrow_batch_rows=2147483648", r"score\.arrow_batch_rows must be less than or equal to 2147483647"),
        ("train.clustering.kmeans.k=[4, 0]", r"train\.clustering\.kmeans\.k\[1\] must be greater than or equal to 1, got 0"),
        ("contract.max_quarantine_share=.nan", r"contract\.max_quarantine_share must be a finite number, got nan"),
        ("contract.tenure_max=.inf", r"contract\.tenure_max must be a finite number, got inf"),
        ("contract.tenure_min=13", r"contract\.tenure_min \(13\.0\) must not exceed contract\.tenure_max \(12\.0\)"),
        ("spark.shuffle_partitions=0", r"spark\.shuffle_partitions must be greater than or equal to 1"),
        ("train.clustering.algorithms=[kmeans, hdbscan]", r"train\.clustering\.algorithms\[1\] must be one of"),
        ("imputation.columns=[TENUR]", r"imputation\.columns\[0\] must be one of"),
        ("train.sample.max_rows=6", r"train\.sample\.max_rows \(6\) must be at least the largest train\.clustering\.kmeans\.k \(10\)"),
        ("spark=4", r"config key spark must be a section \(mapping\), got 4"),
    ],
)
def test_values_out_of_range_are_refused_at_load_naming_the_key(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(CONF, ["local"], [override])


def test_edges_and_optional_values_that_are_allowed():
    cfg = load_config(CONF, ["local"], ["train.forest.max_depth=null", "train.clustering.stability.fraction=1",
                                        "spark.log_level=info", "train.forest.class_weight=null"])
    assert cfg.train.forest.max_depth is None and cfg.train.clustering.stability.fraction == 1.0
    assert cfg.spark.log_level == "INFO" and cfg.train.forest.class_weight is None


@pytest.mark.parametrize(
    "override, key, expected",
    [
        # The loader's coercions, and no others: an int where a float is declared, a number where
        # text is (YAML reads `model_version: 3` as an int), one value where a list is.
        ("contract.tenure_min=7", "contract.tenure_min", 7.0),
        ("score.model_version=3", "score.model_version", "3"),
        ("spark.app_name=1.5", "spark.app_name", "1.5"),
        ("train.clustering.kmeans.k=4", "train.clustering.kmeans.k", [4]),
        ("spark.extra={spark.sql.ansi.enabled: 'true', 1: 2}", "spark.extra", {"spark.sql.ansi.enabled": "true", "1": "2"}),
    ],
)
def test_what_the_loader_converts(override, key, expected):
    node = load_config(CONF, [], [override])
    for part in key.split("."):
        node = getattr(node, part)
    assert node == expected and type(node) is type(expected)


@pytest.mark.parametrize(
    "override, key",
    [
        ("train.sample.max_rows=true", "train.sample.max_rows"),  # a bool is not an int
        ("contract.tenure_max=true", "contract.tenure_max"),  # nor a float
        ("train.sample.max_rows=5.0", "train.sample.max_rows"),  # a float is not an int
        ("train.sample.max_rows='5'", "train.sample.max_rows"),  # text is not a number
        ("train.retrain=1", "train.retrain"),  # a number is not a bool
        ("score.model_version=yes", "score.model_version"),  # YAML's true is not a name
        ("spark.extra={spark.sql.ansi.enabled: true}", r"spark.extra.spark.sql.ansi.enabled"),
        ("imputation.method=1", "imputation.method"),
    ],
)
def test_what_the_loader_refuses(override, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_config(CONF, [], [override])


def test_base_yaml_states_no_declared_default():
    # A default lives in segmentation/core/config.py only; base.yaml may change one, not restate it.
    base = yaml.safe_load((CONF / "base.yaml").read_text()) or {}
    declared = Config().model_dump()

    def restated(tree, defaults, prefix=""):
        for key, value in tree.items():
            if isinstance(value, dict) and isinstance(defaults.get(key), dict):
                yield from restated(value, defaults[key], f"{prefix}{key}.")
            elif key in defaults and value == defaults[key]:
                yield f"{prefix}{key}"

    assert list(restated(base, declared)) == []


def test_an_empty_base_loads_the_declared_defaults(tmp_path):
    (tmp_path / "base.yaml").write_text("# nothing\n")
    assert load_config(tmp_path) == Config()
    assert Config.model_validate(Config().model_dump()) == Config()  # the defaults obey their own ranges


def test_contract_config_is_a_cache_key_and_round_trips_through_a_dict():
    # serving/realtime caches per ContractConfig; the pyfunc stores it as a dict and rebuilds it.
    contract = load_config(CONF, ["databricks"]).contract
    assert hash(contract) == hash(ContractConfig(**contract.model_dump()))
    assert ContractConfig(**contract.model_dump()) == contract


def test_values_are_taken_as_they_are_not_read_as_yaml():
    # --input passes its path as a value: YAML would read " #1.csv" as a comment and "yes" as true.
    cfg = load_config(CONF, ["local"], [], values={"input.source": "/data/a #1.csv"})
    assert cfg.input.source == "/data/a #1.csv"
    assert load_config(CONF, [], values={"input.source": "yes"}).input.source == "yes"
