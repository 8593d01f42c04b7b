"""What each pipeline step's result depends on, for reuse by ``main``.

One place for the rule, so a step tags its run with the same key that ``main`` looks
for. Options that change how a step runs but not its result are ignored.
"""
from __future__ import annotations

from typing import Mapping, Optional

from omegaconf import DictConfig

from bigcat_ml.tracking.runs import step_key

_FAULTS = ("preprocess.fault_injection", "evaluate.fault_injection")

STEP_DEPENDENCIES = {
    "sample_data": (("data",), ()),
    "preprocess": (("data", "classes", "preprocess"), ("preprocess.overwrite", *_FAULTS)),
    # evaluate depends on the chips through their digest (passed as extra), not on how
    # they were made; spark settings change speed, not predictions.
    "evaluate": (("classes", "model", "evaluate"), ("evaluate.dataset", *_FAULTS)),
    # train depends on the chips through their digest, like evaluate.
    "train": (("classes", "model", "train"), ("train.dataset",)),
}


def key_for(cfg: DictConfig, step: str, extra: Optional[Mapping[str, str]] = None) -> str:
    """The reuse key of ``step`` under ``cfg``."""
    sections, ignore = STEP_DEPENDENCIES[step]
    return step_key(cfg, sections, ignore, extra)
