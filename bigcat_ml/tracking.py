"""MLflow helpers: one way to open a step's run and log what it was given."""
from __future__ import annotations

import contextlib
import logging
import subprocess
from pathlib import Path
from typing import Any, Dict, Iterator, Mapping, Optional

import mlflow
from omegaconf import DictConfig, OmegaConf

from bigcat_ml.config import CONF_DIR

log = logging.getLogger(__name__)

# Opens the experiment on runs, metrics and charts instead of MLflow 3's GenAI view.
EXPERIMENT_KIND_TAG = {"mlflow.experimentKind": "custom_model_development"}
STEP_TAG = "bigcat.step"


def setup_tracking(mlflow_cfg: Any) -> str:
    """Point MLflow at the configured store and experiment; return the experiment id."""
    uri = mlflow_cfg.tracking_uri
    if uri.startswith("sqlite:///"):
        Path(uri[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(uri)
    experiment = mlflow.get_experiment_by_name(mlflow_cfg.experiment_name)
    if experiment is None:
        experiment_id = mlflow.create_experiment(
            mlflow_cfg.experiment_name,
            artifact_location=_artifact_uri(mlflow_cfg.artifact_location),
            tags=EXPERIMENT_KIND_TAG,
        )
    else:
        experiment_id = experiment.experiment_id
    mlflow.set_experiment(experiment_id=experiment_id)
    return experiment_id


def _artifact_uri(location: Optional[str]) -> Optional[str]:
    if not location:
        return None
    return location if "://" in location else Path(location).resolve().as_uri()


def flatten(cfg: Mapping[str, Any], prefix: str = "") -> Dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``; lists are kept whole as their string."""
    flat: Dict[str, Any] = {}
    for key, value in cfg.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, Mapping):
            flat.update(flatten(value, name))
        else:
            flat[name] = value
    return flat


def git_commit() -> Optional[str]:
    """The project's commit, when it is a git checkout (MLflow projects set it too)."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=CONF_DIR.parent, capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def resolved_container(cfg: DictConfig) -> Dict[str, Any]:
    """The config with every interpolation resolved, as plain Python objects."""
    return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]


@contextlib.contextmanager
def step_run(cfg: DictConfig, step: str, run_name: Optional[str] = None, tags: Optional[Mapping[str, str]] = None) -> Iterator[mlflow.ActiveRun]:
    """Open the run for one pipeline step and log the resolved config.

    Nested under an active parent run (the ``main`` chain) when there is one. Logs the
    flattened config as params and the YAML as ``config.yaml``; ``mlflow.start_run``
    ends the run as FAILED when the body raises.
    """
    setup_tracking(cfg.mlflow)
    container = resolved_container(cfg)
    all_tags = {STEP_TAG: step, **dict(cfg.mlflow.tags), **dict(tags or {})}
    commit = git_commit()
    if commit:
        all_tags["mlflow.source.git.commit"] = commit
    nested = mlflow.active_run() is not None
    with mlflow.start_run(run_name=run_name or step, nested=nested, tags=all_tags) as run:
        mlflow.log_params({k: _param_value(v) for k, v in flatten(container).items()})
        mlflow.log_text(OmegaConf.to_yaml(container), "config.yaml")
        yield run


def _param_value(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 6000 else text[:5997] + "..."
