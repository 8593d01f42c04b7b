"""Choosing Open Images classes by display name and by hierarchy ancestor."""
from __future__ import annotations

import json
import logging
from pathlib import Path

import pandas as pd
import pytest

from bigcat_ml.oid import classes, hierarchy
from helpers.oid_metadata import REAL_HIERARCHY

NAMES = {
    "/m/07dm6": "Tiger",
    "/m/096mb": "Lion",
    "/m/0cd4d": "Cheetah",
    "/m/0c29q": "Leopard",
    "/m/0449p": "Jaguar (Animal)",
    "/m/04g2r": "Lynx",
    "/m/01yrx": "Cat",
    "/m/0bt9lr": "Dog",
    "/m/01lrl": "Carnivore",
    "/m/04rky": "Mammal",
    "/m/01g317": "Person",
    "/m/02p0tk3": "Human body",
    "/m/0dzct": "Human face",
    "/m/zz_jaguar": "Jaguar",  # made up: in no hierarchy
}
BIG_CATS = ["Cheetah", "Jaguar (Animal)", "Leopard", "Lion", "Lynx", "Tiger"]


@pytest.fixture(scope="module")
def tree() -> dict:
    return json.loads(REAL_HIERARCHY.read_text())


@pytest.fixture(scope="module")
def descriptions(tree) -> pd.DataFrame:
    """A display name for every real MID but the root (as in V6), made-up where unknown."""
    mids = dict.fromkeys(n["LabelName"] for n in hierarchy.nodes(tree) if n["LabelName"] != "/m/0bl9f")
    mids.update(dict.fromkeys(NAMES))
    return pd.DataFrame({"LabelName": list(mids), "DisplayName": [NAMES.get(m, f"Class {m}") for m in mids]})


def test_names_match_case_insensitively_and_return_display_names(descriptions):
    chosen = classes.select_classes(descriptions, None, ["jaguar (animal)", " TIGER "], [])
    assert chosen.to_dict("list") == {"LabelName": ["/m/0449p", "/m/07dm6"], "DisplayName": ["Jaguar (Animal)", "Tiger"]}


def test_an_unknown_name_suggests_the_closest_display_names(descriptions):
    with pytest.raises(ValueError) as err:
        classes.select_classes(descriptions, None, ["Jagur (animal)"], [], descriptions_source="/x/class-descriptions-boxable.csv")
    message = str(err.value)
    assert message.startswith("class 'Jagur (animal)' not found in /x/class-descriptions-boxable.csv; did you mean 'Jaguar (Animal)'")


def test_an_unknown_name_without_near_names_says_so(descriptions):
    with pytest.raises(ValueError, match="class 'Zzyzx' not found in .*no similar display name"):
        classes.select_classes(descriptions, None, ["Zzyzx"], [])


def test_descendants_of_carnivore_select_the_big_cats_and_more_but_not_carnivore(descriptions, tree):
    chosen = classes.select_classes(descriptions, tree, [], ["carnivore"])
    assert set(BIG_CATS) | {"Cat", "Dog"} <= set(chosen["DisplayName"])
    assert "Carnivore" not in set(chosen["DisplayName"])
    assert len(chosen) == chosen["LabelName"].nunique() == 17
    assert list(chosen["DisplayName"]) == sorted(chosen["DisplayName"])


def test_names_and_descendants_combine_without_duplicates(descriptions, tree):
    chosen = classes.select_classes(descriptions, tree, ["Carnivore", "Tiger"], ["Carnivore"])
    assert len(chosen) == chosen["LabelName"].nunique() == 18
    assert {"Carnivore", "Tiger"} <= set(chosen["DisplayName"])


def test_descendants_include_parts(descriptions, tree):
    chosen = classes.select_classes(descriptions, tree, [], ["Person"])
    assert {"Human body", "Human face"} <= set(chosen["DisplayName"])


def test_an_empty_selection_or_a_leaf_ancestor_is_an_error(descriptions, tree):
    with pytest.raises(ValueError, match="no classes selected"):
        classes.select_classes(descriptions, tree, [], [])
    with pytest.raises(ValueError, match="'Tiger' .* has no descendants"):
        classes.select_classes(descriptions, tree, [], ["Tiger"])


def test_an_ancestor_missing_from_the_hierarchy_names_the_file(descriptions, tree):
    with pytest.raises(ValueError, match=r"'Jaguar' \(/m/zz_jaguar\) is not in h.json"):
        classes.select_classes(descriptions, tree, [], ["Jaguar"], hierarchy_source="h.json")


def test_the_selected_classes_are_logged(descriptions, caplog):
    with caplog.at_level(logging.INFO, logger="bigcat_ml.oid.classes"):
        classes.select_classes(descriptions, None, BIG_CATS, [])
    assert "selected 6 classes" in caplog.text and "Jaguar (Animal) (/m/0449p)" in caplog.text


@pytest.mark.spark
def test_class_descriptions_have_no_header_and_keep_quoted_commas(spark, tmp_path: Path):
    path = tmp_path / "class-descriptions-boxable.csv"
    path.write_text('/m/07dm6,Tiger\n/m/0449p,Jaguar (Animal)\n/m/0xyz,"Salt, and pepper"\n')
    read = classes.read_class_descriptions(spark, str(path))
    assert read.to_dict("list") == {
        "LabelName": ["/m/07dm6", "/m/0449p", "/m/0xyz"],
        "DisplayName": ["Tiger", "Jaguar (Animal)", "Salt, and pepper"],
    }


@pytest.mark.spark
def test_a_class_description_row_without_a_name_is_an_error_naming_file_and_row(spark, tmp_path: Path):
    path = tmp_path / "class-descriptions-boxable.csv"
    path.write_text("/m/07dm6,Tiger\n/m/0449p\n")
    with pytest.raises(ValueError, match=rf"(?s)1 malformed row\(s\) in {path}: .*: '/m/0449p'$"):
        classes.read_class_descriptions(spark, str(path))


@pytest.mark.spark
def test_load_selected_classes_reads_the_configured_files(spark, tmp_path: Path, make_cfg):
    (tmp_path / "class-descriptions-boxable.csv").write_text(
        "".join(f"{mid},{name}\n" for mid, name in NAMES.items())
    )
    (tmp_path / "bbox_labels_600_hierarchy.json").write_bytes(REAL_HIERARCHY.read_bytes())
    cfg = make_cfg([f"data.root={tmp_path}", "classes=carnivores"])
    with pytest.raises(ValueError, match="has no display name"):
        # 17 carnivores in the hierarchy, but only some have a row in this descriptions file.
        classes.load_selected_classes(spark, cfg.data, cfg.classes)
    cfg = make_cfg([f"data.root={tmp_path}", "classes=bigcats"])
    assert list(classes.load_selected_classes(spark, cfg.data, cfg.classes)["DisplayName"]) == BIG_CATS
