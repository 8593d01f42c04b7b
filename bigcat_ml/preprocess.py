"""``preprocess``: Open Images -> selected classes -> chips -> Petastorm dataset + rejects."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, ContextManager, Dict, Optional

import mlflow
from omegaconf import DictConfig
from pyspark.sql import SparkSession

from bigcat_ml.chips import family, layout, manifest
from bigcat_ml.oid import identity
from bigcat_ml.reporting import eda
from bigcat_ml.runtime.progress import phases
from bigcat_ml.config.schema import ReuseCheck
from bigcat_ml.tracking import names
from bigcat_ml.tracking.names import metric_name
from bigcat_ml.chips.build import PHASES, PreprocessResult, build_chip_dataset
from bigcat_ml.chips.summary import ChipSummary
from bigcat_ml.runtime.spark import get_spark
from bigcat_ml.stepkit.step import Step, hydra_entry_point, in_every_chain
from bigcat_ml.storage import publish
from bigcat_ml.tracking.redact import redact_text
from bigcat_ml.tracking.runs import log_chip_dataset_input, step_run

log = logging.getLogger(__name__)


def run(cfg: DictConfig, key: Optional[str] = None) -> Dict[str, Any]:
    """Build the chip dataset and log its counts, figures and digest (``key``: its reuse key, if computed already)."""
    with step_run(cfg, STEP.name, key=key or STEP.key(cfg), run_name=f"preprocess {cfg.data.name}/{cfg.classes.name}") as active:
        spark = get_spark(cfg.spark)
        with phases(STEP.name, [*PHASES, _LOGGING]) as begin:
            result = build_chip_dataset(
                spark, cfg.data, cfg.classes, cfg.preprocess, reuse_check=cfg.reuse_check, begin=begin
            )
            begin(_LOGGING)
            _log_result(cfg, spark, result)
        summary = ChipSummary.from_dict(result.summary)
        print(
            f"preprocess: {summary.selected_boxes} selected boxes = {summary.chips} chips + "
            f"{summary.rejects} rejects {summary.rejects_by_reason} -> {redact_text(cfg.preprocess.output)}"
        )
        return {"run_id": active.info.run_id, "summary": result.summary}


_LOGGING = "log counts, tables and figures"


def _log_result(cfg: DictConfig, spark: SparkSession, result: PreprocessResult) -> None:
    """The dataset's tags, counts, tables, input record and figures on the active run."""
    summary = ChipSummary.from_dict(result.summary)
    digest = summary.content_digest
    mlflow.set_tags(
        {
            names.DATASET_DIGEST_TAG: digest,
            names.DATASET_MANIFEST_TAG: summary.manifest_sha256,
            names.DATASET_TAG: redact_text(cfg.preprocess.output),
        }
    )
    if cfg.preprocess.output == family.default_output(cfg):
        family.point_alias(cfg.preprocess.output, str(Path(cfg.preprocess.output).parent / family.LATEST_ALIAS))
    mlflow.log_metrics(
        {
            names.SELECTED_BOXES_METRIC: summary.selected_boxes,
            names.CHIPS_METRIC: summary.chips,
            names.REJECTS_METRIC: summary.rejects,
            names.SELECTED_CLASSES_METRIC: len(result.selected),
            **{metric_name(names.REJECTS_METRIC, reason): n for reason, n in summary.rejects_by_reason.items()},
            **{
                metric_name(column, row["LabelText"]): row[column]
                for _, row in result.chips_by_class.iterrows()
                for column in result.chips_by_class.columns.drop("LabelText")
            },
        }
    )
    mlflow.log_dict(result.summary, names.CHIP_SUMMARY)
    mlflow.log_table(result.selected, names.SELECTED_CLASSES_TABLE)
    mlflow.log_table(result.chips_by_class, names.CHIPS_BY_CLASS_TABLE)
    mlflow.log_table(result.label_counts.reset_index(), names.IMAGE_LABELS_BY_CLASS_TABLE)
    mlflow.log_table(result.box_counts.reset_index(), names.BOXES_BY_CLASS_SUBSET_TABLE)
    log_chip_dataset_input(
        layout.dataset_url(cfg.preprocess.output), f"chips {cfg.data.name}/{cfg.classes.name}", digest,
        names.PREPROCESS_DATASET_CONTEXT, {names.DATASET_SUBSET_INPUT_TAG: ",".join(summary.subsets)},
    )
    for name, figure in eda.preprocess_figures(spark, result, cfg.preprocess.output, list(cfg.evaluate.size_buckets)).items():
        mlflow.log_figure(figure, f"{names.FIGURES_DIR}/{name}")


def _output_exists(cfg: DictConfig, run_id: str) -> bool:
    """A finished run is reused only while ``preprocess.output`` holds the very dataset
    it recorded: same content digest and manifest, every file as written (re-hashed
    with ``reuse_check=full``)."""
    tags = mlflow.MlflowClient().get_run(run_id).data.tags
    problem = manifest.mismatch(
        cfg.preprocess.output,
        tags.get(names.DATASET_DIGEST_TAG, ""),
        tags.get(names.DATASET_MANIFEST_TAG),
        full=cfg.reuse_check == ReuseCheck.full,
    )
    if problem:
        log.info("preprocess: not reusing run %s: %s", run_id, redact_text(problem))
    return problem is None


def _claim(cfg: DictConfig) -> ContextManager[None]:
    """One run at a time builds a chip folder; the next waits, then reuses what it built."""
    return publish.claimed(cfg.preprocess.output, cfg.preprocess.lock_wait_s, "preprocess.output", "preprocess.lock_wait_s")


STEP = Step(
    name=names.PREPROCESS_STEP,
    run=run,
    # What the chips depend on, which also names their default folder.
    sections=family.CHIPS_SECTIONS,
    ignore=family.CHIPS_IGNORE,
    # Every Open Images file it reads, by path, size and time (by content with reuse_check=full).
    inputs=lambda cfg: identity.input_identity(
        cfg.data, reads_hierarchy=bool(cfg.classes.descendants_of), full=cfg.reuse_check == ReuseCheck.full
    ),
    in_chain=in_every_chain,
    output_exists=_output_exists,
    claim=_claim,
)
main = hydra_entry_point(STEP)

if __name__ == "__main__":
    main()
