"""The Open Images class hierarchy (``bbox_labels_600_hierarchy.json``) and walks over it.

The file is a tree of ``{"LabelName": MID, "Subcategory": [...], "Part": [...]}`` nodes
rooted at Entity (``/m/0bl9f``). A class may sit under several parents (e.g. Teddy bear
under Bear and under Toy), so the same MID appears at several nodes and every walk
de-duplicates. ``Part`` children (parts of a person, of a vehicle) are descendants too.
"""
from __future__ import annotations

import json
import sys
from typing import Any, Dict, Iterator, List, Mapping

from pyspark.sql import SparkSession

from bigcat_ml.oid.readers import read_whole_text

CHILD_KEYS = ("Subcategory", "Part")


def read_hierarchy(spark: SparkSession, path: str) -> Dict[str, Any]:
    """Parse the hierarchy JSON at ``path`` (local path or any URI Spark reads)."""
    return parse_hierarchy(read_whole_text(spark, path), path)


def parse_hierarchy(text: str, path: str) -> Dict[str, Any]:
    """The hierarchy tree in ``text`` (the content of ``path``, named in every error).

    Python's JSON parser recurses once per nesting level, so a file nested past the
    interpreter's recursion limit (about 1,000 levels; the real one is 6 deep) is refused
    here, naming the file, instead of ending in a bare RecursionError.
    """
    try:
        tree = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not valid JSON ({err}); expected the Open Images class hierarchy") from err
    except RecursionError as err:
        raise ValueError(
            f"{path} is nested too deeply to parse (Python's JSON parser stops at about {sys.getrecursionlimit()} "
            "levels; the Open Images class hierarchy is 6 classes deep): is it the right file?"
        ) from err
    if not isinstance(tree, dict) or "LabelName" not in tree:
        raise ValueError(f"{path}: expected a JSON object with a 'LabelName' root (the Open Images class hierarchy)")
    return tree


def nodes(tree: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    """Every node of the tree, depth first, parents before children (a MID may repeat)."""
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        children = [child for key in CHILD_KEYS for child in node.get(key, [])]
        stack.extend(reversed(children))


def contains(tree: Mapping[str, Any], mid: str) -> bool:
    """Whether ``mid`` appears anywhere in the tree."""
    return any(node["LabelName"] == mid for node in nodes(tree))


def descendants(tree: Mapping[str, Any], mid: str) -> List[str]:
    """Distinct MIDs below every occurrence of ``mid``, via ``Subcategory`` and ``Part``.

    ``mid`` itself is excluded; order is first appearance in a depth-first walk, so the
    result is stable for a given file.
    """
    found: Dict[str, None] = {}
    for node in nodes(tree):
        if node["LabelName"] == mid:
            for below in nodes(node):
                if below is not node:
                    found.setdefault(below["LabelName"])
    return list(found)
