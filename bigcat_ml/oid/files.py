"""The Open Images file names, defined once for the sample writer, the readers and ``conf/data``.

Open Images names the same content differently across releases and subsets: V6 ships the
train boxes as ``oidv6-train-annotations-bbox.csv`` beside ``validation-annotations-bbox.csv``;
its human-verified image-level labels for all 19,957 classes as
``oidv6-train-annotations-human-imagelabels.csv`` / ``validation-…`` / ``test-…``, while
V5 (and V6's "boxable" extract) uses ``*-annotations-human-imagelabels-boxable.csv``; the
class descriptions come as ``class-descriptions-boxable.csv`` (600 classes, no header) or
``oidv6-class-descriptions.csv`` (19,957 classes, header ``LabelName,DisplayName``).

So a data file is configured per subset as a list of *candidates*, tried in order; the
first that exists is read. ``conf/data/*.yaml`` gets its defaults from :func:`candidates`
through the ``oid_files`` resolver registered here.
"""
from __future__ import annotations

from typing import Any, Dict, List, Mapping, Sequence, Tuple

from omegaconf import OmegaConf

from bigcat_ml.storage import fs

HIERARCHY = "bbox_labels_600_hierarchy.json"
IMAGES_PARQUET = "images.parquet"

# Kind -> candidate names, most specific first; ``{subset}`` is the subset name. The
# smaller boxable files come first where both exist (the same rows for boxable classes).
CANDIDATES: Dict[str, Sequence[str]] = {
    "boxes": ("oidv6-{subset}-annotations-bbox.csv", "{subset}-annotations-bbox.csv"),
    "image_labels": (
        "{subset}-annotations-human-imagelabels-boxable.csv",
        "oidv6-{subset}-annotations-human-imagelabels.csv",
        "{subset}-annotations-human-imagelabels.csv",
    ),
    "class_descriptions": ("class-descriptions-boxable.csv", "oidv6-class-descriptions.csv"),
}
# What the generated sample writes: names every release uses (V6 ships these too).
SAMPLE_NAMES: Dict[str, str] = {
    "boxes": "{subset}-annotations-bbox.csv",
    "image_labels": "{subset}-annotations-human-imagelabels-boxable.csv",
    "class_descriptions": "class-descriptions-boxable.csv",
}


def candidates(kind: str, root: str, subset: str = "") -> List[str]:
    """Candidate locations of ``kind`` (a key of :data:`CANDIDATES`) under ``root``, in order."""
    if kind not in CANDIDATES:
        raise ValueError(f"unknown Open Images file kind {kind!r}; expected one of {sorted(CANDIDATES)}")
    names = dict.fromkeys(name.format(subset=subset) for name in CANDIDATES[kind])
    return [fs.join(root, name) for name in names]


def as_candidates(value: Any) -> List[str]:
    """A configured file: one path/URI or a list of them (tried in order)."""
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value]


def read_by_preprocess(data_cfg: Any, reads_hierarchy: bool) -> List[Tuple[str, List[str]]]:
    """(config key, candidate files) of every metadata file a preprocess of ``data_cfg``
    reads: the class descriptions, the hierarchy (when ``reads_hierarchy``: only
    ``classes.descendants_of`` walks it), each listed subset's image labels and boxes.

    The one list the pre-flight checks and the reuse key identifies; the images are
    looked up per ImageID (:mod:`bigcat_ml.oid.images`), not listed here.
    """
    settings = [("data.class_descriptions", as_candidates(data_cfg.class_descriptions))]
    if reads_hierarchy:
        settings.append(("data.hierarchy", [data_cfg.hierarchy]))
    for kind in ("image_labels", "boxes"):
        per_subset = data_cfg[kind]
        settings += [(f"data.{kind}.{subset}", as_candidates(per_subset[subset])) for subset in data_cfg.subsets if subset in per_subset]
    return settings


def resolve_file(value: Any, what: str, hint: str) -> str:
    """The first existing file among the configured candidate(s) ``value``.

    Raises FileNotFoundError listing every name tried, so a user sees what to rename or set.
    """
    tried = as_candidates(value)
    found = fs.first_existing(tried)
    if found is None:
        raise FileNotFoundError(f"no {what} file found; tried {tried}: {hint}")
    return found


def resolve_subsets(per_subset: Mapping[str, Any], subsets: Sequence[str], what: str, hint: str) -> Dict[str, str]:
    """Subset -> the existing file of ``what`` for every subset in ``subsets``."""
    if not subsets:
        raise ValueError("data.subsets is empty: list at least one of train, validation, test")
    unknown = [s for s in subsets if s not in per_subset]
    if unknown:
        raise ValueError(f"data.{what} has no entry for subset(s) {unknown}; it lists {sorted(per_subset)}")
    return {s: resolve_file(per_subset[s], f"{what} ({s})", hint) for s in subsets}


def has_header(path: str) -> bool:
    """Whether a class-description file starts with the ``LabelName,DisplayName`` header row.

    Decided by the content, not the name: V5's file has no header, V6's full list has one.
    """
    filesystem, inner = fs.resolve(path)
    with filesystem.open(inner, "rb") as stream:
        first = stream.readline().decode("utf-8-sig").strip()
    return first.replace('"', "").split(",")[:2] == ["LabelName", "DisplayName"]


def _resolver(kind: str, root: str, subset: str = "") -> List[str]:
    return candidates(kind, root, subset)


if not OmegaConf.has_resolver("oid_files"):
    OmegaConf.register_new_resolver("oid_files", _resolver)
