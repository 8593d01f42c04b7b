"""A config family's chip datasets: ``<datasets_dir>/<data>_<classes>/<key>`` and its ``latest`` link.

Each preprocess config writes its own folder of the family (:func:`default_output`);
a step that reads chips and finds none at its address is told which of the family exist
and the override that reads one, rather than only that a file is missing.
"""
from __future__ import annotations

import os
import uuid
from typing import Any, List, Optional

from bigcat_ml.chips.layout import SUMMARY_FILE
from bigcat_ml.chips.summary import ChipSummary
from bigcat_ml.storage import fs
from bigcat_ml.tracking.reuse import step_key

# What a chip dataset depends on: the config sections of the preprocess step's reuse key
# (:data:`bigcat_ml.preprocess.STEP`) and the keys inside them that change nothing in the
# chips: where they go and whether they may replace others, nor the ImageNet ground truth
# of the classes (evaluate's business). Defined here because the default folder is named by them.
CHIPS_SECTIONS = ("data", "classes", "preprocess")
CHIPS_IGNORE = ("preprocess.overwrite", "preprocess.output", "preprocess.lock_wait_s", "classes.imagenet_map", "classes.families")
# Characters of the step key in a chip dataset's default folder name.
_KEY_CHARS = 16

# In a config family's folder, the link to the chip dataset written last.
LATEST_ALIAS = "latest"


def family_folder(cfg: Any) -> str:
    """``<datasets_dir>/<data>_<classes>``: the folder of every chip dataset of this data and these classes."""
    return f"{cfg.paths.datasets_dir.rstrip('/')}/{cfg.data.name}_{cfg.classes.name}"


def point_alias(output: str, alias: str) -> None:
    """Make the local symlink ``alias`` point at ``output``, replacing it in one step
    (nothing on stores without symlinks)."""
    target, link = fs.local_path(output), fs.local_path(alias)
    if target is None or link is None:
        return
    temporary = f"{link}.tmp-{uuid.uuid4().hex[:12]}"
    os.symlink(os.path.relpath(target, os.path.dirname(link)), temporary)
    os.replace(temporary, link)


def default_output(cfg: Any) -> str:
    """Where a config's chips go unless ``preprocess.output`` is set:
    ``<datasets_dir>/<data>_<classes>/<step key>``.

    Addressed by the step key's config part (every data, classes and preprocess setting,
    and the code version), so two configs never write over each other's chips; the run
    that wrote it last points ``<datasets_dir>/<data>_<classes>/latest`` at it. Not by
    the input files: the address is fixed when the config is composed, before
    ``sample_data`` writes them, and must stay the same for the next run to reuse it. An
    edited input rebuilds the chips in the same folder.
    """
    return f"{family_folder(cfg)}/{step_key(cfg, CHIPS_SECTIONS, CHIPS_IGNORE)[:_KEY_CHARS]}"


def family_datasets(folder: str) -> List[str]:
    """The chip datasets in a family folder, ``latest`` first, then by name."""
    found = [fs.join(folder, name) for name in fs.subfolders(folder) if fs.is_file(fs.join(folder, name, SUMMARY_FILE))]
    return sorted(found, key=lambda path: (not path.endswith("/" + LATEST_ALIAS), path))


def _described(path: str) -> str:
    summary = ChipSummary.read(path)
    return f"{path} ({summary.chips} chips, subsets {','.join(summary.subsets)})"


def missing_dataset(address: str, setting: str, cfg: Any) -> Optional[str]:
    """None when a chip dataset is at ``address`` (the value of ``setting``); else why not,
    listing the family's datasets and the exact override that reads one (the ``latest``
    when there is one)."""
    if fs.is_file(fs.join(address, SUMMARY_FILE)):
        return None
    folder = family_folder(cfg)
    existing = family_datasets(folder)
    if not existing:
        return (
            f"{setting}={address}: no chip dataset there (no {SUMMARY_FILE}), and none for data={cfg.data.name} classes={cfg.classes.name} "
            f"in {folder}: run `python -m bigcat_ml.preprocess` (or `python -m bigcat_ml.main`) with this data and these classes first"
        )
    listing = "\n".join(f"  {_described(path)}" for path in existing)
    return (
        f"{setting}={address}: no chip dataset there (no {SUMMARY_FILE}); this config's preprocess has not written it. "
        f"The chip datasets for data={cfg.data.name} classes={cfg.classes.name}:\n{listing}\n"
        f"To use {'the latest' if existing[0].endswith('/' + LATEST_ALIAS) else 'one'}: {setting}={existing[0]}"
    )


def read_summary_or_suggest(address: str, setting: str, cfg: Any) -> ChipSummary:
    """The summary of the chip dataset at ``address``; a FileNotFoundError saying
    :func:`missing_dataset`'s why when there is none."""
    problem = missing_dataset(address, setting, cfg)
    if problem:
        raise FileNotFoundError(problem)
    return ChipSummary.read(address)
