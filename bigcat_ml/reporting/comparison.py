"""Put finished evaluation runs side by side: the table and the figures ``compare`` logs."""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Optional, Tuple

import mlflow
import pandas as pd
from matplotlib.figure import Figure
from mlflow.exceptions import MlflowException

from bigcat_ml.tracking import names

from bigcat_ml.config.schema import Precision
from bigcat_ml.reporting.figures import compare as figures
from bigcat_ml.scoring.metrics import OutcomeScores, outcome_scores
from bigcat_ml.tracking.names import STEP_TAG

log = logging.getLogger(__name__)

PRECISION = "precision"  # the comparison table's column of model.precision


class MixedDatasetsError(ValueError):
    """Runs scored different chip datasets; their numbers are not comparable."""


def find_evaluation_runs(experiment_id: str, filter_tag: Optional[str] = None) -> pd.DataFrame:
    """Finished evaluate runs of the experiment, newest first, one per model and weights.

    ``filter_tag`` is ``key=value``: only runs carrying that tag. When a model was
    evaluated several times on one dataset the newest run stands for it.
    """
    where = f"tags.`{STEP_TAG}` = '{names.EVALUATE_STEP}' and attributes.status = 'FINISHED'"
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
    runs[PRECISION] = run_precisions(runs)
    identity = [f"tags.{names.MODEL_TAG}", f"tags.{names.WEIGHTS_TAG}", PRECISION, f"tags.{names.DATASET_DIGEST_TAG}"]
    return runs.drop_duplicates(subset=identity, keep="first").reset_index(drop=True)


def run_precisions(runs: pd.DataFrame) -> pd.Series:
    """Each run's ``model.precision``; runs logged before the tag existed ran in float32."""
    tag = runs.get(f"tags.{names.PRECISION_TAG}", pd.Series([None] * len(runs), index=runs.index, dtype=object))
    return tag.fillna(Precision.float32.value)


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
    """Readable, unique names: ``<model> [<weights>]`` (plus the precision when it is not
    float32), with a run-id suffix on a clash."""
    labels = [
        f"{m} [{w}]" + ("" if p == Precision.float32.value else f" {p}")
        for m, w, p in zip(runs[f"tags.{names.MODEL_TAG}"], runs[f"tags.{names.WEIGHTS_TAG}"], run_precisions(runs))
    ]
    counts = pd.Series(labels).value_counts()
    return [f"{label} {rid[:6]}" if counts[label] > 1 else label for label, rid in zip(labels, runs["run_id"])]


class ComparisonBasisError(ValueError):
    """A run cannot be scored on the comparison's basis (no per-chip results, no chips of the Subset)."""


@dataclass(frozen=True)
class Basis:
    """The chips every number and figure of a comparison is computed on: those of one
    ``Subset`` (None: every chip each run scored), and how many each run has there."""

    subset: Optional[str]
    chips: Dict[str, int]  # run label -> chips on the basis

    def describe(self) -> str:
        """``test subset, 52 chips each``; counts that differ are listed, run by run."""
        where = f"{self.subset} subset" if self.subset else "every chip each run scored"
        counts = set(self.chips.values())
        if len(counts) == 1:
            return f"{where}, {counts.pop()} chips each"
        return f"{where}, " + ", ".join(f"{label}: {n} chips" for label, n in self.chips.items())

    def phrase(self) -> str:
        """The basis as titles and the printed summary end: ``on the test subset, 52 chips each``."""
        return f"on the {self.describe()}" if self.subset else f"on {self.describe()}"

    def metric(self, metric: str) -> str:
        """The table column of ``metric`` on this basis: ``test/ece``, or ``ece`` on every chip."""
        return names.subset_metric(self.subset, metric) if self.subset else metric

    def metric_columns(self) -> list:
        return [self.metric(m) for m in names.HEADLINE_METRICS]


@dataclass(frozen=True)
class Comparison:
    """The comparison table (one row per run) and what the figures are drawn from, all of it
    re-scored from each run's per-chip results on one :class:`Basis`."""

    table: pd.DataFrame
    per_class_f1: pd.DataFrame
    calibrations: Dict[str, pd.DataFrame]
    confusions: Dict[str, pd.DataFrame]
    basis: Basis


def build_comparison(runs: pd.DataFrame, download_dir: Path, subset: Optional[str]) -> Comparison:
    """Re-score every run on the chips of ``subset`` (None: each run's own chips) from the
    per-chip results it logged (downloaded to ``download_dir``), so that the table and every
    figure count the same chips; a run with no chips there is refused."""
    labels = run_labels(runs)
    scores, chips = {}, {}
    for label, run_id, evaluated in zip(labels, runs["run_id"], _column(runs, f"tags.{names.SUBSET_TAG}", names.ALL_SUBSETS)):
        scores[label], chips[label] = _rescore(label, run_id, str(evaluated), subset, download_dir / run_id)
    basis = Basis(subset, chips)
    if len(set(chips.values())) > 1:
        log.warning("the runs have different numbers of chips on the comparison basis: %s", basis.describe())
    table = pd.DataFrame(
        {
            "run": labels,
            "kind": _column(runs, f"tags.{names.KIND_TAG}", names.ZERO_SHOT),
            "model": runs[f"tags.{names.MODEL_TAG}"].values,
            "weights": runs[f"tags.{names.WEIGHTS_TAG}"].values,
            PRECISION: run_precisions(runs).values,
            "training": _column(runs, f"tags.{names.TRAINING_TAG}", ""),
            "evaluated": _column(runs, f"tags.{names.SUBSET_TAG}", names.ALL_SUBSETS),
            "basis": basis.describe(),
            "basis_chips": [chips[label] for label in labels],
            **{basis.metric(m): [scores[label].headline[m] for label in labels] for m in names.HEADLINE_METRICS},
            names.THROUGHPUT_METRIC: _column(runs, f"metrics.{names.THROUGHPUT_METRIC}", float("nan")),
            "dataset_digest": runs[f"tags.{names.DATASET_DIGEST_TAG}"].str[:12].values,
            "run_id": runs["run_id"].values,
        }
    )
    per_class_f1 = pd.DataFrame({label: s.per_class.set_index("class")["f1"] for label, s in scores.items()})
    per_class_f1.index.name = "class"
    table = table.merge(per_class_f1.T.add_prefix("f1."), left_on="run", right_index=True)
    return Comparison(
        table=table,
        per_class_f1=per_class_f1,
        calibrations={label: s.calibration for label, s in scores.items()},
        confusions={label: s.confusion for label, s in scores.items()},
        basis=basis,
    )


def _rescore(label: str, run_id: str, evaluated: str, subset: Optional[str], target: Path) -> Tuple[OutcomeScores, int]:
    """One run's scores on ``subset`` from its per-chip results, binned as the run binned
    its own calibration table and with its classes in the run's order; and the chip count."""
    target.mkdir(parents=True, exist_ok=True)
    try:
        local = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=names.CHIPS_TABLE, dst_path=str(target))
    except MlflowException as error:
        raise ComparisonBasisError(
            f"run {label} ({run_id}) has no {names.CHIPS_TABLE}, the per-chip results compare re-scores "
            "(it was evaluated by an older bigcat_ml): evaluate that model again, or leave the run out "
            "with compare.filter_tag=..."
        ) from error
    results = _read_table(local)
    if subset:
        results = results[results["Subset"] == subset]
    if results.empty:
        raise ComparisonBasisError(
            f"run {label} ({run_id}) scored no chips of Subset {subset!r} (it evaluated {evaluated!r}); "
            "set compare.subset to a Subset every run scored (e.g. test), or null for each run's own chips"
        )
    order = _read_csv(run_id, names.PER_CLASS_CSV, target)["class"]
    bins = len(_read_csv(run_id, names.CALIBRATION_CSV, target))
    true = results["LabelText"].to_numpy()
    present = [name for name in order if name in set(true.tolist())]
    return outcome_scores(true, results.reset_index(drop=True), present, bins), len(results)


def _read_csv(run_id: str, artifact: str, target: Path) -> pd.DataFrame:
    return pd.read_csv(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=artifact, dst_path=str(target)))


def _read_table(local: str) -> pd.DataFrame:
    """An ``mlflow.log_table`` JSON file (pandas' ``split`` orientation) as a DataFrame.

    Read with :mod:`json`, not ``mlflow.load_table``'s ``pd.read_json``, whose dtype
    guessing would turn an all-digit ImageID into a number."""
    with open(local) as handle:
        data = json.load(handle)
    return pd.DataFrame(data["data"], columns=data["columns"])


def _column(runs: pd.DataFrame, name: str, missing: object) -> "pd.Series":
    """A column of ``search_runs``' result, ``missing`` where a run (or every run) lacks it."""
    values = runs[name] if name in runs else pd.Series([missing] * len(runs), index=runs.index)
    return values.where(values.notna(), missing).values


def comparison_figures(comparison: Comparison) -> Dict[str, Figure]:
    """The figures ``compare`` logs, by artifact file name; every title states the basis."""
    basis = comparison.basis
    headline = comparison.table.set_index("run")[basis.metric_columns()].set_axis(list(names.HEADLINE_METRICS), axis=1)
    on = basis.phrase()
    return {
        "headline_metrics.png": figures.metric_bars(headline, f"Headline metrics by run {on} (ECE: lower is better)"),
        "reliability_overlay.png": figures.reliability_overlay(comparison.calibrations, f"Reliability by run\n{on}"),
        "per_class_f1.png": figures.per_class_f1_grouped(comparison.per_class_f1, f"F1 per class by run {on}"),
        "confusions.png": figures.confusions_side_by_side(comparison.confusions, title=f"Confusion matrices by run {on}"),
    }


def short_table(comparison: Comparison) -> pd.DataFrame:
    """The printed summary: one row per run, its kind, precision and training, the headline
    metrics on the comparison's basis, throughput."""
    columns = ["run", "kind", PRECISION, "training", *comparison.basis.metric_columns(), names.THROUGHPUT_METRIC]
    return comparison.table[columns].round(4)
