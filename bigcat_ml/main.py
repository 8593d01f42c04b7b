"""``main``: sample_data -> preprocess -> evaluate as one MLflow parent run.

Each step is a child run. A step whose entry point, config and code version match a
finished run is reused instead of recomputed (``force=true`` recomputes), so a Hydra
sweep over models (``-m model=mobilenet,resnet50``) preprocesses once and evaluates
every model on the same chip dataset.
"""
from __future__ import annotations

import importlib
import logging
from pathlib import Path
from typing import Any, Dict, List

import mlflow
from omegaconf import DictConfig, open_dict

from bigcat_ml.chips import dataset
from bigcat_ml.cli.entry import hydra_entry_point
from bigcat_ml.tracking.reuse import key_for
from bigcat_ml.tracking.redact import redact_text
from bigcat_ml.tracking.runs import STEP_TAG, find_finished_run, log_config, setup_tracking

log = logging.getLogger(__name__)


def chain(cfg: DictConfig) -> List[str]:
    """The steps to run: the generator only when the data group is a generated sample."""
    return (["sample_data"] if cfg.data.sample is not None else []) + ["preprocess", "evaluate"]


def _extra_inputs(cfg: DictConfig, step: str) -> Dict[str, str]:
    if step != "evaluate":
        return {}
    return {"dataset_digest": dataset.read_summary(cfg.evaluate.dataset)["content_digest"]}


def _output_exists(cfg: DictConfig, step: str) -> bool:
    """A finished run is only reusable while what it wrote is still there."""
    if step == "preprocess":
        return (Path(cfg.preprocess.output) / dataset.SUMMARY_FILE).exists()
    if step == "sample_data":
        return (Path(cfg.data.root) / "ground_truth.json").exists()
    return True


def run(cfg: DictConfig) -> Dict[str, Any]:
    """Run or reuse every step under one parent run; return ``{step: run_id}``."""
    experiment_id = setup_tracking(cfg.mlflow)
    if cfg.force:
        with open_dict(cfg):
            cfg.preprocess.overwrite = True
    step_runs: Dict[str, Any] = {}
    with mlflow.start_run(run_name=f"main {cfg.model.name}", tags={STEP_TAG: "main", **cfg.mlflow.tags}) as parent:
        log_config(cfg, params=False)
        for step in chain(cfg):
            key = key_for(cfg, step, _extra_inputs(cfg, step))
            previous = None if cfg.force else find_finished_run(experiment_id, step, key)
            if previous and _output_exists(cfg, step):
                log.info("%s: reusing finished run %s (same config and code)", step, previous)
                mlflow.set_tag(f"bigcat.reused.{step}", previous)
                step_runs[step] = previous
                continue
            if step == "preprocess":
                # main owns the chain: a stale output without a matching run is rebuilt.
                with open_dict(cfg):
                    cfg.preprocess.overwrite = True
            module = importlib.import_module(f"bigcat_ml.{step}")
            step_runs[step] = module.run(cfg)["run_id"]
        mlflow.set_tags({f"bigcat.run.{step}": run_id for step, run_id in step_runs.items()})
        step_runs["main"] = parent.info.run_id
    print(f"main: runs {step_runs} in experiment '{cfg.mlflow.experiment_name}' at {redact_text(cfg.mlflow.tracking_uri)}")
    return step_runs


main = hydra_entry_point(run)

if __name__ == "__main__":
    main()
