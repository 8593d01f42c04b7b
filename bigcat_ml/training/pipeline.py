"""The train step as a library: log the inputs, fit (here or on Spark), log and register.

Runs inside the step's active MLflow run. ``python -m bigcat_ml.train``, ``main`` and the
tests drive exactly this.
"""
from __future__ import annotations

import json
import logging
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import mlflow
import pandas as pd
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from bigcat_ml.chips import layout, readers
from bigcat_ml.chips.digest import content_digest
from bigcat_ml.config.schema import TrainStrategy
from bigcat_ml.scoring.fine_tuned import CLASSIFIER_FILE, save_classifier
from bigcat_ml.scoring.models import as_model_config, weights_source
from bigcat_ml.tracking import names
from bigcat_ml.tracking.runs import log_chip_dataset_input
from bigcat_ml.training.data import SubsetStats, labelled_chips
from bigcat_ml.training.pyfunc import INPUT_COLUMN, log_classifier

log = logging.getLogger(__name__)

INPUT_EXAMPLE_CHIPS = 2


@dataclass
class TrainOutcome:
    """What a train run produced: the model's URIs, its best-epoch metrics, the time it took."""

    model_uri: str  # models:/<name>/<version> when registered, else the logged model's URI
    registered_version: Optional[str]
    best_epoch: int  # 1-based, as the per-epoch metrics' step + 1
    best_metrics: Dict[str, float]
    seconds: float


def training_summary(train_cfg: Any) -> str:
    """The training config in one line, for tags and the comparison table."""
    augment = train_cfg.augment
    parts = [name for name, on in (("flip", augment.flip), (f"crop {augment.crop}", augment.crop > 0),
                                   (f"colour {augment.colour}", augment.colour > 0)) if on]
    strategy = TrainStrategy(train_cfg.strategy)
    where = f"{strategy.value} x{train_cfg.num_workers}" if strategy is TrainStrategy.spark_barrier else strategy.value
    return (
        f"{'frozen' if train_cfg.freeze_backbone else 'unfrozen'} backbone, <= {train_cfg.epochs} epochs, "
        f"batch {train_cfg.batch_size}, lr {train_cfg.learning_rate}, augment {'+'.join(parts) or 'none'}, "
        f"seed {train_cfg.seed}, {where}"
    )


def subset_digest(spark: SparkSession, output: str, subset: str) -> str:
    """The content digest of one Subset's chips (same rule as the whole dataset's)."""
    return content_digest(readers.read_chips_spark(spark, output).filter(F.col("Subset") == subset))


def log_subset_inputs(spark: SparkSession, train_cfg: Any, dataset_name: str) -> Dict[str, str]:
    """``mlflow.log_input`` for the train and validation Subsets; returns their digests."""
    digests = {}
    for subset, context in ((train_cfg.train_subset, names.TRAINING_CONTEXT), (train_cfg.validation_subset, names.VALIDATION_CONTEXT)):
        digest = subset_digest(spark, train_cfg.dataset, subset)
        digests[subset] = digest
        log_chip_dataset_input(layout.dataset_url(train_cfg.dataset), f"{dataset_name} [{subset}]", digest, context)
        mlflow.set_tag(f"{names.DATASET_DIGEST_TAG}.{subset}", digest)
    return digests


def input_example(output: str, subset: str) -> pd.DataFrame:
    """A few real chips of ``subset`` as the pyfunc input (a ``chip`` column of JPEG bytes)."""
    chips: List[bytes] = []
    for jpeg, _ in labelled_chips(output, subset):
        chips.append(bytes(jpeg))
        if len(chips) == INPUT_EXAMPLE_CHIPS:
            break
    return pd.DataFrame({INPUT_COLUMN: chips})


def log_history(history: Dict[str, List[float]]) -> None:
    """Per-epoch metrics (step = epoch index) for a fit whose callbacks could not log them."""
    for epoch in range(len(next(iter(history.values())))):
        mlflow.log_metrics({name: values[epoch] for name, values in history.items()}, step=epoch)


def _stats_metrics(stats: Dict[str, SubsetStats]) -> Dict[str, float]:
    metrics: Dict[str, float] = {}
    for subset, counts in stats.items():
        metrics[names.subset_metric(subset, "chips")] = counts.used
        metrics[names.subset_metric(subset, "skipped_chips")] = counts.skipped
    return metrics


def train_and_log(spark: Optional[SparkSession], train_cfg: Any, model_cfg: Any, class_names: Sequence[str]) -> TrainOutcome:
    """Train ``model_cfg`` as ``train_cfg`` says and log everything to the active run; register the model."""
    start = time.perf_counter()
    strategy = TrainStrategy(train_cfg.strategy)
    with tempfile.TemporaryDirectory(prefix="bigcat_ml-train-") as folder:
        classifier_file = Path(folder) / CLASSIFIER_FILE
        if strategy is TrainStrategy.spark_barrier:
            from bigcat_ml.training.distributed import train_on_spark_barrier

            if spark is None:
                raise ValueError("train.strategy=spark_barrier needs a SparkSession")
            trained = train_on_spark_barrier(spark, train_cfg, model_cfg, class_names, classifier_file)
            log_history(trained.history)
            history, best, stats = trained.history, trained.best_epoch, trained.stats
        else:
            from mlflow.keras import MlflowCallback

            from bigcat_ml.training.fit import fit_classifier

            result = fit_classifier(train_cfg, model_cfg, class_names, callbacks=[MlflowCallback()])
            save_classifier(result.model, classifier_file, class_names, as_model_config(model_cfg))
            history, best = result.history, result.best_epoch
            stats = {train_cfg.train_subset: result.train_stats, train_cfg.validation_subset: result.validation_stats}
        best_metrics = {name: values[best] for name, values in history.items()}
        seconds = time.perf_counter() - start
        mlflow.log_metrics(
            {
                **{f"best_{name}": value for name, value in best_metrics.items()},
                "best_epoch": best + 1,
                "epochs_run": len(next(iter(history.values()))),
                names.metric_name(names.SECONDS_METRIC, "train"): seconds,
                **_stats_metrics(stats),
            }
        )
        mlflow.log_dict({"class_names": list(class_names)}, names.CLASS_NAMES_ARTIFACT)
        info = log_classifier(
            classifier_file,
            input_example(train_cfg.dataset, train_cfg.validation_subset),
            class_names,
            metadata={
                "backbone": model_cfg.name,
                "weights": weights_source(model_cfg),
                "training": training_summary(train_cfg),
                "best_epoch": best + 1,
            },
            registered_model_name=train_cfg.registered_model_name or None,
        )
    version = getattr(info, "registered_model_version", None)
    uri = f"models:/{train_cfg.registered_model_name}/{version}" if version else info.model_uri
    mlflow.set_tag(names.MODEL_URI_TAG, uri)
    log.info("logged %s (%s)", uri, json.dumps({k: round(v, 4) for k, v in best_metrics.items()}))
    return TrainOutcome(uri, str(version) if version else None, best + 1, best_metrics, seconds)
