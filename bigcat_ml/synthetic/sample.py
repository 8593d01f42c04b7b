"""Generate a small Open Images V6-format sample whose ground truth is known exactly.

Real OID needs hundreds of gigabytes and a download; the pipeline, its tests and the demo
need something that has every property of the real files that matters to a reader, on
a laptop, offline:

- the real file names, columns and formatting (no header in the class descriptions;
  coordinates as float32 fractions of the image width/height printed the way the
  public files print them, ``0.39166668``, ``1``; box flags 0/1 and -1 for unknown);
- real MIDs and display names, and a pruned copy of the real class hierarchy (children
  under ``Subcategory`` and ``Part``, some MIDs under two parents) shipped as package
  resources (``bigcat_ml/synthetic/resources``);
- several boxes per image, skewed class counts (big cats rare, Cat/Dog/Person common),
  portrait and landscape images of varied size, RGB, grayscale (L) and CMYK JPEGs, and
  JPEGs with an EXIF Orientation tag;
- faults: undecodable image bytes and annotated images that have no file at all.

Boxes always refer to the *displayed* image, i.e. after the EXIF Orientation is applied
(``PIL.ImageOps.exif_transpose``), as in real OID: an EXIF-rotated file stores its pixels
rotated, so a reader that ignores the tag crops the wrong place. Every box is at least
:data:`MIN_BOX_SIDE` pixels on each side of the displayed image and is painted with a
class-specific pattern (:func:`class_signature` is its mean colour), so a crop can be
checked by eye or by test.

The ground truth (``ground_truth.json``) counts images, boxes and image-level labels
per subset and class, and lists the faulty images, so tests know the chips and rejects
(:mod:`bigcat_ml.chips.rejects` reasons) a correct pipeline must produce.
"""
from __future__ import annotations

import csv
import dataclasses
import functools
import hashlib
import io
import json
import logging
import os
import shutil
import uuid
from collections import Counter
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from omegaconf import DictConfig, OmegaConf
from PIL import Image

from bigcat_ml.cli.progress import progress
from bigcat_ml.config.schema import SampleConfig
from bigcat_ml.oid.schemas import (
    BOX_COLUMNS,
    BOX_FLAGS,
    IMAGE_BYTES_COLUMNS,
    IMAGE_LABEL_COLUMNS,
    SUBSETS,
    UNKNOWN_FLAG,
)
from bigcat_ml.chips.rejects import DECODE_ERROR, MISSING_IMAGE

log = logging.getLogger(__name__)

# The public download's file names (DataConfig's defaults point at the same names).
CLASS_DESCRIPTIONS_FILE = "class-descriptions-boxable.csv"
HIERARCHY_FILE = "bbox_labels_600_hierarchy.json"
IMAGE_LABELS_FILE = "{subset}-annotations-human-imagelabels-boxable.csv"
BOXES_FILE = "{subset}-annotations-bbox.csv"
IMAGES_PARQUET = "images.parquet"
GROUND_TRUTH_FILE = "ground_truth.json"

# Bump when the generator's output changes for the same config, so that a sample made
# by older code is regenerated instead of reused.
FORMAT_VERSION = 1
MIN_BOX_SIDE = 24  # pixels, in the displayed image
MIN_IMAGE_SIDE = 32  # pixels: room for one box of MIN_BOX_SIDE with a margin
EXIF_ORIENTATION_TAG = 0x0112
# exif_transpose(stored) == displayed: store the displayed pixels turned the other way.
_STORE_TRANSPOSE = {6: Image.Transpose.ROTATE_90, 8: Image.Transpose.ROTATE_270}

RGB = Tuple[int, int, int]


@dataclass(frozen=True)
class Style:
    """How a class's boxes are painted: ``pattern`` in ``colors[1]`` over ``colors[0]``."""

    pattern: str
    colors: Tuple[RGB, RGB]
    period: int = 12  # pixels


@dataclass(frozen=True)
class BoxClass:
    weight: float  # relative frequency among boxes
    style: Style


BIG_CATS = ("Tiger", "Lion", "Cheetah", "Leopard", "Jaguar (Animal)", "Lynx")

# Display name -> frequency and look. Big cats are rare (Jaguar and Lynx rarest), the
# distractors common; colours are far apart so crops of different classes differ.
BOX_CLASSES: Dict[str, BoxClass] = {
    "Tiger": BoxClass(3, Style("diagonal", ((240, 130, 20), (20, 20, 20)))),
    "Lion": BoxClass(3, Style("solid", ((215, 175, 60), (215, 175, 60)))),
    "Cheetah": BoxClass(2, Style("spots", ((250, 235, 150), (30, 25, 20)), 10)),
    "Leopard": BoxClass(2, Style("rings", ((230, 200, 60), (90, 50, 10)), 6)),
    "Jaguar (Animal)": BoxClass(1, Style("checker", ((110, 75, 25), (15, 10, 5)), 8)),
    "Lynx": BoxClass(1, Style("hstripes", ((200, 200, 210), (120, 120, 135)), 6)),
    "Cat": BoxClass(10, Style("vstripes", ((50, 80, 210), (235, 235, 245)), 8)),
    "Dog": BoxClass(10, Style("solid", ((200, 100, 20), (200, 100, 20)))),
    "Horse": BoxClass(6, Style("grid", ((40, 140, 60), (240, 240, 240)), 10)),
    "Person": BoxClass(8, Style("solid", ((245, 170, 200), (245, 170, 200)))),
    "Teddy bear": BoxClass(3, Style("spots", ((150, 60, 170), (250, 250, 250)), 12)),
    "Brown bear": BoxClass(3, Style("rings", ((40, 40, 40), (70, 160, 170)), 8)),
    "Fox": BoxClass(3, Style("diagonal", ((225, 50, 30), (250, 250, 250)), 10)),
}

# Pattern name -> boolean mask over the box's pixel grid (y, x from np.mgrid, period p).
PATTERNS: Dict[str, Callable[[np.ndarray, np.ndarray, int], np.ndarray]] = {
    "solid": lambda y, x, p: np.zeros_like(x, dtype=bool),
    "diagonal": lambda y, x, p: ((x + y) // p) % 2 == 1,
    "vstripes": lambda y, x, p: (x // p) % 2 == 1,
    "hstripes": lambda y, x, p: (y // p) % 2 == 1,
    "checker": lambda y, x, p: (x // p + y // p) % 2 == 1,
    "grid": lambda y, x, p: (x % p < 3) | (y % p < 3),
    "spots": lambda y, x, p: (x % p - p / 2) ** 2 + (y % p - p / 2) ** 2 < (p / 3) ** 2,
    "rings": lambda y, x, p: (np.hypot(x - x.mean(), y - y.mean()) // p) % 2 == 1,
}

MODES = ("RGB", "L", "CMYK")
MODE_WEIGHTS = (0.7, 0.15, 0.15)
EXIF_SHARE = 0.2  # of RGB and L images
EDGE_SHARE = 0.15  # boxes snapped to the image border (IsTruncated=1)
ACTIVEMIL_SHARE = 0.15  # boxes from the "activemil" source; some flags unknown there
MAX_OVERLAP = 0.25  # of the smaller box's area, so most of every box stays visible


def render_pattern(style: Style, height: int, width: int) -> np.ndarray:
    """A ``(height, width, 3)`` uint8 patch of ``style``, anchored at its top-left pixel."""
    y, x = np.mgrid[0:height, 0:width]
    mask = PATTERNS[style.pattern](y, x, style.period)
    return np.where(mask[..., None], np.array(style.colors[1], np.uint8), np.array(style.colors[0], np.uint8))


def class_signature(display_name: str) -> np.ndarray:
    """Mean RGB colour (float, 0-255) of the pattern painted in ``display_name`` boxes."""
    return render_pattern(BOX_CLASSES[display_name].style, 120, 120).reshape(-1, 3).mean(axis=0)


def resource_bytes(name: str) -> bytes:
    """An embedded file (pruned real hierarchy, class descriptions) as shipped."""
    return (resources.files("bigcat_ml.synthetic") / "resources" / name).read_bytes()


@functools.lru_cache(maxsize=None)
def class_descriptions() -> Dict[str, str]:
    """Display name -> MID, from the embedded ``class-descriptions-boxable.csv``."""
    rows = csv.reader(io.StringIO(resource_bytes(CLASS_DESCRIPTIONS_FILE).decode("utf-8")))
    return {name: mid for mid, name in rows}


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


def config_fingerprint(sample_cfg: Any) -> str:
    """A hash of the sample's config and :data:`FORMAT_VERSION`: equal means same sample."""
    payload = json.dumps({"config": sample_params(sample_cfg), "format": FORMAT_VERSION}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()


# --------------------------------------------------------------------------- planning


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
        orientation = int(rng.choice(sorted(_STORE_TRANSPOSE)))
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


# --------------------------------------------------------------------------- pixels


def render_displayed(rng: np.random.Generator, image: PlannedImage) -> np.ndarray:
    """The displayed (EXIF-applied) RGB pixels: a muted gradient, then each box's pattern."""
    h, w = image.height, image.width
    y, x = np.mgrid[0:h, 0:w]
    t = (x / w * 0.6 + y / h * 0.4)[..., None]
    c0, c1 = rng.integers(70, 150, size=(2, 3))
    pixels = c0 * (1 - t) + c1 * t + rng.normal(0, 6, size=(h, w, 3))
    canvas = np.clip(pixels, 0, 255).astype(np.uint8)
    for box in image.boxes:
        canvas[box.y0 : box.y1, box.x0 : box.x1] = render_pattern(
            BOX_CLASSES[box.label].style, box.y1 - box.y0, box.x1 - box.x0
        )
    return canvas


def encode_jpeg(displayed: np.ndarray, mode: str, orientation: int, quality: int) -> bytes:
    """JPEG bytes in ``mode``; with an EXIF ``orientation``, the stored pixels are turned
    so that ``exif_transpose`` of the decoded file gives ``displayed`` back."""
    image = Image.fromarray(displayed, "RGB").convert(mode)
    out = io.BytesIO()
    if orientation in _STORE_TRANSPOSE:
        exif = Image.Exif()
        exif[EXIF_ORIENTATION_TAG] = orientation
        image.transpose(_STORE_TRANSPOSE[orientation]).save(out, "JPEG", quality=quality, exif=exif.tobytes())
    else:
        image.save(out, "JPEG", quality=quality)
    return out.getvalue()


def corrupt(rng: np.random.Generator, data: bytes, nth: int) -> bytes:
    """Bytes no decoder accepts (Pillow and OpenCV alike): alternately the first 64 bytes of
    the JPEG (a header cut before any pixel data) and random garbage without a JPEG marker."""
    if nth % 2 == 0:
        return data[:64]
    return b"\x00" + rng.bytes(511)


# --------------------------------------------------------------------------- files


def _fraction(pixels: int, size: int) -> str:
    """A coordinate as the public files print it: float32, shortest repr, ``0``/``1`` bare."""
    return np.format_float_positional(np.float32(pixels / size), trim="-")


def _box_rows(images: Sequence[PlannedImage]) -> Iterator[List[Any]]:
    for image in images:
        for box in image.boxes:
            mid = class_descriptions()[box.label]
            coords = [_fraction(box.x0, image.width), _fraction(box.x1, image.width),
                      _fraction(box.y0, image.height), _fraction(box.y1, image.height)]
            yield [image.image_id, box.source, mid, 1, *coords, *(box.flags[c] for c in BOX_FLAGS)]


def _label_rows(images: Sequence[PlannedImage]) -> Iterator[List[Any]]:
    for image in images:
        for source, name, confidence in image.labels:
            yield [image.image_id, source, class_descriptions()[name], confidence]


def _write_csv(path: Path, header: Optional[Sequence[str]], rows: Iterator[List[Any]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        if header:
            writer.writerow(header)
        writer.writerows(rows)


def _write_annotations(staging: Path, images: Sequence[PlannedImage]) -> None:
    """The metadata files and, per subset, the box and image-label CSVs sorted by ImageID."""
    (staging / CLASS_DESCRIPTIONS_FILE).write_bytes(resource_bytes(CLASS_DESCRIPTIONS_FILE))
    (staging / HIERARCHY_FILE).write_bytes(resource_bytes(HIERARCHY_FILE))
    for subset in SUBSETS:
        rows = sorted((im for im in images if im.subset == subset), key=lambda im: im.image_id)
        _write_csv(staging / BOXES_FILE.format(subset=subset), BOX_COLUMNS, _box_rows(rows))
        _write_csv(staging / IMAGE_LABELS_FILE.format(subset=subset), IMAGE_LABEL_COLUMNS, _label_rows(rows))


def _write_images(
    rng: np.random.Generator, images: Sequence[PlannedImage], quality: int, images_dir: Path, parquet: Path
) -> None:
    """``<images_dir>/<subset>/<ImageID>.jpg`` and the Parquet of the very same bytes."""
    images_dir.mkdir(parents=True)
    rows: Dict[str, List[Any]] = {c: [] for c in IMAGE_BYTES_COLUMNS}
    corrupted = 0
    with progress("write sample images", len(images), "image") as done:
        for image in images:
            done.update()
            if image.fault == MISSING_IMAGE:
                continue
            data = encode_jpeg(render_displayed(rng, image), image.mode, image.orientation, quality)
            if image.fault == DECODE_ERROR:
                data, corrupted = corrupt(rng, data, corrupted), corrupted + 1
            (images_dir / image.subset).mkdir(parents=True, exist_ok=True)
            (images_dir / image.subset / f"{image.image_id}.jpg").write_bytes(data)
            for column, value in zip(IMAGE_BYTES_COLUMNS, (image.image_id, image.subset, data)):
                rows[column].append(value)
    image_id, subset, data = IMAGE_BYTES_COLUMNS
    schema = pa.schema(
        [pa.field(image_id, pa.string(), nullable=False), (subset, pa.string()), (data, pa.binary())]
    )
    pq.write_table(pa.table(rows, schema=schema), parquet)


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


def generate_sample(
    root: Path, sample_cfg: Any, images_path: Optional[Path] = None, force: bool = False
) -> Dict[str, Any]:
    """Write the sample into ``root`` (images under ``images_path``, default ``root/images``)
    and return its ground truth, also written to ``root/ground_truth.json``.

    Same config, same bytes: CSVs, JSON and images depend only on ``sample_cfg``. When
    ``root`` already holds the sample of this config (same fingerprint) it is kept as is
    unless ``force``. Everything is written aside first and moved into place with
    ``ground_truth.json`` last, so a sample whose ground truth is present is complete and
    a failed run leaves the previous sample untouched.
    """
    root = Path(root)
    images_dir = Path(images_path) if images_path else root / "images"
    if images_dir.resolve() in (root.resolve(), *root.resolve().parents):
        raise ValueError(
            f"images_path {images_dir} must not be data.root {root} or above it: it is replaced whole"
        )
    params = sample_params(sample_cfg)
    fingerprint = config_fingerprint(sample_cfg)
    existing = read_ground_truth(root)
    complete = existing is not None and images_dir.is_dir() and (root / IMAGES_PARQUET).is_file()
    if complete and not force and existing.get("fingerprint") == fingerprint:
        log.info("%s holds the sample of this config (%s): not regenerating", root, fingerprint[:12])
        return existing
    log.info("generating the sample in %s (images in %s)", root, images_dir)
    images = plan_sample(params)
    summary = summarize(images, params, fingerprint)
    staging = _fresh_dir(root, "staging")
    try:
        _write_annotations(staging, images)
        pixels_rng = np.random.default_rng([params["seed"], 1])  # own stream: plan and pixels stay apart
        quality = params["jpeg_quality"]
        _write_images(pixels_rng, images, quality, staging / "images", staging / IMAGES_PARQUET)
        (staging / GROUND_TRUTH_FILE).write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
        _move_into_place(staging, root, images_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    boxes = {s: sum(c.values()) for s, c in summary["boxes"].items()}
    log.info("sample written: %s images, %s boxes", summary["images"], boxes)
    return summary


def _fresh_dir(beside: Path, purpose: str) -> Path:
    """A new hidden folder next to ``beside`` (same file system, so moves are renames)."""
    path = beside.parent / f".{beside.name}.{purpose}-{uuid.uuid4().hex[:12]}"
    path.mkdir(parents=True)
    return path


def _move_into_place(staging: Path, root: Path, images_dir: Path) -> None:
    """Replace the previous sample: its images folder whole, then the files one by one,
    ``ground_truth.json`` last (a move, i.e. a rename, within ``root``'s file system)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / GROUND_TRUTH_FILE).unlink(missing_ok=True)
    if images_dir.exists():
        old = _fresh_dir(images_dir, "old")
        os.replace(images_dir, old / images_dir.name)
        shutil.rmtree(old)
    # shutil.move: images_path may be on another file system than data.root.
    shutil.move(staging / "images", images_dir)
    files = [p for p in staging.iterdir() if p.is_file()]
    for path in sorted(files, key=lambda p: p.name == GROUND_TRUTH_FILE):
        os.replace(path, root / path.name)
