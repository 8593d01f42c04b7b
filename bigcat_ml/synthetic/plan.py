"""The sample's plan: every image, box, image-level label and fault, before any pixel.

Planning is separate from rendering so that the ground truth follows from the plan alone,
and the same seed gives the same plan whatever the pixels cost.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
from omegaconf import DictConfig, OmegaConf
from PIL import Image

from bigcat_ml.oid.rejects import DECODE_ERROR, MISSING_IMAGE
from bigcat_ml.config.schema import SampleConfig
from bigcat_ml.oid.schemas import SUBSETS, UNKNOWN_FLAG
from bigcat_ml.synthetic.catalogue import BIG_CATS, BOX_CLASSES

MIN_BOX_SIDE = 24  # pixels, in the displayed image
MIN_IMAGE_SIDE = 32  # pixels: room for one box of MIN_BOX_SIDE with a margin
# EXIF Orientation -> how the stored pixels are turned, so that
# exif_transpose(stored) == displayed.
STORE_TRANSPOSE = {6: Image.Transpose.ROTATE_90, 8: Image.Transpose.ROTATE_270}
MODES = ("RGB", "L", "CMYK")
MODE_WEIGHTS = (0.7, 0.15, 0.15)
EXIF_SHARE = 0.2  # of RGB and L images
EDGE_SHARE = 0.15  # boxes snapped to the image border (IsTruncated=1)
ACTIVEMIL_SHARE = 0.15  # boxes from the "activemil" source; some flags unknown there
MAX_OVERLAP = 0.25  # of the smaller box's area, so most of every box stays visible


def sample_params(sample_cfg: Any) -> Dict[str, Any]:
    """The :class:`SampleConfig` fields as plain, validated values (dataclass or DictConfig).

    Raises ValueError naming the knob when the values cannot give a valid sample.
    """
    params = {}
    for f in dataclasses.fields(SampleConfig):
        value = getattr(sample_cfg, f.name)
        params[f.name] = OmegaConf.to_container(value) if isinstance(value, DictConfig) else value
    counts = {str(k): int(v) for k, v in dict(params["images_per_subset"]).items()}
    params["images_per_subset"] = counts
    if set(counts) - set(SUBSETS) or any(n < 0 for n in counts.values()):
        raise ValueError(
            f"data.sample.images_per_subset={counts}: keys must be among {list(SUBSETS)}, counts >= 0"
        )
    lo, hi = params["min_image_side"], params["max_image_side"]
    if not MIN_IMAGE_SIDE <= lo <= hi:
        raise ValueError(
            f"data.sample.min_image_side={lo}, max_image_side={hi}: need {MIN_IMAGE_SIDE} <= min <= max "
            f"pixels so every box can be >= {MIN_BOX_SIDE} pixels"
        )
    if params["max_boxes_per_image"] < 1:
        raise ValueError(f"data.sample.max_boxes_per_image={params['max_boxes_per_image']}: need at least 1")
    if not 1 <= params["jpeg_quality"] <= 95:
        raise ValueError(f"data.sample.jpeg_quality={params['jpeg_quality']}: Pillow takes 1..95")
    faults, total = params["corrupt_images"] + params["missing_images"], sum(counts.values())
    if min(params["corrupt_images"], params["missing_images"]) < 0 or faults > total:
        raise ValueError(
            f"data.sample.corrupt_images + missing_images = {faults} must be >= 0 and <= the {total} images "
            "in images_per_subset"
        )
    return params




@dataclass
class PlannedBox:
    label: str  # display name
    source: str
    x0: int  # pixel edges in the displayed image: [x0, x1) x [y0, y1)
    x1: int
    y0: int
    y1: int
    flags: Dict[str, int] = field(default_factory=dict)


@dataclass
class PlannedImage:
    image_id: str
    subset: str
    width: int  # displayed size, pixels
    height: int
    mode: str
    orientation: int  # EXIF Orientation, 1 = none
    boxes: List[PlannedBox]
    labels: List[Tuple[str, str, int]]  # (source, display name, confidence)
    fault: Optional[str] = None  # DECODE_ERROR or MISSING_IMAGE


def _overlap(a: PlannedBox, b: PlannedBox) -> int:
    """Intersection area in square pixels."""
    return max(0, min(a.x1, b.x1) - max(a.x0, b.x0)) * max(0, min(a.y1, b.y1) - max(a.y0, b.y0))


def _area(b: PlannedBox) -> int:
    return (b.x1 - b.x0) * (b.y1 - b.y0)


def _place_box(
    rng: np.random.Generator, label: str, width: int, height: int, placed: Sequence[PlannedBox]
) -> Optional[PlannedBox]:
    """A box of ``MIN_BOX_SIDE``..60% of the image side (pixels) that mostly avoids ``placed``;
    None when 20 tries find no room."""
    for _ in range(20):
        bw = int(rng.integers(MIN_BOX_SIDE, max(MIN_BOX_SIDE, int(0.6 * width)) + 1))
        bh = int(rng.integers(MIN_BOX_SIDE, max(MIN_BOX_SIDE, int(0.6 * height)) + 1))
        x0, y0 = int(rng.integers(0, width - bw + 1)), int(rng.integers(0, height - bh + 1))
        if rng.random() < EDGE_SHARE:
            side = int(rng.integers(4))
            x0 = {0: 0, 1: width - bw}.get(side, x0)
            y0 = {2: 0, 3: height - bh}.get(side, y0)
        box = PlannedBox(label, "", x0, x0 + bw, y0, y0 + bh)
        if all(_overlap(box, p) <= MAX_OVERLAP * min(_area(box), _area(p)) for p in placed):
            return box
    return None


def _flags(
    rng: np.random.Generator, box: PlannedBox, later: Sequence[PlannedBox], width: int, height: int
) -> Dict[str, int]:
    """OID's five flags; occlusion and truncation follow the drawing, the rest are random."""
    flags = {
        "IsOccluded": int(any(_overlap(box, b) for b in later)),
        "IsTruncated": int(box.x0 == 0 or box.y0 == 0 or box.x1 == width or box.y1 == height),
        "IsGroupOf": int(rng.random() < 0.05),
        "IsDepiction": int(rng.random() < 0.05),
        "IsInside": int(rng.random() < 0.02),
    }
    if box.source == "activemil" and rng.random() < 0.5:
        flags.update(IsDepiction=UNKNOWN_FLAG, IsInside=UNKNOWN_FLAG)
    return flags


def _plan_image(
    rng: np.random.Generator, image_id: str, subset: str, first_label: Optional[str], params: Dict[str, Any]
) -> PlannedImage:
    """One image: size, look, up to ``max_boxes_per_image`` boxes (``first_label`` first)
    and its image-level labels."""
    lo, hi = params["min_image_side"], params["max_image_side"]
    width, height = int(rng.integers(lo, hi + 1)), int(rng.integers(lo, hi + 1))
    mode = str(rng.choice(MODES, p=MODE_WEIGHTS))
    orientation = 1
    if mode != "CMYK" and rng.random() < EXIF_SHARE:
        orientation = int(rng.choice(sorted(STORE_TRANSPOSE)))
    names = list(BOX_CLASSES)
    weights = np.array([c.weight for c in BOX_CLASSES.values()], float)
    count = int(rng.integers(1, params["max_boxes_per_image"] + 1))
    wanted = [str(n) for n in rng.choice(names, size=count, p=weights / weights.sum())]
    if first_label:
        wanted[0] = first_label
    boxes: List[PlannedBox] = []
    for label in wanted:
        box = _place_box(rng, label, width, height, boxes)
        if box is not None:
            box.source = "activemil" if rng.random() < ACTIVEMIL_SHARE else "xclick"
            boxes.append(box)
    for i, box in enumerate(boxes):
        box.flags = _flags(rng, box, boxes[i + 1 :], width, height)
    on_image = sorted({b.label for b in boxes}, key=names.index)
    labels = [("verification" if rng.random() < 0.8 else "crowdsource-verification", n, 1) for n in on_image]
    # Negatives only among box classes, so an ancestor of a boxed class (Animal) is never one.
    absent = [n for n in names if n not in on_image]
    for n in rng.choice(absent, size=min(len(absent), int(rng.integers(1, 4))), replace=False):
        labels.append(("verification", str(n), 0))
    return PlannedImage(image_id, subset, width, height, mode, orientation, boxes, labels)


def plan_sample(params: Dict[str, Any]) -> List[PlannedImage]:
    """Every image of the sample, its boxes, labels, look and fault; no pixels yet.

    The first images of each subset carry one big cat each, so every big cat is in
    every subset that has six images. Faults go to the other images first.
    """
    rng = np.random.default_rng(params["seed"])
    seen: set = set()
    images, guaranteed = [], []
    for subset in SUBSETS:
        for i in range(params["images_per_subset"].get(subset, 0)):
            image_id = rng.bytes(8).hex()
            while image_id in seen:
                image_id = rng.bytes(8).hex()
            seen.add(image_id)
            first = BIG_CATS[i] if i < len(BIG_CATS) else None
            images.append(_plan_image(rng, image_id, subset, first, params))
            guaranteed.append(first is not None)
    order = sorted(rng.permutation(len(images)), key=lambda i: guaranteed[i])  # stable: random within
    faults = [DECODE_ERROR] * params["corrupt_images"] + [MISSING_IMAGE] * params["missing_images"]
    for i, fault in zip(order, faults):
        images[i].fault = fault
    _ensure_every_look([im for im in images if im.fault is None])
    return images


def _ensure_every_look(good: Sequence[PlannedImage]) -> None:
    """Make sure the decodable images include grayscale, CMYK and both EXIF rotations."""
    for image, (mode, orientation) in zip(good, [("L", 1), ("CMYK", 1), ("RGB", 6), ("RGB", 8)]):
        image.mode, image.orientation = mode, orientation

