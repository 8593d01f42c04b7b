"""MLflow helpers: one way to open a step's run and log what it was given."""
from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import subprocess
from pathlib import Path
from typing import Any, Dict, Iterator, Mapping, Optional, Sequence

import mlflow
from mlflow.entities import RunStatus
from omegaconf import DictConfig, OmegaConf

from bigcat_ml.config.schema import CONF_DIR
from bigcat_ml.tracking.names import STEP_KEY_TAG, STEP_TAG, metric_name
from bigcat_ml.tracking.redact import redact, redact_text

log = logging.getLogger(__name__)

# Opens the experiment on runs, metrics and charts instead of MLflow 3's GenAI view.
EXPERIMENT_KIND_TAG = {"mlflow.experimentKind": "custom_model_development"}


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
        if experiment.tags.get("mlflow.experimentKind") is None:  # e.g. made by `mlflow run`
            mlflow.MlflowClient().set_experiment_tag(experiment_id, *next(iter(EXPERIMENT_KIND_TAG.items())))
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


PROJECT_ROOT = CONF_DIR.parent
CODE_FOLDERS = ("bigcat_ml", "conf")


def _git(*args: str, root: Path = PROJECT_ROOT) -> Optional[str]:
    try:
        out = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout if out.returncode == 0 else None


def git_commit(root: Path = PROJECT_ROOT) -> Optional[str]:
    """The project's commit, when it is a git checkout (MLflow projects set it too)."""
    out = _git("rev-parse", "HEAD", root=root)
    return out.strip() if out else None


def code_version(root: Path = PROJECT_ROOT) -> str:
    """The commit, plus a hash of every uncommitted change under bigcat_ml/ and conf/:
    edits to tracked files and the content of untracked ones (a new model YAML, a new
    module), so that a run made with changed code is never mistaken for one made with
    the committed code. Files git ignores (``__pycache__``) do not count."""
    commit = git_commit(root) or "no-git"
    changes = hashlib.sha256((_git("diff", "HEAD", "--", *CODE_FOLDERS, root=root) or "").encode())
    untracked = (_git("ls-files", "--others", "--exclude-standard", "-z", "--", *CODE_FOLDERS, root=root) or "").split("\0")
    for name in sorted(n for n in untracked if n):
        changes.update(name.encode() + b"\0")
        with contextlib.suppress(OSError):
            changes.update(hashlib.sha256((root / name).read_bytes()).digest())
    if changes.digest() != hashlib.sha256(b"").digest():
        commit += "+dirty." + changes.hexdigest()[:12]
    return commit


def resolved_container(cfg: DictConfig) -> Dict[str, Any]:
    """The config with every interpolation resolved, as plain Python objects."""
    return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]


def loggable_config(cfg: DictConfig) -> Dict[str, Any]:
    """The resolved config with secrets redacted: what params and ``config.yaml`` show."""
    return redact(resolved_container(cfg))


def log_config(cfg: DictConfig, params: bool = True) -> None:
    """Log the redacted config as ``config.yaml`` (and as flattened params)."""
    container = loggable_config(cfg)
    if params:
        mlflow.log_params({metric_name(k): _param_value(v) for k, v in flatten(container).items()})
    mlflow.log_text(OmegaConf.to_yaml(container), "config.yaml")


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
    (see :func:`bigcat_ml.tracking.reuse.step_key`) is tagged so that ``main`` can find and reuse it.
    Logs the flattened config as params and the YAML as ``config.yaml``, secrets redacted
    (:func:`loggable_config`), as are URI user-info parts in tag values;
    ``mlflow.start_run`` ends the run as FAILED when the body raises.
    """
    setup_tracking(cfg.mlflow)
    all_tags = {STEP_TAG: step, **dict(cfg.mlflow.tags), **{k: redact_text(str(v)) for k, v in (tags or {}).items()}}
    if key:
        all_tags[STEP_KEY_TAG] = key
    commit = git_commit()
    if commit:
        all_tags["mlflow.source.git.commit"] = commit
    nested = mlflow.active_run() is not None
    with mlflow.start_run(run_name=run_name or step, nested=nested, tags=all_tags) as run, killed_on_interrupt():
        log_config(cfg)
        yield run


def _param_value(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 6000 else text[:5997] + "..."


@contextlib.contextmanager
def killed_on_interrupt() -> Iterator[None]:
    """Inside ``mlflow.start_run``: end the active run as KILLED when Ctrl-C or SIGTERM
    (:class:`bigcat_ml.runtime.signals.Terminated`) stops the block, not as FAILED."""
    try:
        yield
    except KeyboardInterrupt:
        mlflow.end_run(RunStatus.to_string(RunStatus.KILLED))
        raise
