"""Hydra's record of a job (``.hydra/config.yaml``, ``hydra.yaml``, ``overrides.yaml``),
written with secrets redacted.

Hydra saves those files verbatim, so ``+spark.conf.spark.hadoop.fs.s3a.secret.key=...``
would sit in clear in three of them. ``conf/config.yaml`` turns Hydra's own saving off
(``hydra.output_subdir: null``) and registers :class:`RedactedJobFiles`, which writes the
same files, through :func:`bigcat_ml.tracking.redact.redact`, before the job runs: the
secret never reaches the disk. A sweep's ``multirun.yaml`` is saved by Hydra's sweeper
whatever ``output_subdir`` says; each job rewrites it redacted as it starts.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from bigcat_ml.tracking.redact import config_secret_keys, redact

SWEEP_FILE = "multirun.yaml"


def save_redacted(cfg: Any, path: Path, cfg_with_redact_group: DictConfig) -> None:
    """Save ``cfg`` (a config node, list or dict) as YAML, unresolved as Hydra saves it,
    with every secret-looking value replaced (the keys of ``redact.extra_keys`` too)."""
    container = OmegaConf.to_container(cfg, resolve=False, enum_to_str=True) if OmegaConf.is_config(cfg) else cfg
    path.parent.mkdir(parents=True, exist_ok=True)
    OmegaConf.save(OmegaConf.create(redact(container, secret_key=config_secret_keys(cfg_with_redact_group))), path)


class RedactedJobFiles(Callback):
    """Write Hydra's job files into ``<job output dir>/<subdir>``, redacted."""

    def __init__(self, subdir: str = ".hydra") -> None:
        self.subdir = subdir

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        folder = Path(config.hydra.runtime.output_dir) / self.subdir
        task = OmegaConf.masked_copy(config, [key for key in config if key != "hydra"])
        save_redacted(task, folder / "config.yaml", config)
        save_redacted(OmegaConf.masked_copy(config, ["hydra"]), folder / "hydra.yaml", config)
        save_redacted(config.hydra.overrides.task, folder / "overrides.yaml", config)
        sweep_file = Path(config.hydra.sweep.dir) / SWEEP_FILE
        if config.hydra.mode == RunMode.MULTIRUN and sweep_file.exists():
            save_redacted(OmegaConf.load(sweep_file), sweep_file, config)
