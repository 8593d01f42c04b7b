"""Derive the OID class -> ImageNet-1k classes table from the WordNet 3.0 noun hierarchy.

    python -m tools.wordnet_map            # or: make imagenet-map

ImageNet-1k classes are WordNet noun synsets (``n02129604`` is the offset of ``tiger.n.02``),
so the ImageNet classes that count as a correct prediction for an Open Images class are the
ImageNet synsets at or below the synset its display name denotes: Dog -> the 118 dog breeds,
Bear -> brown, black, ice and sloth bear, Tiger -> tiger. The table is written to
``bigcat_ml/scoring/resources/oid_imagenet_map.json`` and shipped; this build-time tool
stays outside the package: at run time nothing here is needed.

The WordNet database files come from Debian's ``wordnet-base`` package
(``/usr/share/wordnet``; ``WORDNET_DIR`` points elsewhere). They are read directly: the
format (``wndb(5)``) is a line per synset with its pointers, and the two fields used here
(hyponym pointers, the lemma index) do not justify a dependency on nltk for one script.

How a display name becomes a synset (limits in ``tools/oid-metadata/README.md``):

1. the name, less a qualifier (``Jaguar (Animal)`` -> ``jaguar``), is looked up as a noun
   lemma (plurals reduced by WordNet's exception list and suffix rules); a name of two
   nouns joined by ``and`` (``Moths and butterflies``) takes both;
2. senses are kept in WordNet's frequency order, restricted to animals for classes under
   OID's Animal and to non-animals otherwise (``Kite`` the toy, not the bird), and to
   senses below a hypernym named by the qualifier first (``(Tool)``);
3. the first remaining sense with an ImageNet synset at or below it is taken
   (:data:`SYNSET_CHOICES` fixes the few that the rules get wrong);
4. ImageNet classes of another OID class whose synset lies below this one, but which OID
   does not put below it, are removed: OID files boxes under the most specific class.
"""
from __future__ import annotations

import argparse
import csv
import json
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Set, Tuple

from bigcat_ml.oid import hierarchy
from bigcat_ml.scoring import imagenet
from bigcat_ml.scoring.imagenet import class_index

log = logging.getLogger(__name__)

WORDNET_DIR = Path(os.environ.get("WORDNET_DIR", "/usr/share/wordnet"))
OID_DIR = Path(__file__).resolve().parent / "oid-metadata"
# The real hierarchy, committed once in the package (which prunes it for the generated sample).
HIERARCHY = Path(__file__).resolve().parents[1] / "bigcat_ml" / "synthetic" / "resources" / "bbox_labels_600_hierarchy.json"
TABLE = Path(imagenet.__file__).resolve().parent / imagenet.DERIVED_MAP_RESOURCE
ANIMAL_MID = "/m/0jbk"
ANIMAL_SYNSET = "00015388"  # animal.n.01
HYPONYM_POINTERS = ("~", "~i")

# Senses the rules cannot pick, by MID, with the reason.
SYNSET_CHOICES: Dict[str, Tuple[str, str]] = {
    # cat.n.01 also holds the wildcats (cougar, lynx); OID's Cat boxes are house cats.
    "/m/01yrx": ("domestic_cat", "OID Cat boxes are house cats; cat.n.01 also holds cougar and lynx"),
}
# Classes left unmapped on purpose: WordNet reaches ImageNet classes that are not what the
# OID class shows (a Person box is not a 'scuba diver' or a 'groom').
UNMAPPED_ON_PURPOSE: Dict[str, str] = {
    "/m/01g317": "Person: ImageNet-1k has no person class, only roles (scuba diver, ballplayer, groom)",
    "/m/04yx4": "Man: as Person",
    "/m/03bt1vf": "Woman: as Person",
    "/m/01bl7v": "Boy: as Person",
    "/m/05r655": "Girl: as Person",
}


@dataclass(frozen=True)
class WordNet:
    """The noun part of WordNet 3.0: synset offset -> (lemmas, hyponym offsets), and
    lemma -> synset offsets in sense (frequency) order."""

    lemmas: Mapping[str, Tuple[str, ...]]
    hyponyms: Mapping[str, Tuple[str, ...]]
    hypernyms: Mapping[str, Tuple[str, ...]]
    senses: Mapping[str, Tuple[str, ...]]
    exceptions: Mapping[str, str]


def read_wordnet(folder: Path = WORDNET_DIR) -> WordNet:
    """Parse ``data.noun``, ``index.noun`` and ``noun.exc`` of a WordNet 3.0 database."""
    data, index, exc = (folder / name for name in ("data.noun", "index.noun", "noun.exc"))
    missing = [str(p) for p in (data, index, exc) if not p.is_file()]
    if missing:
        raise FileNotFoundError(
            f"WordNet 3.0 files not found: {missing}. Install them (`apt-get install wordnet-base`) "
            "or set WORDNET_DIR to the folder holding data.noun"
        )
    lemmas: Dict[str, Tuple[str, ...]] = {}
    hyponyms: Dict[str, List[str]] = {}
    hypernyms: Dict[str, List[str]] = {}
    for line in data.read_text(encoding="utf-8").splitlines():
        if line.startswith(" "):  # the licence header
            continue
        fields = line.split(" | ", 1)[0].split()
        offset, words = fields[0], int(fields[3], 16)
        lemmas[offset] = tuple(w.lower() for w in fields[4 : 4 + 2 * words : 2])
        at = 4 + 2 * words
        for p in range(int(fields[at])):
            symbol, target, pos = fields[at + 1 + 4 * p : at + 4 + 4 * p]
            if pos != "n":
                continue
            if symbol in HYPONYM_POINTERS:
                hyponyms.setdefault(offset, []).append(target)
            elif symbol in ("@", "@i"):
                hypernyms.setdefault(offset, []).append(target)
    senses: Dict[str, Tuple[str, ...]] = {}
    for line in index.read_text(encoding="utf-8").splitlines():
        if line.startswith(" "):
            continue
        fields = line.split()
        count = int(fields[2])
        senses[fields[0]] = tuple(fields[-count:])
    exceptions = dict(line.split()[:2] for line in exc.read_text(encoding="utf-8").splitlines() if line.strip())
    return WordNet(
        lemmas,
        {k: tuple(v) for k, v in hyponyms.items()},
        {k: tuple(v) for k, v in hypernyms.items()},
        senses,
        exceptions,
    )


def closure(wn: WordNet, offset: str, pointers: Mapping[str, Tuple[str, ...]]) -> Set[str]:
    """``offset`` and every synset reached by following ``pointers`` transitively."""
    seen, stack = set(), [offset]
    while stack:
        current = stack.pop()
        if current not in seen:
            seen.add(current)
            stack.extend(pointers.get(current, ()))
    return seen


def noun_senses(wn: WordNet, phrase: str) -> List[str]:
    """Synsets of ``phrase`` as a noun, most frequent sense first; plurals are reduced with
    WordNet's exception list and its noun suffix rules (``morphy``)."""
    lemma = phrase.strip().lower().replace(" ", "_")
    candidates = [lemma, wn.exceptions.get(lemma, "")]
    for suffix, ending in (("ies", "y"), ("ches", "ch"), ("shes", "sh"), ("ses", "s"), ("xes", "x"), ("men", "man"), ("s", "")):
        if lemma.endswith(suffix):
            candidates.append(lemma[: -len(suffix)] + ending)
    for candidate in candidates:
        if candidate in wn.senses:
            return list(wn.senses[candidate])
    return []


def imagenet_offsets() -> Dict[str, int]:
    """WordNet offset (``02129604``) -> ImageNet-1k index (292), from the shipped class index."""
    return {wnid[1:]: index for index, (wnid, _) in class_index().items()}


@dataclass(frozen=True)
class Derived:
    """One OID class's entry in the table."""

    name: str
    synset: Optional[str]  # WordNet noun offset chosen, e.g. "02129604"
    lemma: Optional[str]  # its first lemma, e.g. "tiger"
    imagenet: Tuple[int, ...]
    parents: Tuple[str, ...]  # OID parent MIDs (root excluded)
    note: str


def _parents(tree: Mapping) -> Dict[str, Set[str]]:
    parents: Dict[str, Set[str]] = {}

    def walk(node: Mapping) -> None:
        for key in hierarchy.CHILD_KEYS:
            for child in node.get(key, []):
                parents.setdefault(child["LabelName"], set()).add(node["LabelName"])
                walk(child)

    walk(tree)
    return parents


def _phrases(display_name: str) -> Tuple[List[str], str]:
    """(noun phrases to look up, qualifier) of a display name."""
    match = re.match(r"^(.*?)\s*\((.+)\)$", display_name)
    base, qualifier = (match.group(1), match.group(2).lower()) if match else (display_name, "")
    return [base], qualifier


def _choose(wn: WordNet, phrase: str, qualifier: str, is_animal: bool, in_imagenet: Mapping[str, int]) -> Tuple[Optional[str], str]:
    senses = noun_senses(wn, phrase)
    if not senses and re.search(r"\s(and|&)\s", phrase):
        return None, "and"
    if not senses:
        return None, f"no WordNet noun {phrase!r}"
    kept = [s for s in senses if (ANIMAL_SYNSET in closure(wn, s, wn.hypernyms)) == is_animal] or senses
    if qualifier:
        words = set(qualifier.replace(" ", "_").split("_")) | {qualifier.replace(" ", "_")}
        named = [s for s in kept if any(set(wn.lemmas[h]) & words for h in closure(wn, s, wn.hypernyms) - {s})]
        kept = named + [s for s in kept if s not in named]
    for sense in kept:
        if closure(wn, sense, wn.hyponyms) & set(in_imagenet):
            return sense, ""
    return kept[0], "no ImageNet class at or below its WordNet synset"


def derive(wn: WordNet, descriptions: Sequence[Tuple[str, str]], tree: Mapping) -> Dict[str, Derived]:
    """The table for every ``(MID, display name)``, keyed by MID (see the module docstring)."""
    in_imagenet = imagenet_offsets()
    parents = _parents(tree)
    root = tree["LabelName"]
    animals = set(hierarchy.descendants(tree, ANIMAL_MID)) | {ANIMAL_MID}
    chosen: Dict[str, Set[str]] = {}
    notes: Dict[str, str] = {}
    for mid, name in descriptions:
        if mid in UNMAPPED_ON_PURPOSE:
            chosen[mid], notes[mid] = set(), UNMAPPED_ON_PURPOSE[mid]
            continue
        if mid in SYNSET_CHOICES:
            lemma, reason = SYNSET_CHOICES[mid]
            chosen[mid], notes[mid] = {wn.senses[lemma][0]}, reason
            continue
        phrases, qualifier = _phrases(name)
        synsets, why = set(), []
        for phrase in phrases:
            sense, note = _choose(wn, phrase, qualifier, mid in animals, in_imagenet)
            if note == "and":  # "Moths and butterflies": both nouns
                for part in re.split(r"\s(?:and|&)\s", phrase):
                    sense, note = _choose(wn, part, qualifier, mid in animals, in_imagenet)
                    synsets |= {sense} if sense else set()
                    why += [note] if note else []
            else:
                synsets |= {sense} if sense else set()
                why += [note] if note else []
        chosen[mid], notes[mid] = synsets, "; ".join(why)
    below = {mid: set().union(*(closure(wn, s, wn.hyponyms) for s in synsets)) if synsets else set() for mid, synsets in chosen.items()}
    table: Dict[str, Derived] = {}
    for mid, name in descriptions:
        own = below[mid]
        oid_below = set(hierarchy.descendants(tree, mid))
        # ImageNet classes of another OID class filed beside this one, not under it.
        for other, synsets in chosen.items():
            if other != mid and other not in oid_below and synsets and synsets <= own and synsets != chosen[mid]:
                own = own - below[other]
        indices = tuple(sorted(in_imagenet[s] for s in own if s in in_imagenet))
        synset = min(chosen[mid]) if len(chosen[mid]) == 1 else None
        table[mid] = Derived(
            name=name,
            synset=synset,
            lemma=wn.lemmas[synset][0] if synset else None,
            imagenet=indices,
            parents=tuple(sorted(parents.get(mid, set()) - {root})),
            note=notes[mid] if not indices else "",
        )
    return table


def read_descriptions(path: Path = OID_DIR / "class-descriptions-boxable.csv") -> List[Tuple[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return [(mid, name) for mid, name in csv.reader(handle)]


def table_json(table: Mapping[str, Derived]) -> str:
    """The shipped file: one entry per MID, sorted, so a re-derivation diffs cleanly."""
    classes = {
        mid: {
            "name": d.name,
            "synset": f"n{d.synset}" if d.synset else None,
            "lemma": d.lemma,
            "imagenet": list(d.imagenet),
            "parents": list(d.parents),
            **({"note": d.note} if d.note else {}),
        }
        for mid, d in sorted(table.items())
    }
    header = {
        "derived_by": "python -m tools.wordnet_map (make imagenet-map)",
        "wordnet": "WordNet 3.0 noun hierarchy (Debian wordnet-base)",
        "oid": "tools/oid-metadata (Open Images V6 class descriptions and hierarchy)",
        "mapped": sum(bool(d.imagenet) for d in table.values()),
        "classes_total": len(table),
    }
    return json.dumps({**header, "classes": classes}, indent=1, ensure_ascii=False) + "\n"


def main(argv: Optional[Iterable[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wordnet", type=Path, default=WORDNET_DIR, help="folder with data.noun (wordnet-base)")
    parser.add_argument("--output", type=Path, default=TABLE)
    args = parser.parse_args(list(argv) if argv is not None else None)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    tree = json.loads(HIERARCHY.read_text(encoding="utf-8"))
    table = derive(read_wordnet(args.wordnet), read_descriptions(), tree)
    args.output.write_text(table_json(table), encoding="utf-8")
    mapped = sum(bool(d.imagenet) for d in table.values())
    log.info("%s: %d of %d OID classes have ImageNet classes", args.output, mapped, len(table))


if __name__ == "__main__":
    main()
