"""Before a step starts Spark or TensorFlow: every input it will read, checked at once.

A wrong path otherwise surfaces minutes in, one at a time: a missing box file after the
class descriptions were parsed, a missing weights file after sample and preprocess ran.
:func:`check_inputs` runs in the entry point right after the config is composed and
checked (:mod:`bigcat_ml.config.checks`) and lists every missing input with its config
key, what was tried and what to do.

Only what must exist before the chain starts is checked: in ``main``'s chain an input an
earlier step writes is not (``sample_data`` writes the OID files of a generated data
group; ``preprocess`` writes the chip dataset that ``train`` and ``evaluate`` read).
"""
from __future__ import annotations

import logging
import os
from typing import Callable, Dict, List, Optional, Sequence, Set, Tuple

import pandas as pd
from omegaconf import DictConfig, OmegaConf

from bigcat_ml.storage import fs
from bigcat_ml.tracking import names

log = logging.getLogger(__name__)

# Class-description files at most this large are read here to check classes.names (the
# full V6 list, 19,957 classes, is 0.5 MB); a larger one, or a URI, is left to preprocess.
MAX_DESCRIPTIONS_BYTES = 8 * 1024 * 1024
OID_ROOT_VARIABLE = "OID_ROOT"


class MissingInputError(ValueError):
    """Inputs the step needs that are not there; the message lists each with its key."""


# A check: (config, names of the steps run before this one in the chain) -> problems.
Check = Callable[[DictConfig, Set[str]], List[str]]


def check_inputs(cfg: DictConfig, step_name: str, chain: Optional[Sequence[str]] = None) -> None:
    """Raise :class:`MissingInputError` listing every input of the steps ``chain`` names
    (``step_name`` alone unless given; ``main``'s chain for ``main``) that neither exists
    nor is written by an earlier step of it."""
    earlier: Set[str] = set()
    problems: List[str] = []
    for name in chain or (step_name,):
        for check in NEEDS.get(name, ()):
            problems += check(cfg, earlier)
        earlier.add(name)
    if problems:
        listed = "\n  ".join(dict.fromkeys(problems))
        raise MissingInputError(f"{step_name}: inputs missing or wrong, nothing was started:\n  {listed}")
    log.debug("%s: every input is there", step_name)


# ------------------------------------------------------------------------- OID files


def _oid_root_hint(cfg: DictConfig) -> str:
    """What to do about missing OID files, for this data group."""
    if cfg.data.sample is not None:
        return "this data group is generated: run `python -m bigcat_ml.sample_data` (same overrides) first, or `python -m bigcat_ml.main`"
    raw_root = str(OmegaConf.to_container(cfg.data, resolve=False)["root"])
    if OID_ROOT_VARIABLE in raw_root and OID_ROOT_VARIABLE not in os.environ:
        return (
            f"data.root is {cfg.data.root}, the default used when {OID_ROOT_VARIABLE} is not set: "
            f"`export {OID_ROOT_VARIABLE}=/path/to/open-images` or pass data.root=/path/to/open-images"
        )
    return f"check data.root={cfg.data.root} and the data.* file settings (README, \"Running on the real Open Images\")"


def _oid_file_settings(cfg: DictConfig) -> Tuple[List[Tuple[str, Sequence[str]]], List[str]]:
    """(config key, candidate files) of every OID file preprocess reads; and the subsets a
    per-subset setting has no entry for."""
    from bigcat_ml.oid.files import read_by_preprocess

    data = cfg.data
    settings: List[Tuple[str, Sequence[str]]] = list(read_by_preprocess(data, bool(cfg.classes.descendants_of)))
    unlisted = [
        f"data.{kind} has no entry for subset {subset!r} of data.subsets; it lists {sorted(data[kind])}"
        for kind in ("image_labels", "boxes")
        for subset in data.subsets
        if subset not in data[kind]
    ]
    if data.images_format == "parquet":
        settings.append(("data.images_path", [data.images_path]))
    return settings, unlisted


def oid_files(cfg: DictConfig, earlier: Set[str]) -> List[str]:
    """Every OID file preprocess reads that exists under none of its candidate names."""
    if names.SAMPLE_DATA_STEP in earlier:
        return []
    if not cfg.data.subsets:
        return ["data.subsets is empty: list at least one of train, validation, test"]
    settings, problems = _oid_file_settings(cfg)
    missing = [(key, tried) for key, tried in settings if not any(map(fs.exists, tried))]
    problems += [f"{key}: no file at {' nor '.join(tried)}" for key, tried in missing]
    if missing:
        problems.append(f"for the {len(missing)} missing OID file(s): {_oid_root_hint(cfg)}")
    return problems


def class_names(cfg: DictConfig, earlier: Set[str]) -> List[str]:
    """classes.names and classes.descendants_of that the class-description file lacks,
    with the closest names; checked only when that file is local and small."""
    if not (cfg.classes.names or cfg.classes.descendants_of):
        return ["no classes selected: set classes.names and/or classes.descendants_of"]
    if names.SAMPLE_DATA_STEP in earlier:
        return []
    from bigcat_ml.oid.files import as_candidates

    path = fs.first_existing(as_candidates(cfg.data.class_descriptions))
    if path is None or fs.is_uri(path) or os.path.getsize(path) > MAX_DESCRIPTIONS_BYTES:
        return []  # missing: reported by oid_files; remote or large: preprocess checks the names
    from bigcat_ml.oid.classes import mids_named
    from bigcat_ml.oid.files import has_header
    from bigcat_ml.oid.schemas import CLASS_DESCRIPTION_COLUMNS

    try:
        descriptions = pd.read_csv(
            path, header=0 if has_header(path) else None, names=list(CLASS_DESCRIPTION_COLUMNS), dtype=str,
            keep_default_na=False, usecols=[0, 1],
        )
    except ValueError:
        return []  # malformed: preprocess names the file and the rows
    problems = []
    for key in ("names", "descendants_of"):
        for name in cfg.classes[key]:
            try:
                mids_named(descriptions, name, path)
            except ValueError as error:
                problems.append(f"classes.{key}: {error}")
    return problems


# ---------------------------------------------------------------- datasets and weights


def _dataset_at(key: str) -> Check:
    """A check that the chip dataset at config ``key`` exists, unless this chain's
    preprocess writes it there."""

    def check(cfg: DictConfig, earlier: Set[str]) -> List[str]:
        from bigcat_ml.chips.family import missing_dataset

        location = OmegaConf.select(cfg, key)
        if names.PREPROCESS_STEP in earlier and location == cfg.preprocess.output:
            return []
        problem = missing_dataset(location, key, cfg)
        return [problem] if problem else []

    check.__doc__ = f"The chip dataset at {key} exists (or this chain's preprocess writes it)."
    return check


def _weights_problems(cfg: DictConfig) -> List[str]:
    from bigcat_ml.scoring.models import IMAGENET

    weights = cfg.model.weights
    if weights is None or weights == IMAGENET or fs.is_file(weights if fs.is_uri(weights) else os.path.expanduser(weights)):
        return []
    return [
        f"model.weights={weights}: no such file (model {cfg.model.name!r}); set model.weights to an existing "
        f"path or URI, to {IMAGENET!r}, or to null for random initialisation"
    ]


def backbone_weights(cfg: DictConfig, earlier: Set[str]) -> List[str]:
    """train always starts from model.weights."""
    return _weights_problems(cfg)


def scored_weights(cfg: DictConfig, earlier: Set[str]) -> List[str]:
    """evaluate reads model.weights unless it scores a fine-tuned model (model.source, or the
    one this chain's train hands over)."""
    if cfg.model.source or names.TRAIN_STEP in earlier:
        return []
    return _weights_problems(cfg)


# Step name -> the checks of the inputs it reads.
NEEDS: Dict[str, Tuple[Check, ...]] = {
    names.PREPROCESS_STEP: (oid_files, class_names),
    names.TRAIN_STEP: (_dataset_at("train.dataset"), backbone_weights),
    names.EVALUATE_STEP: (_dataset_at("evaluate.dataset"), scored_weights),
}
