"""The preprocess chain as one library call: OID files -> chips + rejects on disk.

Kept apart from the entry point so that benchmarks and tests drive exactly what
``python -m bigcat_ml.preprocess`` runs.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Callable, Dict, Tuple

import pandas as pd
from pyspark import StorageLevel
from pyspark.sql import SparkSession

from bigcat_ml.chips import layout, writer
from bigcat_ml.config.schema import ReuseCheck
from bigcat_ml.chips.extract import extract_chips, split_chips_and_rejects
from bigcat_ml.oid.classes import load_selected_classes
from bigcat_ml.oid.schemas import BOX_FLAGS
from bigcat_ml.oid.selection import LABEL_TEXT, Selection, box_counts, box_table, label_counts, select_images

log = logging.getLogger(__name__)


class ReconciliationError(RuntimeError):
    """Selected boxes != chips + rejects: a row was lost or duplicated on the way."""


@dataclass
class PreprocessResult:
    """What one preprocess run wrote and counted, plus the small tables the EDA needs."""

    summary: Dict[str, Any]
    selected: pd.DataFrame  # LabelName, DisplayName
    label_counts: pd.DataFrame  # index LabelText; positive, negative, invalid_confidence (images)
    box_counts: pd.DataFrame  # index LabelText; one column per subset
    chips_by_class: pd.DataFrame  # LabelText, chips, rejects and one column per reject reason
    box_flags: pd.DataFrame  # LabelText + the OID box flags, one row per selected box


# What build_chip_dataset tells its ``begin`` callback, in order (progress of a long step).
PHASES = ("select classes", "select boxes and images", "cut and write chips", "count by class")


def build_chip_dataset(
    spark: SparkSession,
    data_cfg: Any,
    classes_cfg: Any,
    preprocess_cfg: Any,
    *,
    reuse_check: ReuseCheck,
    begin: Callable[[str], None] = lambda phase: None,
) -> PreprocessResult:
    """Select ``classes_cfg``'s classes in ``data_cfg``'s files, cut chips from their boxes
    and write the dataset as ``preprocess_cfg`` says, reconcile the counts.

    Every selected box ends as a chip or as a reject with a reason; the sum is checked
    here (and logged per class and reason by the entry point). With ``reuse_check``
    ``full`` every written chip is read again to check the counts and digest
    (``read_back`` of :func:`bigcat_ml.chips.writer.write_chip_dataset`). ``begin`` hears each of
    :data:`PHASES` as it starts (:func:`bigcat_ml.runtime.progress.phases`).
    """
    writer.check_output(preprocess_cfg.output, preprocess_cfg.overwrite)  # before any scan
    begin(PHASES[0])
    selected = load_selected_classes(spark, data_cfg, classes_cfg)
    begin(PHASES[1])
    with select_images(spark, data_cfg, preprocess_cfg, selected) as chosen:
        begin(PHASES[2])
        summary, by_class = _write_and_reconcile(
            spark, data_cfg, preprocess_cfg, selected, chosen, read_back=reuse_check == ReuseCheck.full
        )
        begin(PHASES[3])
        boxes = box_table(chosen.boxes)
        return PreprocessResult(
            summary=summary,
            selected=selected,
            label_counts=label_counts(chosen.labels, preprocess_cfg, selected),
            box_counts=box_counts(boxes, selected, data_cfg.subsets),
            chips_by_class=by_class,
            box_flags=boxes[[LABEL_TEXT, *BOX_FLAGS]],
        )


def _write_and_reconcile(
    spark: SparkSession, data_cfg: Any, preprocess_cfg: Any, selected: pd.DataFrame, chosen: Selection, read_back: bool
) -> Tuple[Dict[str, Any], pd.DataFrame]:
    """Cut the chips, write chips + rejects, check the counts: (summary, outcomes by class).

    The count that must reconcile is every box row of the selected classes in the files
    (``selected_boxes``): the image-level filter's and duplicates' rejects included.
    """
    # One extraction feeds both outputs and the counts: persist it so it runs once.
    extracted = extract_chips(chosen.images, preprocess_cfg).persist(StorageLevel.MEMORY_AND_DISK)
    before_images = chosen.missing.unionByName(chosen.dropped)
    try:
        chips, cut_rejects = split_chips_and_rejects(extracted)
        rejects = cut_rejects.unionByName(before_images)
        counted = writer.tally(chips, rejects)  # the first job: it fills the cache the writes read
        n_boxes = chosen.box_rows
        summary = writer.write_chip_dataset(
            spark,
            chips,
            rejects,
            preprocess_cfg.output,
            overwrite=preprocess_cfg.overwrite,
            lock_wait_s=preprocess_cfg.lock_wait_s,
            summary={
                layout.SUMMARY_SELECTED_BOXES: n_boxes,
                layout.SUMMARY_SELECTED_CLASSES: selected.to_dict(orient="records"),
                layout.SUMMARY_SUBSETS: list(data_cfg.subsets),
                layout.SUMMARY_DATA: data_cfg.name,
            },
            rows_per_file=preprocess_cfg.rows_per_partition,
            verify=lambda written: reconcile(n_boxes, written, preprocess_cfg.output),  # before it is moved into place
            counted=counted,
            read_back=read_back,
        )
        return summary, _outcomes_by_class(counted, selected)
    finally:
        extracted.unpersist()


def reconcile(selected_boxes: int, summary: Dict[str, Any], output: str) -> None:
    """Fail loudly unless selected boxes = chips + rejects in the ``summary`` of the dataset
    going to ``output`` (before it is published there)."""
    chips, rejects = summary[layout.SUMMARY_CHIPS], summary[layout.SUMMARY_REJECTS]
    if selected_boxes != chips + rejects:
        raise ReconciliationError(
            f"{selected_boxes} selected boxes but {chips} chips + {rejects} rejects = {chips + rejects} "
            f"written for {output}; this is a bug, please report it"
        )
    log.info("reconciled: %d selected boxes = %d chips + %d rejects %s", selected_boxes, chips, rejects, summary[layout.SUMMARY_REJECTS_BY_REASON])


def _outcomes_by_class(counted: writer.Tally, selected: pd.DataFrame) -> pd.DataFrame:
    """Chips and rejects per class and reason (small: classes x reasons), from the writer's tally."""
    counts = counted.by_label.copy()
    names = dict(zip(selected["LabelName"], selected["DisplayName"]))
    counts["LabelText"] = counts["LabelName"].map(names)
    table = counts.fillna({"reason": "chip"}).pivot_table(index="LabelText", columns="reason", values="count", fill_value=0, aggfunc="sum")
    table = table.rename(columns={"chip": "chips"})
    if "chips" not in table:
        table["chips"] = 0
    table["rejects"] = table.drop(columns="chips").sum(axis=1)
    return table.reset_index().rename_axis(columns=None)
