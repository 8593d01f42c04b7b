"""The sample's ground truth: what a correct reader of its files must find.

``ground_truth.json`` counts images, boxes and image-level labels per subset and class,
and lists the faulty images, so tests know the chips and rejects
(:mod:`bigcat_ml.oid.rejects` reasons) a correct pipeline must produce.
"""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any, Dict, Optional, Sequence

from bigcat_ml.oid.rejects import DECODE_ERROR, MISSING_IMAGE
from bigcat_ml.oid.schemas import SUBSETS
from bigcat_ml.synthetic.catalogue import BOX_CLASSES, class_descriptions
from bigcat_ml.synthetic.plan import PlannedImage
from bigcat_ml.tracking import names

GROUND_TRUTH_FILE = names.GROUND_TRUTH  # sample_data logs it under the same name


def summarize(images: Sequence[PlannedImage], params: Dict[str, Any], fingerprint: str) -> Dict[str, Any]:
    """The ground truth: what a reader of the files must find, per subset and MID."""
    mids = class_descriptions()
    boxes: Dict[str, Counter] = {s: Counter() for s in SUBSETS}
    labels = {s: {"positive": Counter(), "negative": Counter()} for s in SUBSETS}
    faulty = {reason: {s: Counter() for s in SUBSETS} for reason in (DECODE_ERROR, MISSING_IMAGE)}
    for image in images:
        for box in image.boxes:
            boxes[image.subset][mids[box.label]] += 1
            if image.fault:
                faulty[image.fault][image.subset][mids[box.label]] += 1
        for _, name, confidence in image.labels:
            labels[image.subset]["positive" if confidence else "negative"][mids[name]] += 1
    good = [im for im in images if im.fault is None]
    return {
        "fingerprint": fingerprint,
        "config": params,
        "class_names": {mids[name]: name for name in BOX_CLASSES},
        "images": {s: sum(im.subset == s for im in images) for s in SUBSETS},
        "image_files": {
            s: sum(im.subset == s and im.fault != MISSING_IMAGE for im in images) for s in SUBSETS
        },
        "boxes": {s: dict(c) for s, c in boxes.items()},
        "image_labels": {s: {k: dict(c) for k, c in v.items()} for s, v in labels.items()},
        "corrupt_images": sorted(im.image_id for im in images if im.fault == DECODE_ERROR),
        "missing_images": sorted(im.image_id for im in images if im.fault == MISSING_IMAGE),
        "faulty_boxes": {r: {s: dict(c) for s, c in v.items()} for r, v in faulty.items()},
        "exif_orientation": {im.image_id: im.orientation for im in good if im.orientation != 1},
        "grayscale": sorted(im.image_id for im in good if im.mode == "L"),
        "cmyk": sorted(im.image_id for im in good if im.mode == "CMYK"),
    }


def expected_chip_counts(summary: Dict[str, Any]) -> Dict[str, Dict[str, int]]:
    """Boxes per subset and MID that sit on decodable images: the chips a correct
    preprocess yields when no other reject (e.g. ``too_small``) applies."""
    out = {}
    for subset, counts in summary["boxes"].items():
        lost = Counter()
        for by_subset in summary["faulty_boxes"].values():
            lost.update(by_subset[subset])
        out[subset] = {mid: n - lost[mid] for mid, n in counts.items() if n - lost[mid]}
    return out


def read_ground_truth(root: Path) -> Optional[Dict[str, Any]]:
    """The ``ground_truth.json`` of a complete sample in ``root``, or None."""
    path = Path(root) / GROUND_TRUTH_FILE
    return json.loads(path.read_text()) if path.is_file() else None


# --------------------------------------------------------------------------- driver
