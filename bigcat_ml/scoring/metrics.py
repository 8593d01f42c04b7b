"""Evaluation metrics over chip predictions: pure pandas, numpy and scikit-learn.

The input is the predictions table (pandas, one row per chip) written by inference: the
chip's OID columns (``LabelText``, the box flags ``IsOccluded`` … ``IsInside`` as 1/0/-1,
``chip_width``/``chip_height`` in pixels) and the model's ``top_k_indices``/``top_k_labels``/
``top_k_probs`` (ImageNet indices, names and probabilities, best first). The ground truth
comes beside it: per OID class (``LabelText``) a :class:`~bigcat_ml.scoring.imagenet.ClassTruth`,
the *set* of ImageNet classes that are right for it (Dog: 118 breeds) and its family's.

How a prediction counts: right when the top-1 class is in the chip's class set. Otherwise
it is attributed to the first evaluated class (the true classes present, in the truth's
order) whose set holds it — a false positive of that class — or, when none does (say
"tabby cat" for a Lynx chip with no Cat chips), to ``other``: a miss for the true class
and a false positive for no evaluated class; the confusion matrix shows it in ``other``.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Dict, List, Mapping, Sequence, Tuple

import numpy as np
import pandas as pd
from sklearn.metrics import (
    average_precision_score,
    confusion_matrix,
    precision_recall_curve,
    precision_recall_fscore_support,
    roc_auc_score,
    roc_curve,
)

from bigcat_ml.tracking.names import metric_name
from bigcat_ml.oid.schemas import BOX_COORDINATES, BOX_FLAGS, UNKNOWN_FLAG
from bigcat_ml.scoring.imagenet import ClassTruth

log = logging.getLogger(__name__)

TOP5 = 5
OTHER = "other"  # confusion column of top-1 predictions outside the evaluated classes
UNKNOWN = "unknown"  # slice value of a box flag that is -1 in OID
CHIP_SIZE_SLICE = "chip_size"
FLAG_VALUES = {1: "1", 0: "0", UNKNOWN_FLAG: UNKNOWN}

PREDICTION_COLUMNS = (
    "LabelText",
    *BOX_FLAGS,
    "chip_width",
    "chip_height",
    "top_k_indices",
    "top_k_labels",
    "top_k_probs",
)

_SCALARS = (
    "n_chips",
    "top1_accuracy",
    "top5_accuracy",
    "family_accuracy",
    "precision_macro",
    "recall_macro",
    "f1_macro",
    "precision_weighted",
    "recall_weighted",
    "f1_weighted",
    "mean_confidence_correct",
    "mean_confidence_wrong",
    "ece",
)


@dataclass(frozen=True)
class EvaluationReport:
    """Everything :func:`evaluate_predictions` measures; fractions are in [0, 1].

    Tables:
      ``per_class``: one row per evaluated class (display name in ``class``): ``support``
      (chips), ``precision``, ``recall``, ``f1``, ``top1_accuracy`` (equal to recall by
      definition), ``top5_accuracy``, ``family_accuracy``.
      ``confusion``: chip counts, rows = true classes, columns = true classes + ``other``.
      ``calibration``: see :func:`calibration_table`. ``slices``: see :func:`slice_accuracy`.
      ``other_predictions``: which ImageNet classes make up the ``other`` column.
    NaN marks a value with nothing to average (no wrong chips, an empty slice).
    """

    n_chips: int
    top1_accuracy: float
    top5_accuracy: float
    family_accuracy: float
    precision_macro: float
    recall_macro: float
    f1_macro: float
    precision_weighted: float
    recall_weighted: float
    f1_weighted: float
    mean_confidence_correct: float
    mean_confidence_wrong: float
    ece: float
    per_class: pd.DataFrame
    confusion: pd.DataFrame
    calibration: pd.DataFrame
    slices: pd.DataFrame
    other_predictions: pd.DataFrame

    def scalar_metrics(self) -> Dict[str, float]:
        """A flat ``{name: value}`` dict for ``mlflow.log_metrics``.

        Names are ``f1_macro``, ``f1.<class>``, ``top1_accuracy.<slice>.<value>``…, made
        MLflow-legal with :func:`metric_name`. Undefined values (NaN) are left out rather
        than logged, so a run with no mistakes simply has no ``mean_confidence_wrong``.
        """
        values: Dict[str, float] = {name: float(getattr(self, name)) for name in _SCALARS}
        for column in self.per_class.columns.drop("class"):
            for name, value in zip(self.per_class["class"], self.per_class[column]):
                values[metric_name(column, name)] = float(value)
        for column in ("top1_accuracy", "family_accuracy"):
            for row in self.slices.itertuples(index=False):
                values[metric_name(column, row.slice, row.value)] = float(getattr(row, column))
        return {name: value for name, value in values.items() if not np.isnan(value)}


def _require_columns(pred: pd.DataFrame, columns: Sequence[str]) -> None:
    missing = [c for c in columns if c not in pred.columns]
    if missing:
        raise ValueError(
            f"predictions table lacks columns {missing}; it has {list(pred.columns)}. "
            "It must follow the inference output contract (see bigcat_ml.scoring.metrics docstring)."
        )


def _stack(pred: pd.DataFrame, column: str) -> np.ndarray:
    """The list-valued column as an (n_chips, k) array; every chip must keep the same k."""
    if pred.empty:
        return np.empty((0, TOP5))
    lengths = pred[column].map(len)
    if lengths.nunique() != 1 or lengths.iloc[0] == 0:
        bad = lengths[lengths != lengths.max()]
        where = f" (row {bad.index[0]} has {bad.iloc[0]})" if not bad.empty else ""
        raise ValueError(
            f"column {column!r} must hold the same number (>= 1) of predictions for every chip; "
            f"found lengths {sorted(lengths.unique().tolist())}{where}"
        )
    return np.stack(pred[column].to_numpy())


def chip_outcomes(pred: pd.DataFrame, truth: Mapping[str, ClassTruth]) -> pd.DataFrame:
    """Per chip (same index as ``pred``): the top-1 ``predicted_index`` and ``confidence``
    (its probability), whether the chip counts as ``top1_correct``, ``top5_correct`` (a
    class of its set among the first five predictions, or all of them when fewer than five
    were kept) and ``family_correct`` (top-1 prediction in its class's family), and the
    ``predicted_class`` it is attributed to (see the module docstring)."""
    _require_columns(pred, ("LabelText", "top_k_indices", "top_k_probs"))
    indices = _stack(pred, "top_k_indices").astype(int)
    probs = _stack(pred, "top_k_probs").astype(float)
    if indices.shape[1] < TOP5:
        k = indices.shape[1]
        log.warning("predictions keep only the top %d classes: top5_accuracy is top-%d", k, k)
    labels = pred["LabelText"].to_numpy()
    unknown = sorted(set(labels) - {name for name, t in truth.items() if t.mapped})
    if unknown:
        row = int(np.flatnonzero(labels == unknown[0])[0])
        raise ValueError(
            f"{int(np.isin(labels, unknown).sum())} chips are of classes {unknown} with no ImageNet classes in the "
            f"ground truth (e.g. row {pred.index[row]}); map them in classes.imagenet_map or drop unmapped chips "
            "before evaluating"
        )
    top1 = indices[:, 0]
    top1_correct = np.zeros(len(pred), bool)
    top5_correct = np.zeros(len(pred), bool)
    family_correct = np.zeros(len(pred), bool)
    for name in set(labels):
        rows = labels == name
        right = list(truth[name].indices)
        top1_correct[rows] = np.isin(top1[rows], right)
        top5_correct[rows] = np.isin(indices[rows, :TOP5], right).any(axis=1)
        family_correct[rows] = np.isin(top1[rows], list(truth[name].family))
    predicted_class = np.full(len(pred), OTHER, dtype=object)
    for name in reversed([n for n in truth if n in set(labels)]):  # the first listed class wins
        predicted_class[np.isin(top1, list(truth[name].indices))] = name
    predicted_class[top1_correct] = labels[top1_correct]
    return pd.DataFrame(
        {
            "predicted_index": top1,
            "confidence": probs[:, 0],
            "top1_correct": top1_correct,
            "top5_correct": top5_correct,
            "family_correct": family_correct,
            "predicted_class": predicted_class,
        },
        index=pred.index,
    )


def evaluate_predictions(
    pred: pd.DataFrame,
    truth: Mapping[str, ClassTruth],
    n_bins: int = 10,
    size_buckets: Sequence[int] = (32, 64, 128, 256),
) -> EvaluationReport:
    """Score a predictions table against its ground truth.

    ``truth`` maps each class's display name (``LabelText``) to its :class:`ClassTruth`;
    its order is the class order of every table. ``n_bins`` equal-width confidence bins
    feed the ECE; ``size_buckets`` are the edges in pixels of the chip-size slices.
    Precision/recall/F1 use the true classes present as sklearn ``labels`` (see the module
    docstring for predictions outside them); a class never predicted has precision 0.
    """
    _require_columns(pred, PREDICTION_COLUMNS)
    if pred.empty:
        raise ValueError("the predictions table is empty: there is nothing to evaluate")
    outcomes = chip_outcomes(pred, truth)
    true = pred["LabelText"].to_numpy()
    scores = outcome_scores(true, outcomes, [name for name in truth if name in set(true.tolist())], n_bins)
    correct = outcomes["top1_correct"]
    return EvaluationReport(
        n_chips=len(pred),
        **scores.headline,
        **{k: v for k, v in scores.averages.items() if k != "f1_macro"},
        mean_confidence_correct=float(outcomes.loc[correct, "confidence"].mean()),
        mean_confidence_wrong=float(outcomes.loc[~correct, "confidence"].mean()),
        per_class=scores.per_class,
        confusion=scores.confusion,
        calibration=scores.calibration,
        slices=slice_accuracy(pred, outcomes, size_buckets),
        other_predictions=_other_predictions(pred, outcomes),
    )


@dataclass(frozen=True)
class OutcomeScores:
    """What :func:`outcome_scores` measures from per-chip outcomes alone (no ImageNet truth)."""

    headline: Dict[str, float]  # top1/top5/family accuracy, f1_macro, ece: names.HEADLINE_METRICS
    averages: Dict[str, float]  # precision/recall/f1, macro and weighted
    per_class: pd.DataFrame
    confusion: pd.DataFrame
    calibration: pd.DataFrame


def outcome_scores(true: np.ndarray, outcomes: pd.DataFrame, names: List[str], n_bins: int) -> OutcomeScores:
    """The headline metrics and tables of chips whose :func:`chip_outcomes` are known.

    ``true`` is each chip's class, ``names`` the classes in table order. ``evaluate``
    scores its predictions through here and ``compare`` re-scores the per-chip results a
    run logged (restricted to one Subset), so both give the same number for the same chips.
    """
    per_class, averages = _per_class(true, outcomes, names)
    calibration = calibration_table(outcomes["confidence"], outcomes["top1_correct"], n_bins)
    headline = {
        "top1_accuracy": float(outcomes["top1_correct"].mean()),
        "top5_accuracy": float(outcomes["top5_correct"].mean()),
        "family_accuracy": float(outcomes["family_correct"].mean()),
        "f1_macro": averages["f1_macro"],
        "ece": expected_calibration_error(calibration),
    }
    confusion = _confusion(true, outcomes["predicted_class"].to_numpy(), names)
    return OutcomeScores(headline, averages, per_class, confusion, calibration)


def _per_class(true: np.ndarray, outcomes: pd.DataFrame, names: List[str]) -> Tuple[pd.DataFrame, Dict[str, float]]:
    predicted = outcomes["predicted_class"].to_numpy()
    precision, recall, f1, support = precision_recall_fscore_support(
        true, predicted, labels=names, zero_division=0
    )
    per_class = pd.DataFrame(
        {"class": names, "support": support, "precision": precision, "recall": recall, "f1": f1}
    )
    rates = outcomes[["top1_correct", "top5_correct", "family_correct"]].groupby(true).mean()
    rates = rates.reindex(names).set_axis(["top1_accuracy", "top5_accuracy", "family_accuracy"], axis=1)
    per_class = pd.concat([per_class, rates.reset_index(drop=True)], axis=1)

    averages: Dict[str, float] = {}
    for average in ("macro", "weighted"):
        p, r, f, _ = precision_recall_fscore_support(
            true, predicted, labels=names, average=average, zero_division=0
        )
        averages.update({f"precision_{average}": float(p), f"recall_{average}": float(r), f"f1_{average}": float(f)})
    return per_class, averages


def _confusion(true: np.ndarray, predicted: np.ndarray, names: List[str]) -> pd.DataFrame:
    mapped = np.where(np.isin(predicted, names), predicted, OTHER)
    # No chip is truly "other", so the last row of sklearn's square matrix is all zeros.
    matrix = confusion_matrix(true, mapped, labels=[*names, OTHER])[:-1]
    return pd.DataFrame(
        matrix,
        index=pd.Index(names, name="true"),
        columns=pd.Index([*names, OTHER], name="predicted"),
    )


def _other_predictions(pred: pd.DataFrame, outcomes: pd.DataFrame) -> pd.DataFrame:
    """Counts of (true class, top-1 ImageNet class) for the chips in the ``other`` column."""
    outside = outcomes["predicted_class"] == OTHER
    table = pd.DataFrame(
        {
            "class": pred.loc[outside, "LabelText"],
            "predicted_index": outcomes.loc[outside, "predicted_index"],
            "predicted_label": pred.loc[outside, "top_k_labels"].map(lambda top: top[0]),
        }
    )
    counts = table.value_counts().rename("count").reset_index()
    return counts.sort_values(["count", "class", "predicted_label"], ascending=[False, True, True], ignore_index=True)


def calibration_table(confidence: pd.Series, correct: pd.Series, n_bins: int) -> pd.DataFrame:
    """Top-1 confidence against accuracy in ``n_bins`` equal-width bins over [0, 1].

    Bins are right-closed, ``(lower, upper]``, the first one also holding 0. One row per
    bin, empty ones included (``count`` 0, NaN means): ``bin``, ``lower``, ``upper``,
    ``count`` (chips), ``confidence`` (mean top-1 probability), ``accuracy`` (fraction
    correct). sklearn's ``calibration_curve`` drops empty bins and gives no counts, which
    the reliability diagram and the ECE need.
    """
    if n_bins < 1:
        raise ValueError(f"evaluate.calibration_bins must be >= 1, got {n_bins}")
    outside = confidence[(confidence < 0) | (confidence > 1) | confidence.isna()]
    if not outside.empty:
        raise ValueError(
            f"top-1 confidence must be a probability in [0, 1]; row {outside.index[0]} has {outside.iloc[0]!r}"
        )
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    bins = pd.cut(confidence, edges, labels=False, include_lowest=True, right=True)
    grouped = pd.DataFrame({"confidence": confidence, "accuracy": correct.astype(float)}).groupby(bins)
    means = grouped.mean().reindex(range(n_bins))
    return pd.DataFrame(
        {
            "bin": range(n_bins),
            "lower": edges[:-1],
            "upper": edges[1:],
            "count": grouped.size().reindex(range(n_bins), fill_value=0).to_numpy(),
            "confidence": means["confidence"].to_numpy(),
            "accuracy": means["accuracy"].to_numpy(),
        }
    )


def expected_calibration_error(calibration: pd.DataFrame) -> float:
    """ECE: the chip-weighted mean of |accuracy - mean confidence| over the bins of a
    :func:`calibration_table` (0 = calibrated, empty bins weigh nothing)."""
    gap = (calibration["accuracy"] - calibration["confidence"]).abs().fillna(0.0)
    return float((calibration["count"] * gap).sum() / calibration["count"].sum())


def size_bucket_labels(edges: Sequence[int]) -> List[str]:
    """Labels of the chip-size buckets cut at ``edges`` (pixels): ``[32, 64]`` ->
    ``['<32', '32-63', '>=64']``; no edges -> ``['all']``."""
    edges = list(edges)
    if any(int(e) != e or e < 1 for e in edges) or sorted(set(edges)) != edges:
        raise ValueError(f"evaluate.size_buckets must be increasing positive whole pixels, got {edges}")
    if not edges:
        return ["all"]
    inner = [f"{low}-{high - 1}" for low, high in zip(edges, edges[1:])]
    return [f"<{edges[0]}", *inner, f">={edges[-1]}"]


def size_buckets_of(chips: pd.DataFrame, edges: Sequence[int]) -> pd.Series:
    """Each chip's bucket (:func:`size_bucket_labels`) by its shorter side in pixels,
    ``min(chip_width, chip_height)``; a side equal to an edge opens the next bucket."""
    labels = size_bucket_labels(edges)
    shorter = chips[["chip_width", "chip_height"]].min(axis=1)
    cuts = [-np.inf, *edges, np.inf]
    return pd.cut(shorter, cuts, labels=labels, right=False).astype(str)


def slice_accuracy(pred: pd.DataFrame, outcomes: pd.DataFrame, size_buckets: Sequence[int]) -> pd.DataFrame:
    """Top-1 and family accuracy within slices of the chips, in long form.

    Columns ``slice`` (a box flag, or ``chip_size``), ``value`` (``1``/``0``/``unknown`` for
    a flag, a bucket label for size), ``count``, ``top1_accuracy``, ``family_accuracy``.
    Every value appears, empty ones with count 0 and NaN accuracy, so that tables of two
    runs line up row by row.
    """
    frames = []
    for flag in BOX_FLAGS:
        values = pred[flag]
        bad = values[~values.isin(list(FLAG_VALUES))]
        if not bad.empty:
            raise ValueError(
                f"column {flag} row {bad.index[0]} has {bad.iloc[0]!r}; OID box flags are 1, 0 or -1 (unknown)"
            )
        frames.append(_group_accuracy(flag, values.map(FLAG_VALUES), outcomes, list(FLAG_VALUES.values())))
    buckets = size_buckets_of(pred, size_buckets)
    frames.append(_group_accuracy(CHIP_SIZE_SLICE, buckets, outcomes, size_bucket_labels(size_buckets)))
    return pd.concat(frames, ignore_index=True)


def _group_accuracy(name: str, keys: pd.Series, outcomes: pd.DataFrame, order: List[str]) -> pd.DataFrame:
    grouped = outcomes[["top1_correct", "family_correct"]].astype(float).groupby(keys)
    means = grouped.mean().reindex(order)
    return pd.DataFrame(
        {
            "slice": name,
            "value": order,
            "count": grouped.size().reindex(order, fill_value=0).to_numpy(),
            "top1_accuracy": means["top1_correct"].to_numpy(),
            "family_accuracy": means["family_correct"].to_numpy(),
        }
    )


def most_confident_mistakes(pred: pd.DataFrame, truth: Mapping[str, ClassTruth], n: int) -> pd.DataFrame:
    """The ``n`` wrong top-1 predictions the model was surest of, surest first.

    Rows of ``pred`` plus ``predicted_index``, ``predicted_label`` and ``confidence``;
    ties are broken by ``ImageID`` so that the gallery is the same on every run.
    """
    if n < 0:
        raise ValueError(f"number of mistakes must be >= 0, got {n}")
    _require_columns(pred, ("ImageID", "top_k_labels"))
    outcomes = chip_outcomes(pred, truth)
    wrong = ~outcomes["top1_correct"]
    mistakes = pred.loc[wrong].assign(
        predicted_index=outcomes.loc[wrong, "predicted_index"],
        predicted_label=pred.loc[wrong, "top_k_labels"].map(lambda top: top[0]),
        confidence=outcomes.loc[wrong, "confidence"],
    )
    ordered = mistakes.sort_values(["confidence", "ImageID"], ascending=[False, True], kind="stable")
    return ordered.head(n).reset_index(drop=True)


def attribute_rates(boxes: pd.DataFrame, by: str = "LabelText") -> pd.DataFrame:
    """Per ``by`` group, the fraction of boxes with each OID flag set (``IsOccluded`` …).

    Boxes whose flag is -1 (unknown) are left out of that flag's denominator: unknown is
    not "no", and counting it as such would make poorly annotated classes look clean.
    NaN when a group has no known value for a flag.
    """
    _require_columns(boxes, (by, *BOX_FLAGS))
    known = boxes[list(BOX_FLAGS)].where(boxes[list(BOX_FLAGS)] != UNKNOWN_FLAG)
    return known.astype(float).groupby(boxes[by]).mean()


CHIP_RESULT_COLUMNS = (
    "ImageID", *BOX_COORDINATES, "Subset", "LabelText", "predicted_class", "top_k_labels", "top_k_probs",
    "confidence", "top1_correct", "top5_correct", "family_correct",
)


def chip_results(pred: pd.DataFrame, truth: Mapping[str, ClassTruth]) -> pd.DataFrame:
    """One row per chip, :data:`CHIP_RESULT_COLUMNS`: which chip (ImageID, box in fractions
    of the image), its Subset and class, the top-k labels and probabilities as plain lists
    (JSON-ready), and its outcomes. Logged as an MLflow table so the UI can filter the chips,
    and re-scored by ``compare`` on a common Subset (:func:`outcome_scores`)."""
    _require_columns(pred, ("ImageID", *BOX_COORDINATES, "Subset", "top_k_labels"))
    outcomes = chip_outcomes(pred, truth)
    results = pd.concat([pred[["ImageID", *BOX_COORDINATES, "Subset", "LabelText"]], outcomes], axis=1)
    results["top_k_labels"] = pred["top_k_labels"].map(lambda labels: [str(label) for label in labels])
    results["top_k_probs"] = pred["top_k_probs"].map(lambda probs: [round(float(p), 6) for p in probs])
    return results[list(CHIP_RESULT_COLUMNS)].reset_index(drop=True)


def class_scores(pred: pd.DataFrame, truth: Mapping[str, ClassTruth]) -> pd.DataFrame:
    """Per chip (rows, ``pred``'s index) and evaluated class (columns, truth order): the
    probability the model gives that class, the sum of the stored top-k probabilities of
    the class's output indices (its ImageNet classes, or its one output of a fine-tuned head).

    Only the top-k probabilities are stored, so an output outside a chip's top k counts 0:
    a lower bound that ranks chips as the full softmax would wherever it matters (a class
    outside the top k has less probability than every kept one).
    """
    indices = _stack(pred, "top_k_indices").astype(int)
    probs = _stack(pred, "top_k_probs").astype(float)
    columns = {}
    for name, class_truth in truth.items():
        if class_truth.mapped:
            columns[name] = np.where(np.isin(indices, list(class_truth.indices)), probs, 0.0).sum(axis=1)
    return pd.DataFrame(columns, index=pred.index)


@dataclass(frozen=True)
class OneVsRest:
    """Per class one-vs-rest ranking quality: ``auc`` has ``class``, ``positives`` (chips of
    the class), ``roc_auc`` and ``average_precision`` (NaN when the chips are all of the class
    or none is: nothing to rank); ``roc``/``pr`` hold each rankable class's curve as
    (x, y) arrays: (false positive rate, true positive rate) and (recall, precision)."""

    auc: pd.DataFrame
    roc: Dict[str, Tuple[np.ndarray, np.ndarray]]
    pr: Dict[str, Tuple[np.ndarray, np.ndarray]]

    def scalar_metrics(self) -> Dict[str, float]:
        """``roc_auc.<class>``, ``average_precision.<class>`` and their macro means, NaN left out."""
        values = {"roc_auc_macro": self.auc["roc_auc"].mean(), "average_precision_macro": self.auc["average_precision"].mean()}
        for row in self.auc.itertuples(index=False):
            values[metric_name("roc_auc", row[0])] = row.roc_auc
            values[metric_name("average_precision", row[0])] = row.average_precision
        return {name: float(value) for name, value in values.items() if not np.isnan(value)}


def one_vs_rest(pred: pd.DataFrame, truth: Mapping[str, ClassTruth]) -> OneVsRest:
    """ROC and precision-recall of each evaluated class against the rest, ranking the chips
    by :func:`class_scores` (scikit-learn's curves and AUCs)."""
    _require_columns(pred, ("LabelText", "top_k_indices", "top_k_probs"))
    scores = class_scores(pred, truth)
    true = pred["LabelText"].to_numpy()
    rows, roc, pr = [], {}, {}
    for name in scores.columns:
        positive = true == name
        auc = average_precision = float("nan")
        if 0 < positive.sum() < len(positive):
            auc = float(roc_auc_score(positive, scores[name]))
            average_precision = float(average_precision_score(positive, scores[name]))
            fpr, tpr, _ = roc_curve(positive, scores[name])
            precision, recall, _ = precision_recall_curve(positive, scores[name])
            roc[name], pr[name] = (fpr, tpr), (recall, precision)
        rows.append({"class": name, "positives": int(positive.sum()), "roc_auc": auc, "average_precision": average_precision})
    return OneVsRest(pd.DataFrame(rows, columns=["class", "positives", "roc_auc", "average_precision"]), roc, pr)
