"""A chip dataset's ``summary.json`` as one typed record: the steps that read chips
(``evaluate``, ``train``, the missing-dataset hint) take its fields by name from here
instead of each spelling the file's keys.

What is in the file: the counts the writer measured (chips, rejects by reason, the
content digest) and, for a dataset preprocess wrote, what it was built from (the data
group, its subsets, the selected classes in label order, the box rows selected).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Tuple

from bigcat_ml.chips import layout, manifest
from bigcat_ml.oid.schemas import DISPLAY_NAME, LABEL_NAME


@dataclass(frozen=True)
class ChipSummary:
    """``summary.json`` of the chip dataset at ``output``, once it is the one its
    ``manifest.json`` records (:func:`bigcat_ml.chips.manifest.read_summary`)."""

    chips: int
    rejects: int
    rejects_by_reason: Dict[str, int]
    content_digest: str
    manifest_sha256: str
    # (MID, display name) of the selected classes; their order is the label order.
    selected_classes: Tuple[Tuple[str, str], ...] = ()
    subsets: Tuple[str, ...] = ()
    data: Optional[str] = None  # the data group's name
    selected_boxes: Optional[int] = None  # = chips + rejects

    @classmethod
    def from_dict(cls, fields: Mapping[str, Any]) -> "ChipSummary":
        """The record of a summary as the file and ``manifest_sha256`` hold it."""
        return cls(
            chips=int(fields[layout.SUMMARY_CHIPS]),
            rejects=int(fields[layout.SUMMARY_REJECTS]),
            rejects_by_reason=dict(fields[layout.SUMMARY_REJECTS_BY_REASON]),
            content_digest=fields[layout.SUMMARY_CONTENT_DIGEST],
            manifest_sha256=fields[layout.SUMMARY_MANIFEST_SHA256],
            selected_classes=tuple(
                (entry[LABEL_NAME], entry[DISPLAY_NAME]) for entry in fields.get(layout.SUMMARY_SELECTED_CLASSES, ())
            ),
            subsets=tuple(fields.get(layout.SUMMARY_SUBSETS, ())),
            data=fields.get(layout.SUMMARY_DATA),
            selected_boxes=fields.get(layout.SUMMARY_SELECTED_BOXES),
        )

    @classmethod
    def read(cls, output: str) -> "ChipSummary":
        """The checked summary of the chip dataset at ``output`` (local path or URI)."""
        return cls.from_dict(manifest.read_summary(output))

    @property
    def class_names(self) -> List[str]:
        """Display names of the selected classes, in label order."""
        return [name for _, name in self.selected_classes]
