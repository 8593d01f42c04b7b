"""Composing the project config outside ``@hydra.main``: where ``conf/`` is, the resolvers it
uses, and one flattening of its keys. Making it safe to use (checks, absolute paths, the
default chip folder) is :func:`bigcat_ml.stepkit.step.finalize`'s job, one layer up.

``conf/`` sits beside the package in a checkout; an installed wheel carries a copy inside
the package (``bigcat_ml/conf``), so a cluster image composes the same configs.
"""
from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional

from omegaconf import OmegaConf

import bigcat_ml.config.schema  # noqa: F401  (registers the schema Hydra composes onto)


def absolute_path(path: str) -> str:
    """Resolve a local path against the caller's working directory; leave URIs alone.

    Hydra does not change the working directory here (``hydra.job.chdir=false``), so a
    relative path means what the user typed it relative to.
    """
    if "://" in path:
        return path
    return str(Path(path).expanduser().resolve())


if not OmegaConf.has_resolver("abspath"):
    OmegaConf.register_new_resolver("abspath", absolute_path)
# A random suffix for Hydra's run folders, so two runs started in the same second (the
# resolution of ${now:}) do not share one. Cached per config like ``now``: every
# resolution of hydra.run.dir in one run (and Hydra's copies for a sweep's jobs) agrees.
if not OmegaConf.has_resolver("run_token"):
    OmegaConf.register_new_resolver("run_token", lambda: secrets.token_hex(3), use_cache=True)


def flatten(tree: Mapping[str, Any], prefix: str = "") -> Dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``; lists are kept whole.

    One flattening for MLflow params and Spark keys alike, so a nested YAML key and the
    dotted name the user overrides on the command line are the same string.
    """
    flat: Dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, Mapping):
            flat.update(flatten(value, name))
        else:
            flat[name] = value
    return flat


# An installed wheel carries conf/ inside the package; a checkout has it beside the package.
_PACKAGED_CONF = Path(__file__).resolve().parents[1] / "conf"
CONF_DIR = _PACKAGED_CONF if _PACKAGED_CONF.is_dir() else Path(__file__).resolve().parents[2] / "conf"


def composed(overrides: Optional[List[str]] = None) -> Any:
    """The project config as ``@hydra.main`` composes it, before
    :func:`bigcat_ml.stepkit.step.finalize` (which :func:`bigcat_ml.stepkit.step.compose` applies)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return hydra_compose(config_name="config", overrides=list(overrides or []))
