"""``preprocess``: Open Images -> selected classes -> chips -> Petastorm dataset + rejects."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict

import mlflow
from mlflow.data.dataset_source_registry import resolve_dataset_source
from mlflow.data.meta_dataset import MetaDataset
from omegaconf import DictConfig

from bigcat_ml.chips import dataset

from bigcat_ml.reporting import eda
from bigcat_ml.cli.entry import hydra_entry_point
from bigcat_ml.cli.steps import Step
from bigcat_ml.tracking.names import metric_name
from bigcat_ml.chips.build import build_chip_dataset
from bigcat_ml.runtime.spark import get_spark
from bigcat_ml.tracking.redact import redact_text
from bigcat_ml.tracking.runs import step_run

# MLflow caps a dataset digest at 36 characters; the full sha256 is in the run's tags.
_MLFLOW_DIGEST_CHARS = 32


def run(cfg: DictConfig) -> Dict[str, Any]:
    """Build the chip dataset and log its counts, figures and digest."""
    with step_run(cfg, "preprocess", key=STEP.key(cfg), run_name=f"preprocess {cfg.data.name}/{cfg.classes.name}") as active:
        spark = get_spark(cfg.spark)
        result = build_chip_dataset(spark, cfg)
        summary = result.summary
        digest = summary["content_digest"]
        mlflow.set_tags({"bigcat.dataset_digest": digest, "bigcat.dataset": redact_text(cfg.preprocess.output)})
        mlflow.log_metrics(
            {
                "selected_boxes": summary["selected_boxes"],
                "chips": summary["chips"],
                "rejects": summary["rejects"],
                "selected_classes": len(result.selected),
                **{metric_name("rejects", reason): n for reason, n in summary["rejects_by_reason"].items()},
                **{
                    metric_name(column, row["LabelText"]): row[column]
                    for _, row in result.chips_by_class.iterrows()
                    for column in result.chips_by_class.columns.drop("LabelText")
                },
            }
        )
        mlflow.log_dict(summary, "summary.json")
        mlflow.log_table(result.selected, "tables/selected_classes.json")
        mlflow.log_table(result.chips_by_class, "tables/chips_by_class.json")
        mlflow.log_table(result.label_counts.reset_index(), "tables/image_labels_by_class.json")
        mlflow.log_table(result.box_counts.reset_index(), "tables/boxes_by_class_subset.json")
        chips_source = resolve_dataset_source(redact_text(dataset.dataset_url(cfg.preprocess.output)))
        mlflow.log_input(
            MetaDataset(source=chips_source, name=f"chips {cfg.data.name}/{cfg.classes.name}", digest=digest[:_MLFLOW_DIGEST_CHARS]),
            context="preprocess-output",
        )
        for name, figure in eda.preprocess_figures(spark, result, cfg.preprocess.output, list(cfg.evaluate.size_buckets)).items():
            mlflow.log_figure(figure, f"figures/{name}")
        print(
            f"preprocess: {summary['selected_boxes']} selected boxes = {summary['chips']} chips + "
            f"{summary['rejects']} rejects {summary['rejects_by_reason']} -> {redact_text(cfg.preprocess.output)}"
        )
        return {"run_id": active.info.run_id, "summary": summary}


def _output_exists(cfg: DictConfig) -> bool:
    """A finished run is only reusable while the dataset it wrote is still there."""
    return (Path(cfg.preprocess.output) / dataset.SUMMARY_FILE).exists()


STEP = Step(
    name="preprocess",
    run=run,
    sections=("data", "classes", "preprocess"),
    ignore=("preprocess.overwrite",),
    in_chain=lambda cfg: True,
    output_exists=_output_exists,
)
main = hydra_entry_point(run)

if __name__ == "__main__":
    main()
