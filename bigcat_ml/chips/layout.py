"""What a chip dataset folder holds, by name: the one list that the writer, its manifest
and the readers' check (:mod:`bigcat_ml.chips.trusted`) agree on.

``<output>/summary.json`` and ``manifest.json``, the Petastorm dataset ``chips/`` (Spark's
part files, ``_SUCCESS`` and petastorm's ``_common_metadata``) and the Parquet table
``rejects/`` (part files and ``_SUCCESS``); on a local disk Hadoop puts a ``.<name>.crc``
checksum beside each file Spark writes. Nothing else, and no deeper folder.
"""
from __future__ import annotations

import re

from bigcat_ml.storage import fs
from bigcat_ml.tracking.names import CHIP_SUMMARY

CHIPS_DIR = "chips"
REJECTS_DIR = "rejects"
SUMMARY_FILE = CHIP_SUMMARY  # preprocess logs it under the same name
# Every other file of the dataset (path, bytes, modification time, sha256), written last:
# a finished run's output is reused only while the files still match it.
MANIFEST_FILE = "manifest.json"
COMMON_METADATA_FILE = "_common_metadata"
SUCCESS_FILE = "_SUCCESS"

# The keys of ``summary.json``: the writer's counts and digest, what preprocess adds about
# the selection, and the manifest's hash that a reader appends (the record the steps read
# is :class:`bigcat_ml.chips.summary.ChipSummary`).
SUMMARY_CHIPS = "chips"
SUMMARY_REJECTS = "rejects"
SUMMARY_REJECTS_BY_REASON = "rejects_by_reason"
SUMMARY_CONTENT_DIGEST = "content_digest"
SUMMARY_MANIFEST_SHA256 = "manifest_sha256"
SUMMARY_SELECTED_BOXES = "selected_boxes"
SUMMARY_SELECTED_CLASSES = "selected_classes"
SUMMARY_SUBSETS = "subsets"
SUMMARY_DATA = "data"

# Spark's ``part-<task>-<job uuid>-c<file>[.<codec>].parquet``.
_PART_FILE = re.compile(r"part-\d{5}-[0-9a-f]{8}(?:-[0-9a-f]{4}){3}-[0-9a-f]{12}-c\d{3}(?:\.[a-z0-9]+)?\.parquet")
_TABLE_FILES = {CHIPS_DIR: {SUCCESS_FILE, COMMON_METADATA_FILE}, REJECTS_DIR: {SUCCESS_FILE}}


def is_written_file(relative: str) -> bool:
    """Whether the writer ever writes a file at ``relative`` (a ``/`` path below the dataset folder)."""
    folder, _, name = relative.rpartition("/")
    if not folder:
        return name in (SUMMARY_FILE, MANIFEST_FILE)
    if folder not in _TABLE_FILES:
        return False
    if name.startswith(".") and name.endswith(".crc"):
        name = name[1:-4]
    return name in _TABLE_FILES[folder] or _PART_FILE.fullmatch(name) is not None


def dataset_url(output: str) -> str:
    """URL of the Petastorm chip dataset (``<output>/chips``) for petastorm and Spark."""
    return fs.to_url(fs.join(output, CHIPS_DIR))
