"""Every config group option composes; bad overrides fail readably before Spark starts."""
from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf
from omegaconf.errors import ValidationError

from bigcat_ml.config.checks import RANGES, ConfigError, numeric_keys
from bigcat_ml.config.compose import CONF_DIR
from bigcat_ml.stepkit.step import compose

GROUPS = sorted(p.name for p in CONF_DIR.iterdir() if p.is_dir())


@pytest.mark.parametrize(
    "group,option",
    [(g, p.stem) for g in GROUPS for p in sorted((CONF_DIR / g).glob("*.yaml"))],
)
def test_every_group_option_composes_and_resolves(group, option, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:////tmp/never-used.db")
    cfg = compose([f"{group}={option}"])
    resolved = OmegaConf.to_container(cfg, resolve=True)
    assert resolved[group]  # the group is present and its interpolations resolve


def test_required_groups_have_the_options_the_project_documents():
    options = {g: {p.stem for p in (CONF_DIR / g).glob("*.yaml")} for g in GROUPS}
    assert {"sample", "oid"} <= options["data"]
    assert {"bigcats"} <= options["classes"]
    assert {"local", "standalone", "yarn"} <= options["spark"]
    assert {"mobilenet", "mobilenet_v2", "resnet50"} <= options["model"]
    assert "mlflow" in options and "paths" in options


def test_paths_are_absolute_and_follow_the_output_dir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    cfg = compose(["paths.output_dir=rel/out"])
    assert cfg.paths.output_dir == str(tmp_path / "rel" / "out")
    assert cfg.data.root == str(tmp_path / "rel/out/data/sample")
    assert cfg.mlflow.tracking_uri == f"sqlite:///{tmp_path}/rel/out/mlflow/mlflow.db"
    assert Path(cfg.preprocess.output).is_absolute()


def test_uris_are_not_turned_into_local_paths():
    cfg = compose(["data=oid", "data.root=hdfs://nn/oid"])
    assert list(cfg.data.boxes.train) == ["hdfs://nn/oid/oidv6-train-annotations-bbox.csv", "hdfs://nn/oid/train-annotations-bbox.csv"]
    assert list(cfg.data.image_labels.test)[1] == "hdfs://nn/oid/oidv6-test-annotations-human-imagelabels.csv"


def test_misspelt_key_names_the_key():
    with pytest.raises(ConfigCompositionException) as err:
        compose(["preprocess.min_chip_sid=3"])
    assert "min_chip_sid" in str(err.value) + str(err.value.__cause__)


def test_wrong_type_names_the_key_and_value():
    with pytest.raises((ConfigCompositionException, ValidationError)) as err:
        compose(["evaluate.batch_size=many"])
    text = str(err.value) + str(err.value.__cause__)
    assert "batch_size" in text and "many" in text


def test_unknown_group_option_lists_the_available_ones():
    with pytest.raises(ConfigCompositionException) as err:
        compose(["model=resnet51"])
    assert "resnet50" in str(err.value)


def test_every_value_of_the_default_config_is_set_by_a_yaml_file(monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:////tmp/never-used.db")
    for option in ([], ["data=oid"], ["mlflow=remote"]):
        OmegaConf.to_container(compose(option), resolve=True, throw_on_missing=True)


README = CONF_DIR.parent / "README.md"
_ROW = re.compile(r"^\| `(?P<key>[\w.]+)`(?: / `[\w.]+`)? \| (?:`(?P<default>[^`]*)`)? *\|")


def _readme_parameter_rows():
    table = README.read_text().split("### Main parameters", 1)[1].split("\n## ", 1)[0]
    return [m.groupdict() for m in map(_ROW.match, table.splitlines()) if m]


def _group_choices():
    defaults = OmegaConf.load(CONF_DIR / "config.yaml").defaults
    return {k: v for entry in defaults if isinstance(entry, dict) or OmegaConf.is_dict(entry) for k, v in entry.items()}


@pytest.mark.parametrize("row", _readme_parameter_rows(), ids=lambda row: row["key"])
def test_readme_parameter_table_shows_the_configured_defaults(row, tmp_path, monkeypatch):
    """The README's table is checked against conf/, so neither can drift from the other."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("BIGCAT_OUTPUT_DIR", raising=False)
    cfg = compose([])
    key, shown = row["key"], row["default"]
    if key in _group_choices():
        assert shown == _group_choices()[key]
        return
    value = OmegaConf.select(cfg, key, throw_on_missing=True)
    assert value is not None or shown == "null", f"README names {key}, which conf/ does not set"
    if shown is None:  # a row that explains a key without a single default
        return
    if isinstance(value, str) and Path(value).is_absolute():
        value = os.path.relpath(value, tmp_path)
    assert shown == OmegaConf.to_yaml({"v": value}).strip()[len("v: "):], f"README default of {key}"


# ------------------------------------------------------------- values the types let through


def _refusal(overrides) -> str:
    with pytest.raises(ConfigError) as err:
        compose(overrides)
    return str(err.value)


def test_numbers_outside_their_range_are_refused_together_naming_each_key_value_and_range():
    message = _refusal([
        "evaluate.batch_size=0", "preprocess.padding=-0.5", "preprocess.min_chip_side=0", "train.epochs=0",
        "preprocess.min_confidence=nan", "evaluate.size_buckets=[32,0]", "data.sample.images_per_subset.train=-1",
    ])
    assert message.startswith("7 bad config value(s)")
    for line in (
        "evaluate.batch_size=0: must be >= 1",
        "preprocess.padding=-0.5: must be >= 0",
        "preprocess.min_chip_side=0: must be >= 1",
        "train.epochs=0: must be >= 1",
        "preprocess.min_confidence=nan: must be in [0, 1]",
        "evaluate.size_buckets[1]=0: must be >= 1",
        "data.sample.images_per_subset.train=-1: must be >= 0",
    ):
        assert f"\n  {line}" in message


def test_every_numeric_setting_of_the_schema_has_a_declared_range():
    assert sorted(RANGES) == sorted(numeric_keys())


def test_a_key_the_schema_does_not_declare_is_refused_suggesting_the_declared_one():
    message = _refusal(["+model.wieghts=null", "+train.augment.flipp=true", "+spark.conf.spark.task.cpus=1", "+mlflow.tags.team=cats"])
    assert message.startswith("2 bad config value(s)")  # spark.conf and mlflow.tags are open maps
    assert "model.wieghts: not a setting of this project; did you mean model.weights?" in message
    assert "train.augment.flipp: not a setting of this project; did you mean train.augment.flip?" in message


@pytest.mark.parametrize("name", ["../x", "a/b", ".."])
def test_a_classes_name_that_is_not_a_plain_folder_name_is_refused(name):
    message = _refusal([f"classes.name='{name}'"])
    assert f"classes.name={name!r}: must be a plain folder name (no '/', not '.' or '..')" in message
