"""``main``: the chain of steps (sample_data -> preprocess [-> train] -> evaluate) as one MLflow parent run.

Each step is a child run. A step whose reuse key (config, inputs and code version) matches
a finished run whose output is still there is reused instead of recomputed
(``force=true`` recomputes), so a Hydra sweep over models (``-m model=mobilenet,resnet50``)
preprocesses once and evaluates every model on the same chip dataset. The steps and their
order come from the registry here (:data:`STEPS`), which the launcher and MLproject read too.
"""
from __future__ import annotations

import logging
from typing import Any, Dict, Tuple

import mlflow
from omegaconf import DictConfig, open_dict

from bigcat_ml import compare, evaluate, preprocess, sample_data, train
from bigcat_ml.chips.family import default_output
from bigcat_ml.reporting.headline import carry_headline, chain_run_name
from bigcat_ml.stepkit.step import Step, hydra_entry_point
from bigcat_ml.stepkit.ui_hint import say_where_the_ui_is
from bigcat_ml.tracking import names
from bigcat_ml.tracking.names import REUSED_TAG_PREFIX, STEP_RUN_TAG_PREFIX
from bigcat_ml.tracking.reuse import find_finished_run
from bigcat_ml.tracking.runs import setup_tracking, step_run

log = logging.getLogger(__name__)


def run(cfg: DictConfig) -> Dict[str, Any]:
    """Run or reuse every step of the chain under one parent run; return ``{step: run_id}``."""
    experiment_id = setup_tracking(cfg.mlflow)
    # main owns the key-addressed default chip folder: one that no finished run recorded is
    # rebuilt. A folder the user chose is replaced only with preprocess.overwrite=true.
    with open_dict(cfg):
        cfg.preprocess.overwrite = bool(cfg.preprocess.overwrite) or cfg.preprocess.output == default_output(cfg)
    step_runs: Dict[str, Any] = {}
    reused = set()
    # The parent carries the params and code version its children carry.
    with step_run(cfg, STEP.name, run_name=chain_run_name(cfg)) as parent:
        for step in chain(cfg):
            # A concurrent main producing the same output waits at the claim.
            with step.claim(cfg):
                key = step.key(cfg)  # once: the step tags its run with the key it is handed
                previous = None if cfg.force else find_finished_run(experiment_id, step.name, key)
                if previous and step.output_exists(cfg, previous):
                    log.info("%s: reusing finished run %s (same config, inputs and code)", step.name, previous)
                    mlflow.set_tag(REUSED_TAG_PREFIX + step.name, previous)
                    step_runs[step.name] = previous
                    reused.add(step.name)
                else:
                    step_runs[step.name] = step.run(cfg, key)["run_id"]
            step.hand_over(cfg, step_runs[step.name])
        mlflow.set_tags({STEP_RUN_TAG_PREFIX + name: run_id for name, run_id in step_runs.items()})
        if names.EVALUATE_STEP in step_runs:  # the chain's last scoring step gives the parent its headline
            carry_headline(step_runs[names.EVALUATE_STEP])
        step_runs[STEP.name] = parent.info.run_id
    print(f"main {cfg.model.name} (run {parent.info.run_id}): " + ", ".join(
        f"{name} {step_runs[name]}" + (" (reused)" if name in reused else "") for name in step_runs if name != STEP.name
    ))
    say_where_the_ui_is(cfg.mlflow.tracking_uri, experiment_id)
    return step_runs


def chain(cfg: DictConfig) -> Tuple[Step, ...]:
    """The steps ``main`` runs for ``cfg``, in order."""
    return tuple(step for step in STEPS.values() if step.in_chain(cfg))


def get(name: str) -> Step:
    """The step called ``name``, or an error listing the steps there are."""
    if name not in STEPS:
        raise KeyError(f"no step named {name!r}; the steps are: {', '.join(STEPS)}")
    return STEPS[name]


STEP = Step(name=names.MAIN_STEP, run=run, chain=lambda cfg: chain(cfg))
# Every step by name, in chain order: the one list main, the launcher and MLproject read.
# Adding a step means one module holding its function and record, and one entry here.
STEPS: Dict[str, Step] = {
    step.name: step for step in (sample_data.STEP, preprocess.STEP, train.STEP, evaluate.STEP, STEP, compare.STEP)
}
main = hydra_entry_point(STEP)

if __name__ == "__main__":
    main()
