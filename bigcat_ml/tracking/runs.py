"""MLflow helpers: one way to open a step's run and log what it was given."""
from __future__ import annotations

import contextlib
import hashlib
import logging
import subprocess
from pathlib import Path
from typing import Any, Dict, Iterator, Mapping, Optional

import mlflow
from mlflow.data.dataset_source_registry import resolve_dataset_source
from mlflow.data.meta_dataset import MetaDataset
from mlflow.environment_variables import MLFLOW_EXPERIMENT_ID
from omegaconf import DictConfig, OmegaConf

from bigcat_ml.config.compose import CONF_DIR, flatten
from bigcat_ml.tracking import names
from bigcat_ml.tracking.names import STEP_KEY_TAG, STEP_TAG, metric_name

log = logging.getLogger(__name__)

# MLflow caps a dataset digest at 36 characters; the full sha256 is in the run's tags.
_MLFLOW_DIGEST_CHARS = 32


def setup_tracking(mlflow_cfg: Any) -> str:
    """Point MLflow at the configured store and experiment; return the experiment id.

    Under ``mlflow run`` the project run already exists in the experiment MLflow chose
    (``--experiment-name``/``--experiment-id``, else ``Default``) and the environment
    hands it over (``MLFLOW_RUN_ID``, ``MLFLOW_EXPERIMENT_ID``): the steps log under that
    experiment, since MLflow refuses to resume a run in any other one.
    """
    uri = mlflow_cfg.tracking_uri
    if uri.startswith("sqlite:///"):
        Path(uri[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(uri)
    handed_over = MLFLOW_EXPERIMENT_ID.get()
    if handed_over:
        experiment_id = str(handed_over)
        name = mlflow.get_experiment(experiment_id).name
        if name != mlflow_cfg.experiment_name:
            log.info(
                "logging under experiment '%s' (id %s) from the environment (as `mlflow run` sets it), "
                "not mlflow.experiment_name='%s'",
                name, experiment_id, mlflow_cfg.experiment_name,
            )
    else:
        experiment = mlflow.get_experiment_by_name(mlflow_cfg.experiment_name)
        if experiment is None:
            experiment_id = mlflow.create_experiment(
                mlflow_cfg.experiment_name, artifact_location=_artifact_uri(mlflow_cfg.artifact_location)
            )
        else:
            experiment_id = experiment.experiment_id
    mlflow.set_experiment(experiment_id=experiment_id)
    return experiment_id


def _artifact_uri(location: Optional[str]) -> Optional[str]:
    if not location:
        return None
    return location if "://" in location else Path(location).resolve().as_uri()


def _git(*args: str) -> Optional[str]:
    try:
        out = subprocess.run(["git", *args], cwd=CONF_DIR.parent, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout if out.returncode == 0 else None


def git_commit() -> Optional[str]:
    """The project's commit, when it is a git checkout (MLflow projects set it too)."""
    out = _git("rev-parse", "HEAD")
    return out.strip() if out else None


def code_version() -> str:
    """The commit, plus a hash of uncommitted changes to tracked code, so that a run made
    with edited code is never mistaken for one made with the committed code."""
    commit = git_commit() or "no-git"
    diff = _git("diff", "HEAD", "--", "bigcat_ml", "conf")
    if diff:
        commit += "+dirty." + hashlib.sha256(diff.encode()).hexdigest()[:12]
    return commit


def resolved_container(cfg: DictConfig) -> Dict[str, Any]:
    """The config with every interpolation resolved, as plain Python objects."""
    return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]


@contextlib.contextmanager
def step_run(
    cfg: DictConfig,
    step: str,
    key: Optional[str] = None,
    run_name: Optional[str] = None,
    tags: Optional[Mapping[str, str]] = None,
) -> Iterator[mlflow.ActiveRun]:
    """Open the run for one pipeline step and log the resolved config.

    Nested under an active parent run (the ``main`` chain) when there is one; ``key``
    (see :func:`bigcat_ml.tracking.reuse.step_key`) is tagged so that ``main`` can find and
    reuse it. Logs the flattened config as params, the YAML as ``config.yaml`` and the code
    version (commit plus a hash of uncommitted changes) as a tag; ``mlflow.start_run`` ends
    the run as FAILED when the body raises. The first run opened in a process started by
    ``mlflow run`` is the project run itself (``MLFLOW_RUN_ID``).
    """
    setup_tracking(cfg.mlflow)
    container = resolved_container(cfg)
    all_tags = {STEP_TAG: step, **dict(cfg.mlflow.tags), **dict(tags or {})}
    if key:
        all_tags[STEP_KEY_TAG] = key
    commit = git_commit()
    if commit:
        all_tags["mlflow.source.git.commit"] = commit
    all_tags[names.CODE_VERSION_TAG] = code_version()
    nested = mlflow.active_run() is not None
    with mlflow.start_run(run_name=run_name or step, nested=nested, tags=all_tags) as run:
        mlflow.log_params({metric_name(k): _param_value(v) for k, v in flatten(container).items()})
        mlflow.log_text(OmegaConf.to_yaml(container), "config.yaml")
        yield run


def _param_value(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 6000 else text[:5997] + "..."


def log_chip_dataset_input(
    url: str, name: str, digest: str, context: str, tags: Optional[Mapping[str, str]] = None
) -> None:
    """Log a chip dataset as an input of the active run, where the UI's Datasets column shows it.

    ``digest`` is the dataset's full content sha256; MLflow keeps its first characters.
    """
    source = resolve_dataset_source(url)
    mlflow.log_input(
        MetaDataset(source=source, name=name, digest=digest[:_MLFLOW_DIGEST_CHARS]), context=context, tags=dict(tags or {})
    )
