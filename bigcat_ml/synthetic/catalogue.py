"""The sample's classes and their looks, and the embedded real Open Images metadata.

Every class is painted with its own pattern (:func:`class_signature` is its mean colour),
so a crop can be checked by eye or by test; MIDs and display names are the real ones,
read from the class descriptions shipped in ``bigcat_ml/synthetic/resources``.
"""
from __future__ import annotations

import csv
import functools
import io
import json
from dataclasses import dataclass
from importlib import resources
from typing import Callable, Dict, Tuple

import numpy as np

from bigcat_ml.oid import files

# The embedded metadata carries the names the public download uses.
CLASS_DESCRIPTIONS_FILE = files.SAMPLE_NAMES["class_descriptions"]
HIERARCHY_FILE = files.HIERARCHY

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


def render_pattern(style: Style, height: int, width: int) -> np.ndarray:
    """A ``(height, width, 3)`` uint8 patch of ``style``, anchored at its top-left pixel."""
    y, x = np.mgrid[0:height, 0:width]
    mask = PATTERNS[style.pattern](y, x, style.period)
    return np.where(mask[..., None], np.array(style.colors[1], np.uint8), np.array(style.colors[0], np.uint8))


def class_signature(display_name: str) -> np.ndarray:
    """Mean RGB colour (float, 0-255) of the pattern painted in ``display_name`` boxes."""
    return render_pattern(BOX_CLASSES[display_name].style, 120, 120).reshape(-1, 3).mean(axis=0)


def resource_bytes(name: str) -> bytes:
    """An embedded file (the real hierarchy, the sample's class descriptions) as shipped."""
    return (resources.files("bigcat_ml.synthetic") / "resources" / name).read_bytes()


@functools.lru_cache(maxsize=None)
def sample_hierarchy_bytes() -> bytes:
    """The hierarchy a generated sample carries: the real one, pruned to the classes of the
    embedded class descriptions, in the real file's format (key order, 4-space indent,
    CRLF line ends).

    Derived, not committed beside the real one, so the repository holds the hierarchy once;
    the pruned tree keeps the real one's traps: ``Part`` lists and MIDs under two parents.
    """
    kept = set(class_descriptions().values())

    def prune(node: Dict) -> Dict:
        pruned = {"LabelName": node["LabelName"]}
        for kind, children in node.items():
            if kind != "LabelName":
                children = [prune(child) for child in children if child["LabelName"] in kept]
                if children:
                    pruned[kind] = children
        return pruned

    tree = prune(json.loads(resource_bytes(HIERARCHY_FILE)))
    return json.dumps(tree, indent=4).replace("\n", "\r\n").encode("utf-8")


@functools.lru_cache(maxsize=None)
def class_descriptions() -> Dict[str, str]:
    """Display name -> MID, from the embedded ``class-descriptions-boxable.csv``."""
    rows = csv.reader(io.StringIO(resource_bytes(CLASS_DESCRIPTIONS_FILE).decode("utf-8")))
    return {name: mid for mid, name in rows}

