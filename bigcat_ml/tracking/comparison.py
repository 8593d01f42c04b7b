"""Put finished evaluation runs side by side: the table and the figures ``compare`` logs."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Optional

import mlflow
import pandas as pd
from matplotlib.figure import Figure

from bigcat_ml.tracking import names

from bigcat_ml.reporting import figures
from bigcat_ml.tracking.names import STEP_TAG

log = logging.getLogger(__name__)


class MixedDatasetsError(ValueError):
    """Runs scored different chip datasets; their numbers are not comparable."""


def find_evaluation_runs(experiment_id: str, filter_tag: Optional[str] = None) -> pd.DataFrame:
    """Finished evaluate runs of the experiment, newest first, one per model and weights.

    ``filter_tag`` is ``key=value``: only runs carrying that tag. When a model was
    evaluated several times on one dataset the newest run stands for it.
    """
    where = f"tags.`{STEP_TAG}` = 'evaluate' and attributes.status = 'FINISHED'"
    if filter_tag:
        key, sep, value = filter_tag.partition("=")
        if not sep or not key:
            raise ValueError(f"compare.filter_tag must be key=value, got {filter_tag!r}")
        where += f" and tags.`{key.strip()}` = '{value.strip()}'"
    runs = mlflow.search_runs(experiment_ids=[experiment_id], filter_string=where, order_by=["attributes.start_time DESC"])
    if runs.empty:
        raise LookupError(
            f"no finished evaluation runs in experiment {experiment_id}"
            + (f" with tag {filter_tag}" if filter_tag else "")
            + ": run `python -m bigcat_ml.main` (or evaluate) first"
        )
    identity = [f"tags.{names.MODEL_TAG}", f"tags.{names.WEIGHTS_TAG}", f"tags.{names.DATASET_DIGEST_TAG}"]
    return runs.drop_duplicates(subset=identity, keep="first").reset_index(drop=True)


def check_same_dataset(runs: pd.DataFrame, allow_mixed: bool) -> None:
    """Refuse runs on different chip datasets unless the user says they know."""
    digests = runs[f"tags.{names.DATASET_DIGEST_TAG}"]
    if digests.nunique(dropna=False) > 1 and not allow_mixed:
        listing = ", ".join(f"{name}: {str(d)[:12]}" for name, d in zip(run_labels(runs), digests))
        raise MixedDatasetsError(
            f"the runs scored different chip datasets ({listing}); compare runs of one dataset "
            "(compare.filter_tag=...) or pass compare.allow_mixed_datasets=true"
        )


def run_labels(runs: pd.DataFrame) -> list:
    """Readable, unique names: ``<model> [<weights>]``, with a run-id suffix on a clash."""
    labels = [f"{m} [{w}]" for m, w in zip(runs[f"tags.{names.MODEL_TAG}"], runs[f"tags.{names.WEIGHTS_TAG}"])]
    counts = pd.Series(labels).value_counts()
    return [f"{label} {rid[:6]}" if counts[label] > 1 else label for label, rid in zip(labels, runs["run_id"])]


@dataclass(frozen=True)
class Comparison:
    """The comparison table (one row per run) and what the figures are drawn from."""

    table: pd.DataFrame
    per_class_f1: pd.DataFrame
    calibrations: Dict[str, pd.DataFrame]
    confusions: Dict[str, pd.DataFrame]


def build_comparison(runs: pd.DataFrame, download_dir: Path) -> Comparison:
    """Gather metrics from the runs and their logged tables (downloaded to ``download_dir``)."""
    labels = run_labels(runs)
    metric_columns = [*names.HEADLINE_METRICS, names.THROUGHPUT_METRIC]
    table = pd.DataFrame(
        {
            "run": labels,
            "model": runs[f"tags.{names.MODEL_TAG}"].values,
            "weights": runs[f"tags.{names.WEIGHTS_TAG}"].values,
            **{m: runs.get(f"metrics.{m}", pd.Series([float("nan")] * len(runs))).values for m in metric_columns},
            "dataset_digest": runs[f"tags.{names.DATASET_DIGEST_TAG}"].str[:12].values,
            "run_id": runs["run_id"].values,
        }
    )
    per_class, calibrations, confusions = {}, {}, {}
    for label, run_id in zip(labels, runs["run_id"]):
        tables = _download_tables(run_id, download_dir / run_id)
        per_class[label] = tables[names.PER_CLASS_CSV].set_index("class")["f1"]
        calibrations[label] = tables[names.CALIBRATION_CSV]
        confusions[label] = tables[names.CONFUSION_CSV].set_index(tables[names.CONFUSION_CSV].columns[0])
    per_class_f1 = pd.DataFrame(per_class)
    per_class_f1.index.name = "class"
    wide = per_class_f1.T.add_prefix("f1.")
    table = table.merge(wide, left_on="run", right_index=True)
    return Comparison(table=table, per_class_f1=per_class_f1, calibrations=calibrations, confusions=confusions)


def _download_tables(run_id: str, target: Path) -> Dict[str, pd.DataFrame]:
    target.mkdir(parents=True, exist_ok=True)
    tables = {}
    for name in (names.PER_CLASS_CSV, names.CALIBRATION_CSV, names.CONFUSION_CSV):
        local = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=name, dst_path=str(target))
        tables[name] = pd.read_csv(local)
    return tables


def comparison_figures(comparison: Comparison) -> Dict[str, Figure]:
    """The figures ``compare`` logs, by artifact file name."""
    headline = comparison.table.set_index("run")[list(names.HEADLINE_METRICS)]
    return {
        "headline_metrics.png": figures.metric_bars(headline, "Headline metrics by run (ECE: lower is better)"),
        "reliability_overlay.png": figures.reliability_overlay(comparison.calibrations),
        "per_class_f1.png": figures.per_class_f1_grouped(comparison.per_class_f1),
        "confusions.png": figures.confusions_side_by_side(comparison.confusions),
    }


def short_table(comparison: Comparison) -> pd.DataFrame:
    """The printed summary: one row per run, the headline metrics and throughput."""
    columns = ["run", *names.HEADLINE_METRICS, names.THROUGHPUT_METRIC]
    return comparison.table[columns].round(4)
