"""The compare table as the terminal shows it: within :data:`WIDTH` columns.

The comparison's full table, with every column (kind, training, per-class F1, digests,
run ids), goes to the compare run's artifacts (CSV, HTML, Markdown); the terminal gets
the run and its headline metrics on the comparison's basis (one Subset's chips). The run's label names
the model and its weights (``[fine-tuned:models:/…]``, ``[imagenet]``), hence its kind; a
label too long for the width keeps its start and its end.
"""
from __future__ import annotations

import math

import pandas as pd

from bigcat_ml.tracking import names
from bigcat_ml.reporting.comparison import Basis

WIDTH = 120
# Printed header of each of names.HEADLINE_METRICS (which gives the order).
_HEADERS = {
    "top1_accuracy": "top-1",
    "top5_accuracy": "top-5",
    "family_accuracy": "family",
    "f1_macro": "F1",  # macro
    "ece": "ECE",
}
_THROUGHPUT_HEADER = "chips/s"
_ELLIPSIS = "…"
_MIN_LABEL = 16


def terminal_table(short: pd.DataFrame, basis: Basis, width: int = WIDTH) -> str:
    """``short`` (:func:`bigcat_ml.reporting.comparison.short_table`) as a Markdown table
    of at most ``width`` columns, under one line saying which chips the metrics are on."""
    shown = pd.DataFrame({"run": short["run"].astype(str)})
    for metric in names.HEADLINE_METRICS:
        shown[_HEADERS[metric]] = [_number(v, 3) for v in short[basis.metric(metric)]]
    shown[_THROUGHPUT_HEADER] = [_number(v, 1) for v in short[names.THROUGHPUT_METRIC]]
    caption = f"{basis.phrase()}, F1 macro-averaged (every column: comparison.csv / .html in the artifacts)"
    table = _markdown(shown)
    excess = max(len(line) for line in table.splitlines()) - width
    if excess > 0:
        longest = int(shown["run"].str.len().max())
        shown["run"] = [_shortened(label, max(_MIN_LABEL, longest - excess)) for label in shown["run"]]
        table = _markdown(shown)
    return f"{caption}\n{table}"


def _markdown(shown: pd.DataFrame) -> str:
    # The cells are formatted already: tabulate must not re-read them as numbers.
    return shown.to_markdown(index=False, colalign=("left", *["right"] * (len(shown.columns) - 1)), disable_numparse=True)


def _number(value: float, decimals: int) -> str:
    return "" if value is None or math.isnan(value) else f"{value:.{decimals}f}"


def _shortened(label: str, length: int) -> str:
    """``label`` in at most ``length`` characters: its start, an ellipsis and its end."""
    if len(label) <= length:
        return label
    head = (length - 1) // 2
    return label[:head] + _ELLIPSIS + label[len(label) - (length - 1 - head):]
