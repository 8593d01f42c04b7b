"""Walks over the real Open Images class hierarchy, and reading it through Spark."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from bigcat_ml.oid import hierarchy
from helpers.oid_metadata import REAL_HIERARCHY

ENTITY, CARNIVORE, PERSON, HUMAN_BODY, HUMAN_FACE = "/m/0bl9f", "/m/01lrl", "/m/01g317", "/m/02p0tk3", "/m/0dzct"
BIG_CATS = {"/m/07dm6", "/m/096mb", "/m/0cd4d", "/m/0c29q", "/m/0449p", "/m/04g2r"}
CAT, DOG, BEAR, FOX = "/m/01yrx", "/m/0bt9lr", "/m/01dws", "/m/0306r"


@pytest.fixture(scope="module")
def tree() -> dict:
    return json.loads(REAL_HIERARCHY.read_text())


def test_descendants_of_carnivore_are_the_big_cats_and_more_without_the_ancestor(tree):
    below = hierarchy.descendants(tree, CARNIVORE)
    assert BIG_CATS <= set(below)
    assert {CAT, DOG, BEAR, FOX} <= set(below)
    assert CARNIVORE not in below
    assert len(below) == len(set(below)) == 17


def test_descendants_walk_part_children(tree):
    person = next(n for n in hierarchy.nodes(tree) if n["LabelName"] == PERSON)
    # The real file: Person has Human body as a Part, whose Parts include Human face.
    assert [c["LabelName"] for c in person["Part"]] == [HUMAN_BODY]
    assert HUMAN_FACE in [c["LabelName"] for c in person["Part"][0]["Part"]]
    below = hierarchy.descendants(tree, PERSON)
    assert HUMAN_BODY in below and HUMAN_FACE in below


def test_a_class_under_two_parents_yields_its_descendants_once(tree):
    # Human body sits under Entity and, as a Part, under Person: 2 x 13 part nodes.
    occurrences = [n for n in hierarchy.nodes(tree) if n["LabelName"] == HUMAN_BODY]
    assert len(occurrences) == 2
    below = hierarchy.descendants(tree, HUMAN_BODY)
    assert len(below) == len(set(below)) == 13


def test_descendants_of_the_root_are_every_other_class_once(tree):
    mids = {n["LabelName"] for n in hierarchy.nodes(tree)}
    below = hierarchy.descendants(tree, ENTITY)
    assert len(below) == len(set(below)) == len(mids) - 1 == 601


def test_a_leaf_has_no_descendants_and_an_unknown_mid_is_not_contained(tree):
    assert hierarchy.descendants(tree, "/m/07dm6") == []
    assert hierarchy.contains(tree, "/m/07dm6")
    assert not hierarchy.contains(tree, "/m/not_a_class")


@pytest.mark.spark
def test_read_hierarchy_through_spark_matches_the_file(spark, tmp_path: Path):
    path = tmp_path / "bbox_labels_600_hierarchy.json"
    path.write_bytes(REAL_HIERARCHY.read_bytes())
    assert hierarchy.read_hierarchy(spark, str(path)) == json.loads(REAL_HIERARCHY.read_text())


@pytest.mark.spark
def test_read_hierarchy_errors_name_the_file(spark, tmp_path: Path):
    missing = tmp_path / "nowhere.json"
    with pytest.raises(FileNotFoundError, match=str(missing)):
        hierarchy.read_hierarchy(spark, str(missing))
    broken = tmp_path / "broken.json"
    broken.write_text('{"LabelName": "/m/0bl9f", "Subcategory": [')
    with pytest.raises(ValueError, match="broken.json is not valid JSON"):
        hierarchy.read_hierarchy(spark, str(broken))


def test_a_hierarchy_nested_past_the_parsers_limit_is_refused_naming_the_file():
    depth = 5_000
    text = '{"LabelName": "/m/x", "Subcategory": [' * depth + '{"LabelName": "/m/y"}' + "]}" * depth
    with pytest.raises(ValueError) as err:
        hierarchy.parse_hierarchy(text, "/data/oid/bbox_labels_600_hierarchy.json")
    assert str(err.value).startswith("/data/oid/bbox_labels_600_hierarchy.json is nested too deeply to parse")
