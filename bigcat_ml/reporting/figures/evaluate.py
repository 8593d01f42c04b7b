"""Figures of the evaluate step: confusion matrix, confidence histograms, reliability
diagram, ROC and precision-recall curves, the gallery of mistakes."""
from __future__ import annotations

from typing import Mapping, Sequence, Tuple

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.image import AxesImage
from matplotlib.ticker import MaxNLocator

from bigcat_ml.reporting.figures.canvas import grid, image_grid, legend_outside, message_figure, new_figure
from bigcat_ml.scoring.imagenet import ClassTruth
from bigcat_ml.scoring.metrics import OneVsRest, chip_outcomes, expected_calibration_error

RIGHT_COLOR = "tab:green"
WRONG_COLOR = "tab:red"
_ANNOTATE_MAX_CELLS = 225  # write the numbers into confusion cells up to 15 × 15
# Calibration bins of fewer chips are drawn hollow: one chip makes a bin's accuracy 0 or 1.
SPARSE_BIN_CHIPS = 5


def _row_normalized(confusion: pd.DataFrame) -> np.ndarray:
    counts = confusion.to_numpy(dtype=float)
    totals = counts.sum(axis=1, keepdims=True)
    return np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)


def draw_confusion(ax: Axes, confusion: pd.DataFrame, normalize: bool, vmax: float) -> AxesImage:
    values = _row_normalized(confusion) if normalize else confusion.to_numpy(dtype=float)
    image = ax.imshow(values, cmap="Blues", vmin=0.0, vmax=vmax, aspect="auto")
    ax.set_xticks(range(confusion.shape[1]), [str(c) for c in confusion.columns], rotation=45, ha="right")
    ax.set_yticks(range(confusion.shape[0]), [str(i) for i in confusion.index])
    ax.set_xlabel("predicted class (top-1)")
    ax.set_ylabel("true class")
    if confusion.size <= _ANNOTATE_MAX_CELLS:
        counts = confusion.to_numpy()
        for (row, col), value in np.ndenumerate(values):
            text = f"{value:.2f}\n({counts[row, col]})" if normalize else f"{counts[row, col]}"
            color = "white" if value > 0.6 * vmax else "black"
            ax.text(col, row, text, ha="center", va="center", fontsize=8, color=color)
    return image


def confusion_scale(confusions: Sequence[pd.DataFrame], normalize: bool) -> Tuple[float, str]:
    if normalize:
        return 1.0, "fraction of the true class's chips"
    return float(max(max(c.to_numpy().max() for c in confusions), 1)), "chips"


def confusion_matrix_figure(confusion: pd.DataFrame, normalize: bool = True, title: str = "Confusion matrix") -> Figure:
    """The confusion table of :func:`bigcat_ml.scoring.metrics.evaluate_predictions` as a heat map.

    ``normalize`` divides each row by its chips, so a cell reads "fraction of this true
    class predicted as that column" and classes of different sizes compare; the cell text
    keeps the raw count in brackets.
    """
    side = max(4.0, 0.6 * confusion.shape[1] + 2.5)
    fig = new_figure(side + 1, side)
    ax = fig.add_subplot()
    vmax, unit = confusion_scale([confusion], normalize)
    image = draw_confusion(ax, confusion, normalize, vmax)
    fig.colorbar(image, ax=ax, label=unit)
    ax.set_title(f"{title} (row-normalised)" if normalize else title)
    return fig


def confidence_histograms(pred: pd.DataFrame, truth: Mapping[str, ClassTruth], bins: int = 10) -> Figure:
    """Top-1 confidence of right vs wrong predictions: all chips, then one panel per class.

    A well-separated model has its wrong chips at low confidence; wrong chips piled up
    near 1 are the confident mistakes worth looking at. Classes are ``LabelText``.
    """
    outcomes = chip_outcomes(pred, truth)
    panels = [("all classes", outcomes)]
    panels += [(str(name), outcomes.loc[group.index]) for name, group in pred.groupby("LabelText", sort=True)]
    rows, cols = grid(len(panels), 3)
    fig = new_figure(4 * cols, 3 * rows)
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    edges = np.linspace(0.0, 1.0, bins + 1)
    for ax, (name, chips) in zip(axes, panels):
        right = chips.loc[chips["top1_correct"], "confidence"]
        wrong = chips.loc[~chips["top1_correct"], "confidence"]
        ax.hist([right, wrong], bins=edges, color=[RIGHT_COLOR, WRONG_COLOR], label=["right", "wrong"])
        ax.set_title(f"{name} ({len(chips)} chips)")
        ax.set_xlabel("top-1 confidence (probability)")
        ax.set_ylabel("chips")
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlim(0, 1)
    for ax in axes[len(panels):]:
        ax.set_axis_off()
    legend_outside(axes[0], title="top-1 prediction")
    fig.suptitle("Top-1 confidence of right and wrong predictions")
    return fig


def reliability_diagram(calibration: pd.DataFrame, title: str = "Reliability diagram") -> Figure:
    """Accuracy per confidence bin against the diagonal of perfect calibration.

    ``calibration`` is :func:`bigcat_ml.scoring.metrics.calibration_table`. Bars below the
    diagonal mean over-confidence. The lower panel shows how many chips each bin holds,
    and bins of fewer than :data:`SPARSE_BIN_CHIPS` chips are drawn hollow (hatched), so
    that a bar of 0 or 1 over one chip is not over-read. Empty bins draw no bar.
    """
    fig = new_figure(6.5, 6)
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[3, 1])
    filled = calibration[calibration["count"] > 0]
    widths = calibration["upper"] - calibration["lower"]
    bars = top.bar(filled["lower"], filled["accuracy"], width=widths[filled.index], align="edge",
                   edgecolor="black", label="accuracy")
    _hollow_sparse_bins(bars, filled["count"])
    top.plot(filled["confidence"], filled["accuracy"], "o", color="tab:orange", label="mean confidence")
    top.plot([0, 1], [0, 1], "--", color="gray", label="perfect calibration")
    top.set_xlim(0, 1)
    top.set_ylim(0, 1)
    top.set_ylabel("accuracy (fraction correct)")
    top.set_title(f"{title} (ECE {expected_calibration_error(calibration):.3f})")
    legend_outside(top, title=f"hatched: < {SPARSE_BIN_CHIPS} chips")
    bottom.bar(calibration["lower"], calibration["count"], width=widths, align="edge", color="gray")
    bottom.set_xlabel("top-1 confidence (probability)")
    bottom.set_ylabel("chips")
    bottom.yaxis.set_major_locator(MaxNLocator(integer=True))
    return fig


def _hollow_sparse_bins(bars: Sequence, counts: pd.Series) -> None:
    for bar, count in zip(bars, counts):
        if count < SPARSE_BIN_CHIPS:
            bar.set_facecolor("none")
            bar.set_hatch("//")


def roc_pr_curves(ranking: OneVsRest, title: str = "One-vs-rest ROC and precision-recall per class") -> Figure:
    """Per class, the ROC curve (AUC in the legend) and the precision-recall curve (average
    precision), from :func:`bigcat_ml.scoring.metrics.one_vs_rest`; a class whose chips
    are all or none of the scored ones has no curve."""
    if not ranking.roc:
        return message_figure("no class to rank:\nevery chip is of one class", title)
    fig = new_figure(11, 4.5)
    roc_ax, pr_ax = fig.subplots(1, 2)
    auc = ranking.auc.set_index("class")
    for name, (fpr, tpr) in ranking.roc.items():
        roc_ax.plot(fpr, tpr, label=f"{name} (AUC {auc.loc[name, 'roc_auc']:.3f}, {auc.loc[name, 'positives']} chips)")
    roc_ax.plot([0, 1], [0, 1], "--", color="gray", label="chance")
    roc_ax.set_xlabel("false positive rate")
    roc_ax.set_ylabel("true positive rate")
    for name, (recall, precision) in ranking.pr.items():
        pr_ax.plot(recall, precision, label=f"{name} (AP {auc.loc[name, 'average_precision']:.3f})")
    pr_ax.set_xlabel("recall")
    pr_ax.set_ylabel("precision")
    for ax, legend_title in ((roc_ax, "ROC"), (pr_ax, "precision-recall")):
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.02)
        legend_outside(ax, title=legend_title)
    fig.suptitle(title)
    return fig


def mistakes_gallery(
    images: Sequence[np.ndarray], captions: Sequence[str], title: str = "Most confident mistakes"
) -> Figure:
    """Chips with a caption each (e.g. "Lynx -> tabby 0.93"); zero chips gives a figure
    that says "no mistakes", so a perfect run still logs a gallery."""
    if len(images) != len(captions):
        raise ValueError(
            f"mistakes_gallery needs one caption per image; got {len(images)} images, {len(captions)} captions"
        )
    if not images:
        return message_figure("no mistakes", title)
    rows, cols = grid(len(images), 4)
    fig = new_figure(3 * cols, 3 * rows + 0.5)
    image_grid(fig, rows, cols, list(zip(images, captions)))
    fig.suptitle(title)
    return fig
