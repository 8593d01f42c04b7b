"""``evaluate``: score a chip dataset with one Keras model; log metrics and figures."""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, Dict, Optional

import mlflow
from matplotlib.figure import Figure
from omegaconf import DictConfig

from bigcat_ml.tracking import names

from bigcat_ml.chips import layout
from bigcat_ml.storage import publish

from bigcat_ml.reporting.figures import evaluate as figures
from bigcat_ml.reporting.figures.canvas import message_figure
from bigcat_ml.scoring.metrics import chip_results, one_vs_rest
from bigcat_ml.scoring.evaluation import Evaluation, choose_path, evaluate_dataset, evaluated_subset, mistake_chips
from bigcat_ml.tracking.names import metric_name
from bigcat_ml.config.schema import InferencePath
from bigcat_ml.scoring.models import RANDOM_INIT, as_precision, weights_source
from bigcat_ml.runtime.spark import get_spark
from bigcat_ml.stepkit.chip_inputs import chips_and_weights, chips_summary, reads_chips_from
from bigcat_ml.stepkit.step import Step, hydra_entry_point, in_every_chain
from bigcat_ml.tracking.runs import log_chip_dataset_input, setup_tracking, step_run

RANDOM_WEIGHTS_NOTE = "random-init weights (model.weights=null): predictions and accuracy are meaningless"
RANDOM_GALLERY_NOTE = "random-init weights:\nnothing to learn from\na random classifier's mistakes"


def run(cfg: DictConfig, key: Optional[str] = None) -> Dict[str, Any]:
    """Evaluate ``cfg.model`` on ``cfg.evaluate.dataset`` as one MLflow run, holding the
    dataset's read lock so that no overwrite deletes it meanwhile (``key``: its reuse key,
    if computed already)."""
    with publish.reading(cfg.evaluate.dataset, cfg.preprocess.lock_wait_s):
        return _evaluate(cfg, key)


def _evaluate(cfg: DictConfig, key: Optional[str]) -> Dict[str, Any]:
    summary = chips_summary(cfg, "evaluate")
    digest = summary.content_digest
    weights = weights_source(cfg.model)
    path = choose_path(cfg.evaluate, cfg.spark, summary.chips)
    tags = {
        **model_tags(cfg),
        names.WEIGHTS_TAG: weights,
        names.DATASET_DIGEST_TAG: digest,
        names.SUBSET_TAG: evaluated_subset(cfg.evaluate, cfg.model) or names.ALL_SUBSETS,
        names.DATASET_TAG: cfg.evaluate.dataset,
        names.INFERENCE_PATH_TAG: path.value,
        names.PRECISION_TAG: as_precision(cfg.model.precision).value,
    }
    if weights == RANDOM_INIT:
        tags[names.CAVEAT_TAG] = RANDOM_WEIGHTS_NOTE
    key = key or STEP.key(cfg, chips_and_weights(cfg, summary))  # the summary read once, above
    with step_run(cfg, STEP.name, key=key, run_name=f"evaluate {cfg.model.name} [{weights}]", tags=tags) as active:
        log_chip_dataset_input(
            layout.dataset_url(cfg.evaluate.dataset), f"chips {summary.data}/{cfg.classes.name}", digest,
            names.EVALUATE_DATASET_CONTEXT, {names.DATASET_SUBSET_INPUT_TAG: ",".join(summary.subsets)},
        )
        spark = get_spark(cfg.spark) if path is InferencePath.spark else None
        evaluation = evaluate_dataset(spark, cfg.evaluate, cfg.model, cfg.classes, summary, path)
        _log_evaluation(evaluation, cfg)
        report = evaluation.report
        note = f"  ** {RANDOM_WEIGHTS_NOTE} **" if weights == RANDOM_INIT else ""
        print(
            f"evaluate {cfg.model.name} [{weights}]: {evaluation.chips_read} chips "
            f"({len(evaluation.rejects)} rejects), top-1 {report.top1_accuracy:.3f}, top-5 {report.top5_accuracy:.3f}, "
            f"family {report.family_accuracy:.3f}, {evaluation.chips_per_second:.1f} chips/s{note}"
        )
        return {"run_id": active.info.run_id, "metrics": report.scalar_metrics()}


def model_tags(cfg: DictConfig) -> Dict[str, str]:
    """Kind and backbone; a fine-tuned model's backbone and training come from its metadata
    (read from the configured tracking store, where ``models:/`` URIs resolve)."""
    model_cfg = cfg.model
    if not model_cfg.source:
        return {names.KIND_TAG: names.ZERO_SHOT, names.MODEL_TAG: model_cfg.name}
    setup_tracking(cfg.mlflow)
    metadata = mlflow.models.get_model_info(model_cfg.source).metadata or {}
    return {
        names.KIND_TAG: names.FINE_TUNED,
        names.MODEL_TAG: str(metadata.get("backbone", model_cfg.name)),
        names.TRAINING_TAG: str(metadata.get("training", "")),
    }


def _log_evaluation(evaluation: Evaluation, cfg: DictConfig) -> None:
    report = evaluation.report
    reasons = evaluation.rejects["reason"].value_counts()
    mlflow.log_metrics(
        {
            **report.scalar_metrics(),
            **{
                names.subset_metric(subset, name): value
                for subset, metrics in evaluation.subset_metrics.items()
                for name, value in metrics.items()
            },
            names.THROUGHPUT_METRIC: evaluation.chips_per_second,
            names.CHIPS_READ_METRIC: evaluation.chips_read,
            names.REJECTS_METRIC: len(evaluation.rejects),
            names.UNMAPPED_CHIPS_METRIC: evaluation.unmapped_chips,
            names.UNMAPPED_CLASSES_METRIC: len(evaluation.unmapped_classes),
            **{metric_name(names.REJECTS_METRIC, reason): int(n) for reason, n in reasons.items()},
            **{metric_name(names.SECONDS_METRIC, stage): value for stage, value in evaluation.seconds.items()},
        }
    )
    with tempfile.TemporaryDirectory() as tmp:
        for frame, name in ((evaluation.predictions, names.PREDICTIONS), (evaluation.rejects, names.REJECTS)):
            local = Path(tmp) / name
            local.parent.mkdir(parents=True, exist_ok=True)
            frame.to_parquet(local, index=False)
            mlflow.log_artifact(str(local), str(Path(name).parent))
    tables = (
        (report.per_class, names.PER_CLASS_TABLE, names.PER_CLASS_CSV),
        # the confusion's index (the true class) becomes a column, which MLflow tables need
        (report.confusion.reset_index(), names.CONFUSION_TABLE, names.CONFUSION_CSV),
        (report.calibration, names.CALIBRATION_TABLE, names.CALIBRATION_CSV),
        (report.slices, names.SLICES_TABLE, names.SLICES_CSV),
    )
    for table, table_name, csv_name in tables:
        mlflow.log_table(table, table_name)
        mlflow.log_text(table.to_csv(index=False), csv_name)
    mlflow.log_text(report.other_predictions.to_csv(index=False), names.OTHER_PREDICTIONS_CSV)
    scored = evaluation.scored()
    mlflow.log_table(chip_results(*scored), names.CHIPS_TABLE)
    ranking = one_vs_rest(*scored)
    mlflow.log_metrics(ranking.scalar_metrics())
    logged = {
        names.CONFUSION_FIGURE: figures.confusion_matrix_figure(report.confusion),
        names.CONFIDENCE_FIGURE: figures.confidence_histograms(*scored),
        names.RELIABILITY_FIGURE: figures.reliability_diagram(report.calibration),
        names.ROC_PR_FIGURE: figures.roc_pr_curves(ranking),
        names.MISTAKES_FIGURE: mistakes_figure(evaluation, cfg),
    }
    for artifact, figure in logged.items():
        mlflow.log_figure(figure, artifact)


def mistakes_figure(evaluation: Evaluation, cfg: DictConfig) -> Figure:
    """The gallery of the surest mistakes; a random-init model's are noise (every chip gets
    the same output), so its run says so instead of showing copies of one prediction."""
    title = "Most confident mistakes"
    if weights_source(cfg.model) == RANDOM_INIT:
        return message_figure(RANDOM_GALLERY_NOTE, title)
    return figures.mistakes_gallery(*mistake_chips(evaluation, cfg.evaluate.dataset, cfg.evaluate.gallery_size), title)


STEP = Step(
    name=names.EVALUATE_STEP,
    run=run,
    sections=("classes", "model", "evaluate"),
    # spark settings change speed, not predictions; the dataset and the model enter through their digests.
    ignore=("evaluate.dataset", "model.weights", "model.source"),
    inputs=reads_chips_from("evaluate"),
    in_chain=in_every_chain,
)
main = hydra_entry_point(STEP)

if __name__ == "__main__":
    main()
