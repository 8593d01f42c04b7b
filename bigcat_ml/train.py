"""``train``: fine-tune a backbone with a new head on the chips; log and register the model."""
from __future__ import annotations

from typing import Any, Dict

import mlflow
from omegaconf import DictConfig, open_dict

from bigcat_ml.chips import family
from bigcat_ml.cli.entry import hydra_entry_point
from bigcat_ml.cli.steps import Step
from bigcat_ml.runtime.spark import get_spark
from bigcat_ml.scoring.evaluation import selected_classes
from bigcat_ml.scoring.models import weights_identity, weights_source
from bigcat_ml.tracking import names
from bigcat_ml.tracking.runs import step_run
from bigcat_ml.training.pipeline import log_subset_inputs, train_and_log, training_summary


def run(cfg: DictConfig) -> Dict[str, Any]:
    """Train ``cfg.model`` on ``cfg.train.dataset`` as one MLflow run; return its run id and model URI."""
    summary = _chips_summary(cfg)
    digest = summary["content_digest"]
    class_names = [name for _, name in selected_classes(summary)]
    tags = {
        names.KIND_TAG: names.FINE_TUNED,
        names.MODEL_TAG: cfg.model.name,
        names.WEIGHTS_TAG: weights_source(cfg.model),
        names.DATASET_DIGEST_TAG: digest,
        names.TRAINING_TAG: training_summary(cfg.train),
        names.DATASET_TAG: cfg.train.dataset,
    }
    with step_run(cfg, "train", key=STEP.key(cfg), run_name=f"train {cfg.model.name} on {cfg.classes.name}", tags=tags) as active:
        spark = get_spark(cfg.spark)
        log_subset_inputs(spark, cfg.train, f"chips {cfg.data.name}/{cfg.classes.name}")
        outcome = train_and_log(spark, cfg, class_names)
        best = outcome.best_metrics
        print(
            f"train {cfg.model.name} [{weights_source(cfg.model)}] on {len(class_names)} classes: best epoch "
            f"{outcome.best_epoch}, val accuracy {best.get('val_accuracy', float('nan')):.3f}, "
            f"val loss {best.get('val_loss', float('nan')):.3f}, {outcome.seconds:.0f} s -> {outcome.model_uri}"
        )
        return {"run_id": active.info.run_id, "model_uri": outcome.model_uri, "outcome": outcome}


def _chips_summary(cfg: DictConfig) -> Dict[str, Any]:
    """The training dataset's summary; when it is missing, an error naming the datasets of this data and classes."""
    return family.read_summary_or_suggest(cfg.train.dataset, "train.dataset", cfg)


def _inputs(cfg: DictConfig) -> Dict[str, str]:
    """The chips enter the reuse key by their digest, not by how they were made; a
    starting weights file by the sha256 of its content, not by its path."""
    return {
        "dataset_digest": _chips_summary(cfg)["content_digest"],
        "weights": weights_identity(cfg.model),
    }


def _hand_over(cfg: DictConfig, run_id: str) -> None:
    """In ``main``'s chain, the steps after train (evaluate) score the model it registered."""
    with open_dict(cfg):
        cfg.model.source = mlflow.get_run(run_id).data.tags[names.MODEL_URI_TAG]


STEP = Step(
    name="train",
    run=run,
    sections=("classes", "model", "train"),
    # the dataset and weights enter through their digests; main's chain includes train when train.in_main is true.
    ignore=("train.dataset", "train.in_main", "model.weights"),
    inputs=_inputs,
    in_chain=lambda cfg: bool(cfg.train.in_main),
    hand_over=_hand_over,
)
main = hydra_entry_point(run)

if __name__ == "__main__":
    main()
