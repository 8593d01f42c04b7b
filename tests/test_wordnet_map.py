"""The OID -> ImageNet table: derived from WordNet 3.0, shipped, and pinned on the big cats."""
from __future__ import annotations

import json

import pytest

from tools import wordnet_map
from bigcat_ml.scoring.imagenet import derived_table

BIG_CATS = {"/m/07dm6": 292, "/m/096mb": 291, "/m/0cd4d": 293, "/m/0c29q": 288, "/m/0449p": 290, "/m/04g2r": 287}

needs_wordnet = pytest.mark.skipif(
    not (wordnet_map.WORDNET_DIR / "data.noun").is_file(),
    reason=f"WordNet 3.0 files not in {wordnet_map.WORDNET_DIR} (apt-get install wordnet-base)",
)


def test_shipped_table_pins_the_big_cats_and_covers_every_boxable_class():
    table = derived_table()
    assert {mid: table[mid]["imagenet"] for mid in BIG_CATS} == {mid: [index] for mid, index in BIG_CATS.items()}
    assert len(table) == len(wordnet_map.read_descriptions()) == 601
    assert table["/m/0449p"]["name"] == "Jaguar (Animal)" and table["/m/0449p"]["synset"] == "n02128925"


@needs_wordnet
def test_deriving_from_wordnet_reproduces_the_shipped_table(tmp_path):
    out = tmp_path / "map.json"
    wordnet_map.main(["--output", str(out)])
    assert out.read_text(encoding="utf-8") == wordnet_map.TABLE.read_text(encoding="utf-8")


@needs_wordnet
def test_senses_follow_the_oid_hierarchy_and_qualifiers():
    classes = json.loads(wordnet_map.TABLE.read_text(encoding="utf-8"))["classes"]
    by_name = {entry["name"]: entry for entry in classes.values()}
    assert by_name["Tiger"]["lemma"] == "tiger" and by_name["Tiger"]["synset"] == "n02129604"  # the cat, not tiger.n.01 (a person)
    assert by_name["Kite"]["imagenet"] == []  # the toy: OID files it outside Animal, so not ImageNet's kite (bird, 21)
    assert by_name["Computer mouse"]["imagenet"] == [673]
    assert by_name["Dog"]["imagenet"] == list(range(151, 269))
    assert by_name["Bear"]["imagenet"] == [294, 295, 296, 297]
    assert by_name["Drill (Tool)"]["imagenet"] == [740]
    # Lynx is its own OID class beside Cat: its ImageNet class is not one of Cat's
    assert 287 not in by_name["Cat"]["imagenet"] and by_name["Person"]["imagenet"] == []
