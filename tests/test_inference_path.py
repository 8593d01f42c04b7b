"""evaluate.path=auto: one process for small datasets in Spark local mode, Spark otherwise."""
from __future__ import annotations

import pytest

from bigcat_ml.stepkit.step import compose
from bigcat_ml.config.schema import InferencePath
from bigcat_ml.scoring.evaluation import choose_path


def sections_for(path: str, master: str, threshold: int = 500):
    """The evaluate and spark sections choose_path reads."""
    cfg = compose([f"evaluate.path={path}", f"spark.master='{master}'", f"evaluate.auto_local_max_chips={threshold}"])
    return cfg.evaluate, cfg.spark


def test_auto_is_the_default_path():
    assert compose().evaluate.path is InferencePath.auto


@pytest.mark.parametrize(
    "master, chips, expected",
    [
        ("local[2]", 499, InferencePath.local),
        ("local[*]", 0, InferencePath.local),
        ("local[2]", 500, InferencePath.spark),  # at the threshold Spark is as fast
        ("spark://master:7077", 10, InferencePath.spark),  # a cluster has more cores than this process
        ("yarn", 10, InferencePath.spark),
    ],
)
def test_auto_takes_one_process_only_below_the_threshold_in_local_mode(master, chips, expected):
    assert choose_path(*sections_for("auto", master), chips) is expected


@pytest.mark.parametrize("path", ["spark", "local"])
def test_an_explicit_path_is_kept_whatever_the_size(path):
    assert choose_path(*sections_for(path, "local[2]"), 10) is InferencePath(path)
    assert choose_path(*sections_for(path, "yarn"), 10**6) is InferencePath(path)


def test_an_unknown_path_is_refused_naming_the_choices():
    with pytest.raises(Exception, match="evaluate.path=fast") as refused:
        compose(["evaluate.path=fast"])
    assert "spark, local, auto" in str(refused.value.__cause__)
