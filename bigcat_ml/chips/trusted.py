"""Refuse a dataset whose pickled metadata is not this project's own, before petastorm unpickles it.

Petastorm stores a dataset's Unischema as a pickle in ``_common_metadata`` and loads it
with an unpickler that still admits ``builtins`` (so ``eval``/``exec``): opening a
crafted dataset would run its code. The metadata is read here with pyarrow, which never
unpickles, and compared byte for byte with the pickle petastorm writes for the expected
schema.
"""
from __future__ import annotations

import pickle
import pickletools
from typing import List

import pyarrow.parquet as pq
from petastorm.etl.dataset_metadata import UNISCHEMA_KEY
from petastorm.unischema import Unischema

from bigcat_ml.storage import fs

COMMON_METADATA_FILE = "_common_metadata"


class UntrustedDatasetError(ValueError):
    """A dataset's metadata holds a pickle that is not the expected Unischema."""


def pickle_globals(payload: bytes) -> List[str]:
    """The ``module.name`` globals a pickle would import, read without unpickling it."""
    found: List[str] = []
    strings: List[str] = []
    try:
        for opcode, arg, _ in pickletools.genops(payload):
            if opcode.name in ("GLOBAL", "INST"):
                found.append(str(arg).replace(" ", "."))
            elif opcode.name == "STACK_GLOBAL" and len(strings) >= 2:
                found.append(f"{strings[-2]}.{strings[-1]}")
            elif isinstance(arg, str):
                strings.append(arg)
    except Exception as error:  # noqa: BLE001 - a malformed pickle is refused all the same
        found.append(f"<unreadable pickle: {error}>")
    return sorted(set(found))


def check_pickled_schema(dataset_url: str, expected: Unischema) -> None:
    """Raise :class:`UntrustedDatasetError` unless the Unischema pickled in
    ``<dataset_url>/_common_metadata`` is byte for byte the pickle of ``expected``
    (a dataset without one is left to petastorm, which then unpickles nothing)."""
    url = fs.join(dataset_url, COMMON_METADATA_FILE)
    filesystem, path = fs.pyarrow_filesystem(url)
    try:
        with filesystem.open_input_file(path) as stream:
            metadata = pq.read_metadata(stream).metadata or {}
    except FileNotFoundError as error:
        raise FileNotFoundError(
            f"no {COMMON_METADATA_FILE} in {dataset_url}: is it a chip dataset written by the preprocess step?"
        ) from error
    pickled = metadata.get(UNISCHEMA_KEY)  # bytes, as pyarrow returns keys
    if pickled is None or pickled == pickle.dumps(expected):
        return
    raise UntrustedDatasetError(
        f"{url}: its pickled Unischema is not this project's {expected._name} (it would import "
        f"{', '.join(pickle_globals(pickled)) or 'nothing'}); refusing to unpickle it, since petastorm would run "
        "whatever it names. Open only chip datasets written by `python -m bigcat_ml.preprocess` with this "
        "version, or rebuild this one."
    )
