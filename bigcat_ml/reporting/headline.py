"""What ``main``'s parent run shows in the runs table: a name that tells chains apart and
the headline metrics of the chain's evaluation.

The UI's runs table lists parent runs with their children folded, so without these a
sweep's parents read as identical, empty rows.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict

import mlflow

from bigcat_ml.scoring.models import weights_source
from bigcat_ml.tracking import names

# The parent shows its headline to this many significant digits (the evaluate run keeps
# the full values): 0.3333, not 0.33333333333333331.
HEADLINE_DIGITS = 4
# The evaluation's tags the parent repeats: kind, backbone and weights of the scored model.
HEADLINE_TAGS = (names.KIND_TAG, names.MODEL_TAG, names.WEIGHTS_TAG, names.DATASET_DIGEST_TAG)


def chain_run_name(cfg: Any) -> str:
    """``main mobilenet random-init zero-shot sample_demo/bigcats 224px pad0.0``: what
    differs between the chains of a sweep (model, weights, fine-tuned or not, data, key params)."""
    weights = weights_source(cfg.model)
    if weights.startswith("file:"):
        weights = f"file:{Path(weights[len('file:'):]).name}"
    kind = names.FINE_TUNED if cfg.train.in_main else names.ZERO_SHOT
    return (
        f"main {cfg.model.name} {weights} {kind} {cfg.data.name}/{cfg.classes.name} "
        f"{cfg.model.input_size}px pad{cfg.preprocess.padding}"
    )


def headline(metrics: Dict[str, float]) -> Dict[str, float]:
    """The headline metrics and throughput among ``metrics``, rounded for reading."""
    keys = (*names.HEADLINE_METRICS, names.THROUGHPUT_METRIC)
    return {key: float(f"{metrics[key]:.{HEADLINE_DIGITS}g}") for key in keys if key in metrics}


def carry_headline(evaluation_run_id: str) -> None:
    """Log the evaluation's headline metrics and model tags on the active (parent) run."""
    evaluation = mlflow.get_run(evaluation_run_id).data
    mlflow.log_metrics(headline(evaluation.metrics))
    mlflow.set_tags({key: evaluation.tags[key] for key in HEADLINE_TAGS if key in evaluation.tags})
