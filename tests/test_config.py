from pathlib import Path

import pytest

from segmentation.config import Config, load_config
from segmentation.errors import ConfigError

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
