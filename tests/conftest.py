"""Shared fixtures: composed configs in a temporary output folder, one local Spark."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, List, Optional

import pytest
from omegaconf import DictConfig

from bigcat_ml.stepkit.step import compose

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


from helpers.runs import TINY_SAMPLE


# `mlflow.set_tracking_uri` exports MLFLOW_TRACKING_URI, which conf/mlflow/local.yaml reads, and
# `mlflow run` hands its run and experiment over through the other two.
HANDED_OVER = ("MLFLOW_TRACKING_URI", "MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT_ID")


def _forget_handed_over() -> None:
    for name in HANDED_OVER:
        os.environ.pop(name, None)


# Before any fixture: a shell that exported the README's store (or `mlflow run`'s handed-over
# run) must not reach the session and module fixtures set up ahead of the first test.
_forget_handed_over()


@pytest.fixture(autouse=True)
def _own_tracking_store():
    """Every test, and every module fixture set up between two tests, starts with none of
    :data:`HANDED_OVER` set: without this, one test's store would leak into every later
    composed config. Cleared after the test as well as before, because a module fixture is
    set up before the first test's own fixtures run. Being autouse, this is torn down after
    the test's ``monkeypatch`` has restored what it changed."""
    _forget_handed_over()
    yield
    import mlflow

    while mlflow.active_run():
        mlflow.end_run("KILLED")
    _forget_handed_over()


@pytest.fixture
def make_cfg(tmp_path: Path) -> Callable[..., DictConfig]:
    """Compose the real config with everything written under ``tmp_path``."""

    def _make(overrides: Optional[List[str]] = None, output_dir: Optional[Path] = None) -> DictConfig:
        out = output_dir or tmp_path / "outputs"
        overrides = list(overrides or [])
        real_data = any(o.startswith("data=") and o != "data=sample" for o in overrides) and not any(
            o.startswith("data=sample") for o in overrides
        )
        tiny = [o for o in TINY_SAMPLE if not (real_data and o.startswith("data.sample"))]
        return compose([f"paths.output_dir={out}", *tiny, *overrides])

    return _make


@pytest.fixture(scope="session")
def spark():
    """One local[2] SparkSession for the whole test session."""
    from bigcat_ml.runtime.spark import get_spark

    session = get_spark(compose(TINY_SAMPLE).spark)
    yield session
    session.stop()
