"""Figures of the compare step: runs on one dataset side by side, built from the evaluate step's pieces."""
from __future__ import annotations

from typing import Collection, Mapping

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from bigcat_ml.reporting.figures.canvas import grouped_bars, legend_outside, new_figure
from bigcat_ml.reporting.figures.evaluate import SPARSE_BIN_CHIPS, confusion_scale, draw_confusion
from bigcat_ml.scoring.metrics import expected_calibration_error


def _require_runs(runs: Collection[object]) -> None:
    if len(runs) == 0:
        raise ValueError("no runs to compare: the table or mapping of runs is empty")


def metric_bars(metrics: pd.DataFrame, title: str = "Metrics by run") -> Figure:
    """One group of bars per metric, one bar per run; ``metrics`` has a row per run (the
    index names it) and a column per metric. Pass metrics on one scale (fractions)."""
    _require_runs(metrics.index)
    return grouped_bars(metrics.T, title, "metric", "value (fraction)", "run")


def per_class_f1_grouped(f1: pd.DataFrame, title: str = "F1 per class by run") -> Figure:
    """F1 per class (rows) for each run (columns), grouped by class."""
    _require_runs(f1.columns)
    fig = grouped_bars(f1, title, "class", "F1", "run")
    fig.axes[0].set_ylim(0, 1)
    return fig


def reliability_overlay(calibrations: Mapping[str, pd.DataFrame], title: str = "Reliability by run") -> Figure:
    """Accuracy against mean confidence per bin, one line per run, ECE in the legend.

    A marker's area grows with its bin's chips and bins of fewer than
    :data:`SPARSE_BIN_CHIPS` chips are hollow, so a one-chip bin at 0 or 1 does not dominate.
    """
    _require_runs(calibrations)
    fig = new_figure(7.5, 5)
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
    legend_outside(ax, title=f"marker area: chips; hollow: < {SPARSE_BIN_CHIPS}")
    return fig


def confusions_side_by_side(
    confusions: Mapping[str, pd.DataFrame], normalize: bool = True, title: str = "Confusion matrices by run"
) -> Figure:
    """One confusion heat map per run on a shared colour scale, for runs on one dataset."""
    _require_runs(confusions)
    first = next(iter(confusions.values()))
    side = max(3.5, 0.5 * first.shape[1] + 2.5)
    fig = new_figure(side * len(confusions) + 1, side)
    axes = fig.subplots(1, len(confusions), squeeze=False).ravel()
    vmax, unit = confusion_scale(list(confusions.values()), normalize)
    for ax, (run, confusion) in zip(axes, confusions.items()):
        image = draw_confusion(ax, confusion, normalize, vmax)
        ax.set_title(run)
    fig.colorbar(image, ax=list(axes), label=unit)
    fig.suptitle(f"{title} (row-normalised)" if normalize else title)
    return fig
