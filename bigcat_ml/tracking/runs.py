"""MLflow helpers: one way to open a step's run and log what it was given."""
from __future__ import annotations

import contextlib
import enum
import functools
import hashlib
import logging
import subprocess
from pathlib import Path
from typing import Any, Dict, Iterator, Mapping, Optional

import mlflow
from mlflow.data.dataset_source_registry import resolve_dataset_source
from mlflow.data.meta_dataset import MetaDataset
from mlflow.environment_variables import MLFLOW_EXPERIMENT_ID
from mlflow.entities import RunStatus
from omegaconf import DictConfig, OmegaConf

from bigcat_ml.config.compose import flatten
from bigcat_ml.tracking import names
from bigcat_ml.tracking.names import STEP_KEY_TAG, STEP_TAG, metric_name
from bigcat_ml.tracking.redact import config_secret_keys, redact, redact_text
from bigcat_ml.tracking.ui import publish_default_view

log = logging.getLogger(__name__)

# The error's first line on a FAILED run, cut to this many characters (a tag, a headline).
_ERROR_CHARS = 500
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
    publish_default_view(mlflow.MlflowClient(), experiment_id)
    return experiment_id


def _artifact_uri(location: Optional[str]) -> Optional[str]:
    if not location:
        return None
    return location if "://" in location else Path(location).resolve().as_uri()


PROJECT_ROOT = Path(__file__).resolve().parents[2]
CODE_FOLDERS = ("bigcat_ml", "conf")


def _git(*args: str, root: Path = PROJECT_ROOT) -> Optional[str]:
    try:
        out = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout if out.returncode == 0 else None


def git_commit(root: Path) -> Optional[str]:
    """The commit of the checkout at ``root``, when it is a git checkout (MLflow projects set it too)."""
    out = _git("rev-parse", "HEAD", root=root)
    return out.strip() if out else None


def code_version_of(root: Path) -> str:
    """The commit of the checkout at ``root``, plus a hash of every uncommitted change under bigcat_ml/ and conf/:
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


# Once per process: the code a process runs is what it imported when it started, so an
# edit made while it runs (between the jobs of a sweep) must not change the version its
# later runs record; and every step run and reuse key would otherwise ask git again.
@functools.cache
def code_version() -> str:
    """This process's code version (:func:`code_version_of` the project), computed once."""
    return code_version_of(PROJECT_ROOT)


@functools.cache
def project_commit() -> Optional[str]:
    """This process's commit (:func:`git_commit` of the project), asked once."""
    return git_commit(PROJECT_ROOT)


def resolved_container(cfg: DictConfig) -> Dict[str, Any]:
    """The config with every interpolation resolved, as plain Python objects."""
    return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]


def loggable_config(cfg: DictConfig) -> Dict[str, Any]:
    """The resolved config with secrets redacted: what params and ``config.yaml`` show."""
    return redact(resolved_container(cfg), secret_key=config_secret_keys(cfg))


def log_config(cfg: DictConfig, params: bool = True) -> None:
    """Log the redacted config as ``config.yaml`` (and as flattened params)."""
    container = loggable_config(cfg)
    if params:
        mlflow.log_params({metric_name(k): _param_value(v) for k, v in flatten(container).items()})
    mlflow.log_text(OmegaConf.to_yaml(container), names.CONFIG_ARTIFACT)


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
    reuse it. Logs the flattened config as params and the YAML as ``config.yaml``, secrets
    redacted (:func:`loggable_config`), as are ``mlflow.tags`` under secret-looking names and
    URI user-info and secret query parameters in every tag value, and the
    code version (commit plus a hash of uncommitted and untracked changes) as a tag.
    ``mlflow.start_run`` ends the run as FAILED when the body raises (the error's first
    line then tagged and shown as the run's description), KILLED when a signal stops it. The first run opened in a process started by
    ``mlflow run`` is the project run itself (``MLFLOW_RUN_ID``).
    """
    setup_tracking(cfg.mlflow)
    user_tags = redact(OmegaConf.to_container(cfg.mlflow.tags, resolve=True), secret_key=config_secret_keys(cfg))
    all_tags = {STEP_TAG: step, **user_tags, **{k: redact_text(str(v)) for k, v in (tags or {}).items()}}
    if key:
        all_tags[STEP_KEY_TAG] = key
    commit = project_commit()
    if commit:
        all_tags["mlflow.source.git.commit"] = commit
    all_tags[names.CODE_VERSION_TAG] = code_version()
    nested = mlflow.active_run() is not None
    with mlflow.start_run(run_name=run_name or step, nested=nested, tags=all_tags) as run, killed_on_interrupt(), \
            error_recorded():
        log_config(cfg)
        yield run


def _param_value(value: Any) -> str:
    """The value as a user typed it: ``auto``, not ``InferencePath.auto``."""
    text = str(_plain(value))
    return text if len(text) <= 6000 else text[:5997] + "..."


def _plain(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value


def error_summary(error: BaseException) -> str:
    """``ValueError: <the message's first line>``, short enough for a tag."""
    lines = str(error).strip().splitlines()
    text = f"{type(error).__name__}: {lines[0]}" if lines else type(error).__name__
    return redact_text(text if len(text) <= _ERROR_CHARS else text[: _ERROR_CHARS - 3] + "...")


@contextlib.contextmanager
def error_recorded() -> Iterator[None]:
    """Inside ``mlflow.start_run``: a body that raises leaves its error's first line on the
    run (tag and description), so the UI's FAILED run says why before ``start_run`` ends it."""
    try:
        yield
    except Exception as error:
        summary = error_summary(error)
        mlflow.set_tags({names.ERROR_TAG: summary, names.NOTE_TAG: f"FAILED: {summary}"})
        raise


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


@contextlib.contextmanager
def killed_on_interrupt() -> Iterator[None]:
    """Inside ``mlflow.start_run``: end the active run as KILLED when Ctrl-C or SIGTERM
    (:class:`bigcat_ml.runtime.signals.Terminated`) stops the block, not as FAILED."""
    try:
        yield
    except KeyboardInterrupt:
        mlflow.end_run(RunStatus.to_string(RunStatus.KILLED))
        raise
