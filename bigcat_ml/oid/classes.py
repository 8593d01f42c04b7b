"""Which Open Images classes to keep: by display name and/or by hierarchy ancestor.

Users name classes the way people read them (``Jaguar (Animal)``, ``Carnivore``); the
annotation files speak MIDs (``/m/0449p``). This module maps one to the other through
``class-descriptions-boxable.csv`` and the class hierarchy, and fails with suggestions
when a name is not there.
"""
from __future__ import annotations

import difflib
import logging
import re
from typing import Any, Dict, List, Mapping, Optional, Sequence

import pandas as pd
from pyspark.sql import SparkSession

from bigcat_ml.config.schema import ClassesConfig, DataConfig
from bigcat_ml.oid import files, hierarchy
from bigcat_ml.oid.readers import FILE_HINT, check_rows, read_csv
from bigcat_ml.oid.schemas import CLASS_DESCRIPTION_COLUMNS, CLASS_DESCRIPTIONS_SCHEMA, DISPLAY_NAME, LABEL_NAME

log = logging.getLogger(__name__)

MAX_SUGGESTIONS = 3


def read_class_descriptions(spark: SparkSession, path: str) -> pd.DataFrame:
    """The class descriptions (MID, display name) as pandas.

    ``class-descriptions-boxable.csv`` (600 boxable classes) has no header;
    ``oidv6-class-descriptions.csv`` (all 19,957 classes) starts ``LabelName,DisplayName``:
    the first line decides. Small enough (19,957 rows at most) to collect to the driver.
    """
    header = files.has_header(path)
    df = read_csv(spark, path, CLASS_DESCRIPTIONS_SCHEMA, header=header).persist()
    try:
        check_rows(df, CLASS_DESCRIPTIONS_SCHEMA, path)
        descriptions = df.select(*CLASS_DESCRIPTION_COLUMNS).toPandas()
    finally:
        df.unpersist()
    if descriptions.empty:
        raise ValueError(f"{path} has no rows: expected one `MID,DisplayName` row per boxable class")
    return descriptions


def _suggest(name: str, candidates: Sequence[str]) -> str:
    # Also match names without their V5+ qualifier, so 'Jagur' finds 'Jaguar (Animal)'.
    by_key: dict = {}
    for candidate in candidates:
        by_key.setdefault(candidate.lower(), candidate)
        by_key.setdefault(re.sub(r"\s*\(.*\)$", "", candidate).lower(), candidate)
    close = difflib.get_close_matches(name.lower(), list(by_key), n=MAX_SUGGESTIONS * 2, cutoff=0.6)
    suggestions = list(dict.fromkeys(by_key[c] for c in close))[:MAX_SUGGESTIONS]
    if not suggestions:
        return "no similar display name (the names are its second column)"
    quoted = [repr(c) for c in suggestions]
    listed = quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} or {quoted[-1]}"
    return f"did you mean {listed}?"


def mids_named(descriptions: pd.DataFrame, name: str, source: str) -> List[str]:
    """The MIDs whose display name is ``name``, compared case-insensitively (spaces trimmed).

    Raises ValueError with the closest display names when there is none.
    """
    wanted = name.strip().lower()
    matches = descriptions.loc[descriptions[DISPLAY_NAME].str.strip().str.lower() == wanted, LABEL_NAME]
    if matches.empty:
        suggestion = _suggest(name.strip(), descriptions[DISPLAY_NAME].tolist())
        raise ValueError(f"class {name!r} not found in {source}; {suggestion}")
    return matches.tolist()


def select_classes(
    descriptions: pd.DataFrame,
    tree: Optional[Mapping[str, Any]],
    names: Sequence[str],
    descendants_of: Sequence[str],
    descriptions_source: str = "class-descriptions-boxable.csv",
    hierarchy_source: str = "bbox_labels_600_hierarchy.json",
) -> pd.DataFrame:
    """The selected classes as ``DataFrame[LabelName, DisplayName]``, sorted by display name.

    ``names`` are display names (case-insensitive exact match). Each of ``descendants_of``
    adds every class below it in ``tree`` (via ``Subcategory`` and ``Part``, each MID
    once), but not the ancestor itself unless it is also in ``names``. ``tree`` may be
    None when ``descendants_of`` is empty. The ``*_source`` names go into error messages.
    """
    selected: Dict[str, None] = {}
    for name in names:
        selected.update(dict.fromkeys(mids_named(descriptions, name, descriptions_source)))
    for name in descendants_of:
        if tree is None:
            raise ValueError(f"descendants of {name!r} requested but no class hierarchy was given")
        for mid in mids_named(descriptions, name, descriptions_source):
            if not hierarchy.contains(tree, mid):
                raise ValueError(f"class {name!r} ({mid}) is not in {hierarchy_source}")
            below = hierarchy.descendants(tree, mid)
            if not below:
                raise ValueError(
                    f"class {name!r} ({mid}) has no descendants in {hierarchy_source}; "
                    "list it under classes.names to select the class itself"
                )
            selected.update(dict.fromkeys(below))
    if not selected:
        raise ValueError("no classes selected: set classes.names and/or classes.descendants_of")
    known = descriptions.drop_duplicates(LABEL_NAME).set_index(LABEL_NAME)[DISPLAY_NAME]
    unknown = [mid for mid in selected if mid not in known.index]
    if unknown:
        raise ValueError(
            f"{hierarchy_source} lists {unknown} but {descriptions_source} has no display name for them: "
            "are the two files from the same Open Images version?"
        )
    chosen = pd.DataFrame({LABEL_NAME: list(selected), DISPLAY_NAME: known.loc[list(selected)].to_numpy()})
    chosen = chosen.sort_values([DISPLAY_NAME, LABEL_NAME], ignore_index=True)
    log.info(
        "selected %d classes (names=%s, descendants_of=%s): %s",
        len(chosen),
        list(names),
        list(descendants_of),
        ", ".join(f"{r.DisplayName} ({r.LabelName})" for r in chosen.itertuples()),
    )
    return chosen


def load_selected_classes(spark: SparkSession, data_cfg: DataConfig, classes_cfg: ClassesConfig) -> pd.DataFrame:
    """:func:`select_classes` on the configured files (the hierarchy is read only if needed)."""
    path = files.resolve_file(data_cfg.class_descriptions, "data.class_descriptions", FILE_HINT)
    descriptions = read_class_descriptions(spark, path)
    tree = hierarchy.read_hierarchy(spark, data_cfg.hierarchy) if classes_cfg.descendants_of else None
    return select_classes(
        descriptions,
        tree,
        list(classes_cfg.names),
        list(classes_cfg.descendants_of),
        descriptions_source=path,
        hierarchy_source=data_cfg.hierarchy,
    )
