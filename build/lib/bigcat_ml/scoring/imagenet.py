"""ImageNet-1k labels offline, top-k of probability vectors, and the OID -> ImageNet ground truth.

Keras' ``decode_predictions`` downloads ``imagenet_class_index.json`` on first use, which
fails on machines without internet (and on every Spark executor of an offline cluster).
The same file ships inside the package (``bigcat_ml/scoring/resources``, byte-identical to the
Keras download: md5 ``c2c37ea517e94d9795004a39431a14cb``, the hash Keras checks) and is
read from there.
"""
from __future__ import annotations

import json
import logging
from functools import lru_cache
from importlib import resources
from typing import Dict, Iterable, List, Mapping, Tuple

import numpy as np
import pandas as pd

from bigcat_ml.config.schema import ClassesConfig

log = logging.getLogger(__name__)

NUM_CLASSES = 1000
UNMAPPED = -1  # true_index of a chip whose class has no ImageNet counterpart
CLASS_INDEX_RESOURCE = "resources/imagenet_class_index.json"


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


def ground_truth_map(
    classes_cfg: ClassesConfig, selected_display_names: Iterable[str], allow_unmapped: bool = False
) -> Dict[str, int]:
    """OID display name of every selected class -> its ImageNet index (the chip's truth).

    ``classes_cfg.imagenet_map`` is matched case-insensitively (``lynx`` finds ``Lynx``);
    the keys returned are the names as given in ``selected_display_names`` (the chips'
    ``LabelText``). A selected class without an entry is an error listing every such
    class, unless ``allow_unmapped``: then it maps to :data:`UNMAPPED` (-1), its chips
    are still predicted (and kept in the predictions table) but cannot be scored, and a
    warning names them. Indices must lie in 0..999.
    """
    configured: Dict[str, int] = {}
    for name, index in dict(classes_cfg.imagenet_map).items():
        if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < NUM_CLASSES:
            raise ValueError(
                f"classes.imagenet_map[{name!r}] = {index!r} is not an ImageNet index 0..{NUM_CLASSES - 1}; "
                "see bigcat_ml/scoring/resources/imagenet_class_index.json for the indices"
            )
        configured[str(name).casefold()] = index
    selected = list(dict.fromkeys(selected_display_names))
    truth = {name: configured.get(name.casefold(), UNMAPPED) for name in selected}
    unmapped = [name for name, index in truth.items() if index == UNMAPPED]
    if unmapped and not allow_unmapped:
        raise ValueError(
            f"selected classes {unmapped} have no entry in classes.imagenet_map "
            f"(it maps {sorted(classes_cfg.imagenet_map)}); add them, or set "
            "evaluate.allow_unmapped=true to predict their chips without scoring them"
        )
    if unmapped:
        log.warning("classes without an ImageNet counterpart (true_index %d, not scored): %s", UNMAPPED, unmapped)
    return truth


def attach_true_index(predictions: pd.DataFrame, truth: Mapping[str, int]) -> pd.DataFrame:
    """``predictions`` plus ``true_index`` looked up from each chip's ``LabelText``.

    Every LabelText must be a key of ``truth`` (build it with :func:`ground_truth_map`
    from the dataset's selected classes); an unknown one means the chips and the class
    selection disagree, and is an error naming it.
    """
    unknown: List[str] = sorted(set(predictions["LabelText"]) - set(truth))
    if unknown:
        raise ValueError(
            f"chips of classes {unknown} are not in the ground-truth map (which has {sorted(truth)}); "
            "was the chip dataset built with another class selection?"
        )
    return predictions.assign(true_index=predictions["LabelText"].map(truth).astype(np.int64))
