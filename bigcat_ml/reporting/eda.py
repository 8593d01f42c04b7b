"""Exploratory figures of a preprocess run: what was selected, cut and rejected."""
from __future__ import annotations

from typing import Dict, List

import numpy as np
from matplotlib.figure import Figure
from pyspark.sql import SparkSession, Window
from pyspark.sql import functions as F

from bigcat_ml.chips import readers, schema

from bigcat_ml.scoring import metrics

from bigcat_ml.reporting.figures import preprocess as figures
from bigcat_ml.chips.build import PreprocessResult

CONTACT_SHEET_PER_CLASS = 8


def sample_chips(spark: SparkSession, output: str, per_class: int) -> Dict[str, List[np.ndarray]]:
    """Up to ``per_class`` decoded chips per class, the same ones on every run."""
    order = Window.partitionBy("LabelText").orderBy("ImageID", "XMin", "YMin")
    rows = (
        readers.read_chips_spark(spark, output)
        .withColumn("_n", F.row_number().over(order))
        .filter(F.col("_n") <= per_class)
        .select("LabelText", "chip")
        .orderBy("LabelText", "_n")
        .collect()
    )
    chips: Dict[str, List[np.ndarray]] = {}
    for row in rows:
        chips.setdefault(row.LabelText, []).append(schema.decode_chip(row.chip))
    return chips


def preprocess_figures(spark: SparkSession, result: PreprocessResult, output: str, size_buckets: List[int]) -> Dict[str, Figure]:
    """The EDA figures, by artifact file name."""
    sizes = readers.read_chips_spark(spark, output).select("LabelText", "chip_width", "chip_height").toPandas()
    return {
        "positives_negatives.png": figures.positives_negatives_figure(result.label_counts.reset_index()),
        "boxes_per_class_subset.png": figures.boxes_per_class_subset_figure(result.box_counts),
        "chip_sizes.png": figures.chip_size_figure(sizes, size_buckets),
        "attribute_rates.png": figures.attribute_rates_figure(metrics.attribute_rates(result.box_flags)),
        "contact_sheet.png": figures.contact_sheet(sample_chips(spark, output, CONTACT_SHEET_PER_CLASS), CONTACT_SHEET_PER_CLASS),
    }
