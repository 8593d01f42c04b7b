"""Figures for the preprocess, evaluate and compare steps.

Each function is pure: it takes tables (pandas) or images (uint8 RGB arrays, h × w × 3)
and returns a new :class:`matplotlib.figure.Figure`. Figures are built without pyplot,
so nothing is registered in pyplot's global figure list, no GUI backend is involved and
the caller never has to close anything; ``mlflow.log_figure`` or ``fig.savefig`` renders
them (PNG through Agg).
"""
from __future__ import annotations

import math
from typing import Collection, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.image import AxesImage
from matplotlib.ticker import MaxNLocator

from bigcat_ml.scoring.imagenet import ClassTruth
from bigcat_ml.scoring.metrics import OneVsRest, chip_outcomes, expected_calibration_error

RIGHT_COLOR = "tab:green"
WRONG_COLOR = "tab:red"
_ANNOTATE_MAX_CELLS = 225  # write the numbers into confusion cells up to 15 × 15
# Calibration bins of fewer chips are drawn hollow: one chip makes a bin's accuracy 0 or 1.
SPARSE_BIN_CHIPS = 5


def _figure(width: float, height: float) -> Figure:
    return Figure(figsize=(width, height), layout="constrained")


def message_figure(message: str, title: str) -> Figure:
    """A figure that says why there is nothing to draw (no mistakes, no chips)."""
    fig = _figure(4, 2)
    ax = fig.add_subplot()
    ax.set_axis_off()
    ax.set_title(title)
    ax.text(0.5, 0.5, message, ha="center", va="center", fontsize=14, transform=ax.transAxes)
    return fig


def _legend_outside(ax: Axes, **kwargs) -> None:
    """The axes' legend to the right of it, where it cannot cover a bar, line or point;
    the constrained layout makes room for it."""
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0, fontsize="small", **kwargs)


def _grid(n: int, max_cols: int) -> Tuple[int, int]:
    cols = max(1, min(max_cols, n))
    return math.ceil(n / cols), cols


def _grouped_bars(frame: pd.DataFrame, title: str, xlabel: str, ylabel: str, legend_title: str) -> Figure:
    """One group of bars per row of ``frame``, one bar (and legend entry) per column."""
    fig = _figure(min(16.0, max(5.0, 0.3 * frame.size + 2)), 4)
    ax = fig.add_subplot()
    frame.plot.bar(ax=ax, rot=30, width=0.8)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    _legend_outside(ax, title=legend_title)
    return fig


# --- evaluate -----------------------------------------------------------------------


def _row_normalized(confusion: pd.DataFrame) -> np.ndarray:
    counts = confusion.to_numpy(dtype=float)
    totals = counts.sum(axis=1, keepdims=True)
    return np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)


def _draw_confusion(ax: Axes, confusion: pd.DataFrame, normalize: bool, vmax: float) -> AxesImage:
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


def _confusion_scale(confusions: Sequence[pd.DataFrame], normalize: bool) -> Tuple[float, str]:
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
    fig = _figure(side + 1, side)
    ax = fig.add_subplot()
    vmax, unit = _confusion_scale([confusion], normalize)
    image = _draw_confusion(ax, confusion, normalize, vmax)
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
    rows, cols = _grid(len(panels), 3)
    fig = _figure(4 * cols, 3 * rows)
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
    _legend_outside(axes[0], title="top-1 prediction")
    fig.suptitle("Top-1 confidence of right and wrong predictions")
    return fig


def reliability_diagram(calibration: pd.DataFrame, title: str = "Reliability diagram") -> Figure:
    """Accuracy per confidence bin against the diagonal of perfect calibration.

    ``calibration`` is :func:`bigcat_ml.scoring.metrics.calibration_table`. Bars below the
    diagonal mean over-confidence. The lower panel shows how many chips each bin holds,
    and bins of fewer than :data:`SPARSE_BIN_CHIPS` chips are drawn hollow (hatched), so
    that a bar of 0 or 1 over one chip is not over-read. Empty bins draw no bar.
    """
    fig = _figure(6.5, 6)
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
    _legend_outside(top, title=f"hatched: < {SPARSE_BIN_CHIPS} chips")
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
    fig = _figure(11, 4.5)
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
        _legend_outside(ax, title=legend_title)
    fig.suptitle(title)
    return fig


def _image_grid(
    fig: Figure, rows: int, cols: int, cells: Sequence[Optional[Tuple[np.ndarray, str]]]
) -> List[Axes]:
    """Draw images row-major into a rows × cols grid; ``None`` or no cell leaves it blank."""
    axes = list(fig.subplots(rows, cols, squeeze=False).ravel())
    padded = [*cells, *[None] * (len(axes) - len(cells))]
    for ax, cell in zip(axes, padded):
        ax.set_xticks([])
        ax.set_yticks([])
        if cell is None:
            ax.set_frame_on(False)
            continue
        image, caption = cell
        ax.imshow(image)
        ax.set_title(caption, fontsize=8)
    return axes


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
    rows, cols = _grid(len(images), 4)
    fig = _figure(3 * cols, 3 * rows + 0.5)
    _image_grid(fig, rows, cols, list(zip(images, captions)))
    fig.suptitle(title)
    return fig


# --- preprocess (EDA) ---------------------------------------------------------------


def positives_negatives_figure(counts: pd.DataFrame) -> Figure:
    """Per class (``LabelText``) the images with a ``positive`` (verified present) and a
    ``negative`` (verified absent) image-level label: how much each class has to learn from."""
    frame = counts.set_index("LabelText")[["positive", "negative"]]
    return _grouped_bars(frame, "Image-level labels per class", "class", "images", "label")


def boxes_per_class_subset_figure(counts: pd.DataFrame) -> Figure:
    """Boxes per class and subset from a wide table: index = ``LabelText``, one column per
    ``Subset`` (``pd.crosstab(boxes.LabelText, boxes.Subset)``)."""
    return _grouped_bars(counts, "Boxes per class and subset", "class", "boxes", "subset")


def chip_size_figure(chips: pd.DataFrame, size_buckets: Sequence[int] = ()) -> Figure:
    """Chip width against height, and a histogram of the shorter side, in pixels.

    The shorter side is what a classifier's resize loses detail on; the dashed lines are
    the ``evaluate.size_buckets`` edges the accuracy slices use.
    """
    if chips.empty:
        return message_figure("no chips", "Chip sizes")
    fig = _figure(10, 4)
    scatter, hist = fig.subplots(1, 2)
    scatter.scatter(chips["chip_width"], chips["chip_height"], s=8, alpha=0.5)
    scatter.set_xlabel("chip width (pixels)")
    scatter.set_ylabel("chip height (pixels)")
    scatter.set_title(f"Chip sizes ({len(chips)} chips)")
    shorter = chips[["chip_width", "chip_height"]].min(axis=1)
    hist.hist(shorter, bins="auto", color="tab:blue")
    for edge in size_buckets:
        hist.axvline(edge, linestyle="--", color="gray")
    hist.set_xlabel("shorter side (pixels); dashed: size-bucket edges")
    hist.set_ylabel("chips")
    hist.yaxis.set_major_locator(MaxNLocator(integer=True))
    hist.set_title("Shorter side of the chips")
    return fig


def attribute_rates_figure(rates: pd.DataFrame) -> Figure:
    """Per class the fraction of boxes with each OID flag set, from
    :func:`bigcat_ml.scoring.metrics.attribute_rates` (unknown flags are not in the denominator;
    a flag with no known value in a class, NaN, draws no bar)."""
    fig = _grouped_bars(
        rates, "Box attributes per class (unknown excluded)", "class",
        "fraction of boxes with the flag", "attribute",
    )
    fig.axes[0].set_ylim(0, 1)
    return fig


def contact_sheet(images_by_class: Mapping[str, Sequence[np.ndarray]], per_class: int) -> Figure:
    """A row of up to ``per_class`` chips per class, to eyeball what the labels look like."""
    if not images_by_class or per_class < 1:
        return message_figure("no chips", "Chips per class")
    rows, cols = len(images_by_class), per_class
    fig = _figure(1.6 * cols + 1, 1.6 * rows + 0.5)
    cells: List[Optional[Tuple[np.ndarray, str]]] = []
    for images in images_by_class.values():
        shown = [(image, "") for image in list(images)[:per_class]]
        cells += shown + [None] * (per_class - len(shown))
    axes = _image_grid(fig, rows, cols, cells)
    for row, name in enumerate(images_by_class):
        axes[row * cols].set_ylabel(name, rotation=0, ha="right", va="center")
    fig.suptitle("Chips per class")
    return fig


# --- compare ------------------------------------------------------------------------


def _require_runs(runs: Collection[object]) -> None:
    if len(runs) == 0:
        raise ValueError("no runs to compare: the table or mapping of runs is empty")


def metric_bars(metrics: pd.DataFrame, title: str = "Metrics by run") -> Figure:
    """One group of bars per metric, one bar per run; ``metrics`` has a row per run (the
    index names it) and a column per metric. Pass metrics on one scale (fractions)."""
    _require_runs(metrics.index)
    return _grouped_bars(metrics.T, title, "metric", "value (fraction)", "run")


def per_class_f1_grouped(f1: pd.DataFrame, title: str = "F1 per class by run") -> Figure:
    """F1 per class (rows) for each run (columns), grouped by class."""
    _require_runs(f1.columns)
    fig = _grouped_bars(f1, title, "class", "F1", "run")
    fig.axes[0].set_ylim(0, 1)
    return fig


def reliability_overlay(calibrations: Mapping[str, pd.DataFrame], title: str = "Reliability by run") -> Figure:
    """Accuracy against mean confidence per bin, one line per run, ECE in the legend.

    A marker's area grows with its bin's chips and bins of fewer than
    :data:`SPARSE_BIN_CHIPS` chips are hollow, so a one-chip bin at 0 or 1 does not dominate.
    """
    _require_runs(calibrations)
    fig = _figure(7.5, 5)
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1], "--", color="gray", label="perfect calibration")
    most = max(max(int(table["count"].max()), 1) for table in calibrations.values())
    for run, table in calibrations.items():
        filled = table[table["count"] > 0]
        (line,) = ax.plot(filled["confidence"], filled["accuracy"], "-",
                          label=f"{run} (ECE {expected_calibration_error(table):.3f})")
        sparse = filled["count"] < SPARSE_BIN_CHIPS
        ax.scatter(filled["confidence"], filled["accuracy"], s=12 + 100 * filled["count"] / most,
                   facecolors=np.where(sparse, "none", line.get_color()), edgecolors=line.get_color(), zorder=3)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("mean top-1 confidence (probability)")
    ax.set_ylabel("accuracy (fraction correct)")
    ax.set_title(title)
    _legend_outside(ax, title=f"marker area: chips; hollow: < {SPARSE_BIN_CHIPS}")
    return fig


def confusions_side_by_side(
    confusions: Mapping[str, pd.DataFrame], normalize: bool = True, title: str = "Confusion matrices by run"
) -> Figure:
    """One confusion heat map per run on a shared colour scale, for runs on one dataset."""
    _require_runs(confusions)
    first = next(iter(confusions.values()))
    side = max(3.5, 0.5 * first.shape[1] + 2.5)
    fig = _figure(side * len(confusions) + 1, side)
    axes = fig.subplots(1, len(confusions), squeeze=False).ravel()
    vmax, unit = _confusion_scale(list(confusions.values()), normalize)
    for ax, (run, confusion) in zip(axes, confusions.items()):
        image = _draw_confusion(ax, confusion, normalize, vmax)
        ax.set_title(run)
    fig.colorbar(image, ax=list(axes), label=unit)
    fig.suptitle(f"{title} (row-normalised)" if normalize else title)
    return fig
