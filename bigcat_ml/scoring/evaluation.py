"""Score a chip dataset with one model and measure it: the evaluate chain as a library.

Kept apart from the entry point so benchmarks and tests drive exactly what
``python -m bigcat_ml.evaluate`` runs.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import pandas as pd
import pyarrow.dataset as pads
from pyspark.sql import SparkSession

import mlflow
from pyspark.sql import functions as F

from bigcat_ml.chips import layout, readers, schema
from bigcat_ml.chips.summary import ChipSummary
from bigcat_ml.config.schema import InferencePath
from bigcat_ml.tracking import names

from bigcat_ml.scoring.inference.local import predict_local
from bigcat_ml.scoring.inference.spark import predict_spark
from bigcat_ml.scoring.imagenet import ClassTruth, ground_truth_map
from bigcat_ml.scoring.metrics import EvaluationReport, evaluate_predictions, most_confident_mistakes

log = logging.getLogger(__name__)


class EvaluationReconciliationError(RuntimeError):
    """Predictions + rejects != chips in the dataset: a chip was lost or duplicated."""


@dataclass
class Evaluation:
    """Predictions, rejects, the metrics report and where the time went (seconds)."""

    predictions: pd.DataFrame  # one row per predicted chip
    rejects: pd.DataFrame  # REJECTS_SCHEMA columns
    report: EvaluationReport
    chips_read: int
    unmapped_chips: int  # predicted chips of classes with no ImageNet counterpart (not scored)
    truth: Dict[str, ClassTruth]
    seconds: Dict[str, float] = field(default_factory=dict)
    path: InferencePath = InferencePath.spark  # the path that ran
    subset: Optional[str] = None  # the Subset scored; None: every chip
    # Scalar metrics of each Subset's chips (see EvaluationReport.scalar_metrics), by Subset.
    subset_metrics: Dict[str, Dict[str, float]] = field(default_factory=dict)

    @property
    def unmapped_classes(self) -> List[str]:
        """Selected classes with no ImageNet counterpart: their chips are predicted, not scored."""
        return [name for name, t in self.truth.items() if not t.mapped]

    def scored(self) -> Tuple[pd.DataFrame, Dict[str, ClassTruth]]:
        """The predictions that count (chips of mapped classes) and the truth of those classes."""
        return scored_part(self.predictions, self.truth)

    @property
    def chips_per_second(self) -> float:
        """Inference throughput: chips read / seconds spent predicting them."""
        return self.chips_read / self.seconds["predict"] if self.seconds.get("predict") else float("nan")


def scored_part(predictions: pd.DataFrame, truth: Dict[str, ClassTruth]) -> Tuple[pd.DataFrame, Dict[str, ClassTruth]]:
    """Chips of the classes that have ImageNet classes, and those classes' truth."""
    mapped = {name: t for name, t in truth.items() if t.mapped}
    return predictions[predictions["LabelText"].isin(list(mapped))], mapped


def choose_path(evaluate_cfg: Any, spark_cfg: Any, chips: int) -> InferencePath:
    """The inference path ``evaluate`` takes for a dataset of ``chips`` chips, from the
    ``evaluate`` and ``spark`` config sections.

    ``evaluate.path=auto`` takes the local path when Spark runs in local mode (the same
    machine's cores either way) and the dataset holds fewer than
    ``evaluate.auto_local_max_chips`` chips: below that count one process finishes
    first, having no Spark session, Python workers and per-worker models to start
    (the count is measured by ``make bench``, docs/decisions.md). Otherwise Spark.
    """
    path = evaluate_cfg.path if isinstance(evaluate_cfg.path, InferencePath) else InferencePath(evaluate_cfg.path)
    if path is not InferencePath.auto:
        return path
    local_mode = str(spark_cfg.master).startswith("local")
    return InferencePath.local if local_mode and chips < int(evaluate_cfg.auto_local_max_chips) else InferencePath.spark


def evaluated_subset(evaluate_cfg: Any, model_cfg: Any) -> Optional[str]:
    """``evaluate.subset``, or its default: ``test`` for a fine-tuned model (its other
    Subsets trained and selected it), every chip (None) for an ImageNet model."""
    if evaluate_cfg.subset:
        return str(evaluate_cfg.subset)
    return names.COMPARISON_SUBSET if model_cfg.source else None


def fine_tuned_truth(source: str, selected: List[str]) -> Dict[str, ClassTruth]:
    """Class name -> the truth of a fine-tuned model's chips, from its logged metadata.

    Its labels are the selected classes themselves: a chip is right when the model's
    output of its class (that index) wins; every output is a selected class, so the family
    is all of them. A selected class the model was not trained on is an error naming both lists.
    """
    metadata = mlflow.models.get_model_info(source).metadata or {}
    trained = list(metadata.get("class_names", []))
    missing = sorted(set(selected) - set(trained))
    if not trained or missing:
        raise ValueError(
            f"model.source {source} was trained on classes {trained}; the chip dataset's {missing or selected} "
            "are not among them: evaluate it on a dataset of the classes it was trained on"
        )
    family = tuple(range(len(trained)))
    return {name: ClassTruth(indices=(index,), family=family, source=names.FINE_TUNED) for index, name in enumerate(trained)}


def evaluate_dataset(
    spark: Optional[SparkSession],
    evaluate_cfg: Any,
    model_cfg: Any,
    classes_cfg: Any,
    summary: ChipSummary,
    path: InferencePath,
) -> Evaluation:
    """Predict the chips of ``evaluate_cfg.dataset`` (of :func:`evaluated_subset`) with
    ``model_cfg``'s model and compute the metrics, over all of them and per ``Subset``;
    ``summary`` is the dataset's, read once by the caller.

    ``path`` (the caller's :func:`choose_path`, which it tags the run with): ``spark``
    (predict_batch_udf on the session's executors) or ``local`` (one process over
    tf.data); both give the same predictions for the same chips. Predictions + rejects must equal the chips the
    dataset holds (in that Subset); a mismatch is an error. An ImageNet model's truth is
    ``classes_cfg.imagenet_map``; a fine-tuned model's (``model.source``) is its own classes.
    """
    output = evaluate_cfg.dataset
    subset = evaluated_subset(evaluate_cfg, model_cfg)
    if model_cfg.source:
        truth = fine_tuned_truth(model_cfg.source, summary.class_names)
    else:
        truth = ground_truth_map(classes_cfg, list(summary.selected_classes), evaluate_cfg.allow_unmapped)
    expected = summary.chips if subset is None else readers.count_chips(output, subset)
    seconds: Dict[str, float] = {}
    start = time.perf_counter()
    if path is InferencePath.spark:
        if spark is None:
            raise ValueError("evaluate.path=spark needs a SparkSession")
        chips = readers.read_chips_spark(spark, output)
        if subset is not None:
            chips = chips.filter(F.col("Subset") == subset)
        with predict_spark(spark, chips, model_cfg, evaluate_cfg) as scored:
            seconds["predict"] = time.perf_counter() - start
            predictions, rejects = scored.to_pandas()
        seconds["collect"] = time.perf_counter() - start - seconds["predict"]
    elif path is InferencePath.local:
        predictions, rejects = predict_local(output, model_cfg, evaluate_cfg, subset)
        seconds["predict"] = time.perf_counter() - start
    else:
        raise ValueError(f"evaluate_dataset needs the spark or local path, got {path!r}")
    chips_read = len(predictions) + len(rejects)
    if chips_read != expected:
        where = "" if subset is None else f" in Subset {subset!r}"
        raise EvaluationReconciliationError(
            f"{output} holds {expected} chips{where} but evaluation produced {len(predictions)} predictions "
            f"+ {len(rejects)} rejects = {chips_read}; this is a bug, please report it"
        )
    unknown = sorted(set(predictions["LabelText"]) - set(truth))
    if unknown:
        raise ValueError(
            f"chips of classes {unknown} are not among the dataset's selected classes {sorted(truth)}; "
            f"{output}/summary.json and its chips disagree: rebuild the dataset (preprocess.overwrite=true)"
        )
    scored, mapped = scored_part(predictions, truth)
    if scored.empty:
        raise ValueError(
            f"none of the selected classes {sorted(truth)} has an ImageNet counterpart, so nothing can be scored; "
            "map at least one in classes.imagenet_map"
        )
    start = time.perf_counter()

    def measure(frame: pd.DataFrame) -> EvaluationReport:
        return evaluate_predictions(
            frame, mapped, n_bins=evaluate_cfg.calibration_bins, size_buckets=list(evaluate_cfg.size_buckets)
        )

    report = measure(scored)
    by_subset = {str(name): measure(part).scalar_metrics() for name, part in scored.groupby("Subset", sort=True)}
    seconds["metrics"] = time.perf_counter() - start
    log.info("evaluated %d chips (%d rejects, %d unmapped): top-1 %.3f", chips_read, len(rejects), len(predictions) - len(scored), report.top1_accuracy)
    return Evaluation(
        predictions, rejects, report, chips_read, len(predictions) - len(scored), truth, seconds, path, subset, by_subset
    )


def mistake_chips(evaluation: Evaluation, output: str, n: int) -> tuple[list[np.ndarray], list[str]]:
    """The ``n`` most confident mistakes as decoded chips with captions, for the gallery.

    Reads only the rows of those images from the chip Parquet files (pyarrow filter),
    so it costs the same on both inference paths and on any dataset size.
    """
    mistakes = most_confident_mistakes(*evaluation.scored(), n)
    if mistakes.empty:
        return [], []
    source = pads.dataset(layout.dataset_url(output), format="parquet")
    table = source.to_table(columns=[*schema.CHIP_KEY, "chip"], filter=pads.field("ImageID").isin(list(mistakes["ImageID"].unique())))
    chips = table.to_pandas().drop_duplicates(subset=list(schema.CHIP_KEY))
    merged = mistakes.merge(chips, on=list(schema.CHIP_KEY), how="left")
    images = [schema.decode_chip(jpeg) for jpeg in merged["chip"]]
    return images, [mistake_caption(row) for row in merged.itertuples()]


def mistake_caption(chip: Any) -> str:
    """Which chip (ImageID, box corners in fractions of the image) and what went wrong, so a
    tile can be found in ``tables/chips.json`` and in the image itself."""
    return (
        f"{chip.ImageID}\nbox ({chip.XMin:.2f}, {chip.YMin:.2f})–({chip.XMax:.2f}, {chip.YMax:.2f})\n"
        f"{chip.LabelText} → {chip.predicted_label} ({chip.confidence:.2f})"
    )
