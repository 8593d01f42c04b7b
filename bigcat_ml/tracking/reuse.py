"""Reuse keys: a hash of what a step's result depends on, so ``main`` can reuse a finished run.

A step tags its run with its key (:data:`bigcat_ml.tracking.names.STEP_KEY_TAG`) and
``main`` looks for a finished run with the same key before recomputing. Which config
sections and inputs the key covers is said by each step's record in
:mod:`bigcat_ml.stepkit.step`.
"""
from __future__ import annotations

import hashlib
import json
from typing import Mapping, Optional, Sequence

import mlflow
from omegaconf import DictConfig, OmegaConf

from bigcat_ml.tracking.names import STEP_KEY_TAG, STEP_TAG
from bigcat_ml.config.compose import flatten
from bigcat_ml.tracking.runs import code_version


def step_key(
    cfg: DictConfig,
    sections: Sequence[str],
    ignore: Sequence[str] = (),
    extra: Optional[Mapping[str, str]] = None,
) -> str:
    """A hash of what a step's result depends on: its config sections, inputs, and code.

    ``ignore`` lists dotted key prefixes that change how a step runs but not what it
    produces (``preprocess.overwrite``); ``extra`` adds inputs that are not config (the
    chip dataset's digest). Two runs with the same key compute the same thing, so
    ``main`` reuses a finished one instead of recomputing.
    """
    # Only the sections it depends on are resolved: an unset variable of another section
    # (MLFLOW_TRACKING_URI for mlflow=remote) must not stop a key from being computed.
    picked = {name: OmegaConf.to_container(cfg[name], resolve=True) if name in cfg else None for name in sections}
    flat = {
        k: v
        for k, v in flatten(picked).items()
        if not any(k == prefix or k.startswith(prefix + ".") for prefix in ignore)
    }
    payload = json.dumps(
        {"config": flat, "extra": dict(extra or {}), "code": code_version()}, sort_keys=True, default=str
    )
    return hashlib.sha256(payload.encode()).hexdigest()


def find_finished_run(experiment_id: str, step: str, key: str) -> Optional[str]:
    """The newest FINISHED run of ``step`` with this step key, or None."""
    runs = mlflow.search_runs(
        experiment_ids=[experiment_id],
        filter_string=f"tags.`{STEP_TAG}` = '{step}' and tags.`{STEP_KEY_TAG}` = '{key}' and attributes.status = 'FINISHED'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    return None if runs.empty else str(runs.iloc[0]["run_id"])
