"""``train``: fine-tune a backbone with a new head on the chips; log and register the model."""
from __future__ import annotations

from typing import Any, Dict, List, Optional

import mlflow
from mlflow import MlflowClient
from omegaconf import DictConfig, open_dict

from bigcat_ml.runtime.spark import get_spark
from bigcat_ml.scoring.models import weights_source
from bigcat_ml.stepkit.chip_inputs import chips_and_weights, chips_summary, reads_chips_from
from bigcat_ml.stepkit.step import Step, hydra_entry_point
from bigcat_ml.storage import publish
from bigcat_ml.tracking import names
from bigcat_ml.tracking.runs import step_run
from bigcat_ml.training.pipeline import TrainOutcome, log_subset_inputs, train_and_log, training_summary


def run(cfg: DictConfig, key: Optional[str] = None) -> Dict[str, Any]:
    """Train ``cfg.model`` on ``cfg.train.dataset`` as one MLflow run; return its run id and model URI
    (``key``: its reuse key, if computed already).

    The dataset's read lock is held throughout, so that no overwrite deletes it meanwhile."""
    with publish.reading(cfg.train.dataset, cfg.preprocess.lock_wait_s):
        return _train(cfg, key)


def _train(cfg: DictConfig, key: Optional[str]) -> Dict[str, Any]:
    summary = chips_summary(cfg, "train")
    digest = summary.content_digest
    class_names = summary.class_names
    tags = {
        names.KIND_TAG: names.FINE_TUNED,
        names.MODEL_TAG: cfg.model.name,
        names.WEIGHTS_TAG: weights_source(cfg.model),
        names.DATASET_DIGEST_TAG: digest,
        names.TRAINING_TAG: training_summary(cfg.train),
        names.DATASET_TAG: cfg.train.dataset,
    }
    key = key or STEP.key(cfg, chips_and_weights(cfg, summary))  # the summary read once, above
    with step_run(cfg, STEP.name, key=key, run_name=f"train {cfg.model.name} on {cfg.classes.name}", tags=tags) as active:
        spark = get_spark(cfg.spark)
        log_subset_inputs(spark, cfg.train, f"chips {cfg.data.name}/{cfg.classes.name}")
        outcome = train_and_log(spark, cfg.train, cfg.model, class_names)
        describe(cfg, outcome, class_names, digest)
        best = outcome.best_metrics
        print(
            f"train {cfg.model.name} [{weights_source(cfg.model)}] on {len(class_names)} classes: best epoch "
            f"{outcome.best_epoch}, val accuracy {best.get('val_accuracy', float('nan')):.3f}, "
            f"val loss {best.get('val_loss', float('nan')):.3f}, {outcome.seconds:.0f} s -> {outcome.model_uri}"
        )
        return {"run_id": active.info.run_id, "model_uri": outcome.model_uri, "outcome": outcome}


def describe(cfg: DictConfig, outcome: TrainOutcome, class_names: List[str], digest: str) -> None:
    """Say on the train run, and on the registered version, what the model is.

    The run's ``val_accuracy`` column is the last epoch's (MLflow shows a metric's latest
    step), while the model kept is the best epoch's (``best_val_accuracy``): the run's
    description says which is which. The version gets the same description, its identity
    as tags, and ``train.registered_model_alias``.
    """
    best = outcome.best_metrics
    text = (
        f"{cfg.model.name} backbone, {weights_source(cfg.model)} weights, fine-tuned on {len(class_names)} classes "
        f"({', '.join(class_names)}) of chips {cfg.data.name}/{cfg.classes.name} (content digest {digest}). "
        f"{training_summary(cfg.train)}. Kept epoch {outcome.best_epoch}: best_val_accuracy "
        f"{best.get('val_accuracy', float('nan')):.4f}, best_val_loss {best.get('val_loss', float('nan')):.4f} "
        "(the val_accuracy and val_loss columns show the last epoch run)."
    )
    mlflow.set_tag(names.NOTE_TAG, text)
    if not outcome.registered_version:
        return
    registry, name, version = MlflowClient(), cfg.train.registered_model_name, outcome.registered_version
    registry.update_model_version(name, version, description=text)
    tags = {
        names.MODEL_TAG: cfg.model.name, names.WEIGHTS_TAG: weights_source(cfg.model), names.DATASET_DIGEST_TAG: digest,
        names.TRAINING_TAG: training_summary(cfg.train), names.CLASSES_TAG: ", ".join(class_names),
    }
    for key, value in tags.items():
        registry.set_model_version_tag(name, version, key, value)
    alias = cfg.train.registered_model_alias
    if alias:
        registry.set_registered_model_alias(name, alias, version)
    registry.update_registered_model(
        name, description=f"{cfg.model.name} fine-tuned on {cfg.classes.name} chips, one version per train run"
        + (f"; @{alias} is the newest." if alias else ".")
    )


def _hand_over(cfg: DictConfig, run_id: str) -> None:
    """In ``main``'s chain, the steps after train (evaluate) score the model it registered."""
    with open_dict(cfg):
        cfg.model.source = mlflow.get_run(run_id).data.tags[names.MODEL_URI_TAG]


STEP = Step(
    name=names.TRAIN_STEP,
    run=run,
    sections=("classes", "model", "train"),
    # the dataset and weights enter through their digests; main's chain includes train when train.in_main is true.
    ignore=("train.dataset", "train.in_main", "model.weights"),
    inputs=reads_chips_from("train"),
    in_chain=lambda cfg: bool(cfg.train.in_main),
    hand_over=_hand_over,
)
main = hydra_entry_point(STEP)

if __name__ == "__main__":
    main()
