"""ImageNet-1k labels offline, top-k of probability vectors, and the OID -> ImageNet ground truth.

The ground truth of an OID class is a set of ImageNet classes (Dog: the 118 breeds), from
``classes.imagenet_map`` or the table ``tools/wordnet_map.py`` derives from WordNet.

Keras' ``decode_predictions`` downloads ``imagenet_class_index.json`` on first use, which
fails on machines without internet (and on every Spark executor of an offline cluster).
The same file ships inside the package (``bigcat_ml/scoring/resources``, byte-identical to the
Keras download: md5 ``c2c37ea517e94d9795004a39431a14cb``, the hash Keras checks) and is
read from there.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any, Dict, Iterable, Tuple

import numpy as np
from omegaconf import ListConfig

from bigcat_ml.config.schema import ClassesConfig

log = logging.getLogger(__name__)

NUM_CLASSES = 1000
CLASS_INDEX_RESOURCE = "resources/imagenet_class_index.json"
DERIVED_MAP_RESOURCE = "resources/oid_imagenet_map.json"


@lru_cache(maxsize=1)
def class_index() -> Dict[int, Tuple[str, str]]:
    """ImageNet index -> (WordNet id, class name), e.g. ``292 -> ("n02129604", "tiger")``."""
    text = resources.files("bigcat_ml.scoring").joinpath(CLASS_INDEX_RESOURCE).read_text(encoding="utf-8")
    return {int(index): (wnid, name) for index, (wnid, name) in json.loads(text).items()}


@lru_cache(maxsize=1)
def _names() -> np.ndarray:
    index = class_index()
    return np.array([index[i][1] for i in range(NUM_CLASSES)], dtype=object)


def class_names(indices: np.ndarray) -> np.ndarray:
    """Class names for an array of ImageNet indices, same shape (object array of str)."""
    return _names()[np.asarray(indices, dtype=np.int64)]


def top_k(probs: np.ndarray, k: int) -> Tuple[np.ndarray, np.ndarray]:
    """The ``k`` most probable classes of each row of ``probs`` (n, 1000), best first.

    Returns (indices int32 (n, k), probabilities float32 (n, k)). Ties go to the lower
    index (stable sort), so the result is reproducible across runs and platforms.
    """
    probs = np.asarray(probs, dtype=np.float32)
    if probs.ndim != 2 or not 1 <= k <= probs.shape[1]:
        raise ValueError(f"top_k needs an (n, classes) array and 1 <= k <= classes; got shape {probs.shape}, k={k}")
    indices = np.argsort(-probs, axis=1, kind="stable")[:, :k].astype(np.int32)
    return indices, np.take_along_axis(probs, indices, axis=1)


@dataclass(frozen=True)
class ClassTruth:
    """What counts as right for the chips of one OID class.

    ``indices``: the ImageNet classes that are a correct top-1/top-5 prediction (Dog: the
    118 breeds); empty when the class has no ImageNet counterpart (its chips are predicted
    but not scored). ``family``: the ImageNet classes that count for family accuracy (its
    class group's, see ``classes.families``). ``source``: ``config`` (classes.imagenet_map),
    ``wordnet`` (the shipped table) or ``none``.
    """

    indices: Tuple[int, ...]
    family: Tuple[int, ...]
    source: str

    @property
    def mapped(self) -> bool:
        return bool(self.indices)


@lru_cache(maxsize=1)
def derived_table() -> Dict[str, Dict[str, Any]]:
    """The shipped OID MID -> ``{"name", "imagenet", "parents", …}`` table derived from
    WordNet by ``tools/wordnet_map.py``."""
    text = resources.files("bigcat_ml.scoring").joinpath(DERIVED_MAP_RESOURCE).read_text(encoding="utf-8")
    return json.loads(text)["classes"]


def _indices(value: Any, where: str) -> Tuple[int, ...]:
    values = list(value) if isinstance(value, (list, tuple, ListConfig)) else [value]
    for index in values:
        if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < NUM_CLASSES:
            raise ValueError(
                f"{where} = {value!r}: {index!r} is not an ImageNet index 0..{NUM_CLASSES - 1}; "
                "see bigcat_ml/scoring/resources/imagenet_class_index.json for the indices"
            )
    return tuple(sorted(set(values)))


def ground_truth_map(
    classes_cfg: ClassesConfig, selected: Iterable[Tuple[str, str]], allow_unmapped: bool = True
) -> Dict[str, ClassTruth]:
    """OID display name of every selected class -> its :class:`ClassTruth`.

    ``selected`` holds ``(MID, display name)`` pairs (the chips' ``LabelName``/``LabelText``).
    The ImageNet classes of a class come from ``classes.imagenet_map`` (display name,
    case-insensitive; an index or a list of them), else from the shipped WordNet-derived
    table by MID. Its family is that of the ``classes.families`` group naming it, else the
    ImageNet classes of its parents in the OID hierarchy, else its own. A class with no
    ImageNet class is unmapped: a warning names it and its chips are not scored, or, with
    ``allow_unmapped=false``, it is an error listing every such class.
    """
    configured = {
        str(name).casefold(): _indices(value, f"classes.imagenet_map[{name!r}]")
        for name, value in dict(classes_cfg.imagenet_map or {}).items()
    }
    families: Dict[str, Tuple[int, ...]] = {}
    for group, family in dict(classes_cfg.families or {}).items():
        indices = _indices(list(family["imagenet"]), f"classes.families[{group!r}].imagenet")
        for name in family["classes"]:
            families.setdefault(str(name).casefold(), indices)
    table = derived_table()
    by_name = {entry["name"].casefold(): mid for mid, entry in table.items()}
    truth: Dict[str, ClassTruth] = {}
    for mid, name in dict.fromkeys((str(m), str(n)) for m, n in selected):
        key = name.casefold()
        entry = table.get(mid) or table.get(by_name.get(key, ""), {})
        if key in configured:
            indices, source = configured[key], "config"
        else:
            indices = tuple(entry.get("imagenet", ()))
            source = "wordnet" if indices else "none"
        parents = tuple(sorted({i for parent in entry.get("parents", ()) for i in table[parent]["imagenet"]}))
        truth[name] = ClassTruth(indices, families.get(key) or parents or indices, source)
    unmapped = [name for name, t in truth.items() if not t.mapped]
    if unmapped and not allow_unmapped:
        raise ValueError(
            f"selected classes {unmapped} have no ImageNet counterpart (neither in classes.imagenet_map "
            "nor in the WordNet-derived table); map them in classes.imagenet_map, or set "
            "evaluate.allow_unmapped=true to predict their chips without scoring them"
        )
    if unmapped:
        log.warning("classes without an ImageNet counterpart (predicted, not scored): %s", unmapped)
    for name, t in truth.items():
        if t.mapped:
            log.info("ground truth of %s: %d ImageNet classes (%s), family of %d", name, len(t.indices), t.source, len(t.family))
    return truth
