"""Figures of the preprocess step (exploratory): labels, boxes, chip sizes, box attributes, a contact sheet."""
from __future__ import annotations

from typing import List, Mapping, Optional, Sequence, Tuple

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from bigcat_ml.reporting.figures.canvas import grouped_bars, image_grid, message_figure, new_figure


def positives_negatives_figure(counts: pd.DataFrame) -> Figure:
    """Per class (``LabelText``) the images with a ``positive`` (verified present) and a
    ``negative`` (verified absent) image-level label: how much each class has to learn from."""
    frame = counts.set_index("LabelText")[["positive", "negative"]]
    return grouped_bars(frame, "Image-level labels per class", "class", "images", "label")


def boxes_per_class_subset_figure(counts: pd.DataFrame) -> Figure:
    """Boxes per class and subset from a wide table: index = ``LabelText``, one column per
    ``Subset`` (``pd.crosstab(boxes.LabelText, boxes.Subset)``)."""
    return grouped_bars(counts, "Boxes per class and subset", "class", "boxes", "subset")


def chip_size_figure(chips: pd.DataFrame, size_buckets: Sequence[int] = ()) -> Figure:
    """Chip width against height, and a histogram of the shorter side, in pixels.

    The shorter side is what a classifier's resize loses detail on; the dashed lines are
    the ``evaluate.size_buckets`` edges the accuracy slices use.
    """
    if chips.empty:
        return message_figure("no chips", "Chip sizes")
    fig = new_figure(10, 4)
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
    fig = grouped_bars(
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
    fig = new_figure(1.6 * cols + 1, 1.6 * rows + 0.5)
    cells: List[Optional[Tuple[np.ndarray, str]]] = []
    for images in images_by_class.values():
        shown = [(image, "") for image in list(images)[:per_class]]
        cells += shown + [None] * (per_class - len(shown))
    axes = image_grid(fig, rows, cols, cells)
    for row, name in enumerate(images_by_class):
        axes[row * cols].set_ylabel(name, rotation=0, ha="right", va="center")
    fig.suptitle("Chips per class")
    return fig
