"""Where the MLflow UI shows the results: said once, when what the user started ends.

A single run says it as its step ends. A Hydra sweep (``-m model=mobilenet,resnet50``)
runs its jobs one after another, each a whole step; its jobs say nothing and
:class:`AfterTheSweep` (``hydra.callbacks`` in conf/config.yaml) says it once all jobs
have ended, for the store and experiment of the last job that completed.
"""
from __future__ import annotations

from typing import Any, Optional

from hydra.core.hydra_config import HydraConfig
from hydra.core.utils import JobReturn, JobStatus
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig

from bigcat_ml.tracking.runs import setup_tracking
from bigcat_ml.tracking.ui import how_to_open


def in_a_sweep() -> bool:
    """Whether this step runs as one job of a Hydra sweep (``-m``)."""
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def say_where_the_ui_is(tracking_uri: str, experiment_id: str) -> None:
    """Print how to open the experiment's runs, unless a sweep says it at its end."""
    if not in_a_sweep():
        print(how_to_open(tracking_uri, experiment_id))


class AfterTheSweep(Callback):
    """Prints the UI hint once, after the last job of a sweep."""

    def __init__(self) -> None:
        self._last_completed: Optional[DictConfig] = None

    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs: Any) -> None:
        if job_return.status == JobStatus.COMPLETED:
            self._last_completed = config

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        if self._last_completed is None:
            return
        mlflow_cfg = self._last_completed.mlflow
        print(how_to_open(mlflow_cfg.tracking_uri, setup_tracking(mlflow_cfg)))
