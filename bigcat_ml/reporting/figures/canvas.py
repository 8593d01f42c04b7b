"""What every step's figures are drawn with: a new figure, a message in place of a plot,
legends outside the axes, grouped bars and image grids."""
from __future__ import annotations

import math
from typing import List, Optional, Sequence, Tuple

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure


def new_figure(width: float, height: float) -> Figure:
    return Figure(figsize=(width, height), layout="constrained")


def message_figure(message: str, title: str) -> Figure:
    """A figure that says why there is nothing to draw (no mistakes, no chips)."""
    fig = new_figure(4, 2)
    ax = fig.add_subplot()
    ax.set_axis_off()
    ax.set_title(title)
    ax.text(0.5, 0.5, message, ha="center", va="center", fontsize=14, transform=ax.transAxes)
    return fig


def legend_outside(ax: Axes, **kwargs) -> None:
    """The axes' legend to the right of it, where it cannot cover a bar, line or point;
    the constrained layout makes room for it."""
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0, fontsize="small", **kwargs)


def grid(n: int, max_cols: int) -> Tuple[int, int]:
    cols = max(1, min(max_cols, n))
    return math.ceil(n / cols), cols


def grouped_bars(frame: pd.DataFrame, title: str, xlabel: str, ylabel: str, legend_title: str) -> Figure:
    """One group of bars per row of ``frame``, one bar (and legend entry) per column."""
    fig = new_figure(min(16.0, max(5.0, 0.3 * frame.size + 2)), 4)
    ax = fig.add_subplot()
    frame.plot.bar(ax=ax, rot=30, width=0.8)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    legend_outside(ax, title=legend_title)
    return fig


def image_grid(
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
