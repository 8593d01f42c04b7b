"""Open a chip dataset only when nothing in it can make petastorm run code.

Petastorm stores a dataset's Unischema as a pickle in ``_common_metadata`` and loads it
with an unpickler that admits all of ``builtins`` and ``numpy`` (so ``eval``); pyarrow 14's
legacy ``ParquetDataset``, which petastorm uses, takes the *last* file whose name ends in
``_common_metadata`` (or, failing one, ``_metadata``) for that metadata. Three checks:

- :func:`check_written_files`: the folder holds only files the writer writes
  (:mod:`bigcat_ml.chips.layout`), so no decoy can be taken for the metadata;
- :func:`check_pickled_schema`: ``_common_metadata``'s pickle is byte for byte the one
  petastorm writes for ChipSchema, read with pyarrow, which never unpickles;
- :func:`load_schema_pickle`, installed in place of petastorm's unpickler at the one
  place it unpickles dataset metadata, resolves only the classes a ChipSchema pickle
  names: whatever path a pickle takes past the first two, it cannot call anything else.
"""
from __future__ import annotations

import io
import pickle
import pickletools
from typing import Any, Dict, Iterable, List, Optional

import pyarrow.parquet as pq
from petastorm.etl import legacy
from petastorm.etl.dataset_metadata import UNISCHEMA_KEY
from petastorm.unischema import Unischema

from bigcat_ml.chips.layout import COMMON_METADATA_FILE, is_written_file
from bigcat_ml.storage import fs

# Exactly the globals the pickle of ChipSchema names (tests/test_hostile_datasets.py checks it).
SCHEMA_GLOBALS = frozenset(
    {
        ("collections", "OrderedDict"),
        ("numpy", "float64"),
        ("numpy", "int32"),
        ("numpy", "str_"),
        ("numpy", "uint8"),
        ("petastorm.codecs", "CompressedImageCodec"),
        ("petastorm.codecs", "ScalarCodec"),
        ("petastorm.unischema", "Unischema"),
        ("petastorm.unischema", "UnischemaField"),
        ("pyspark.sql.types", "DoubleType"),
        ("pyspark.sql.types", "IntegerType"),
        ("pyspark.sql.types", "StringType"),
    }
)
REBUILD_ADVICE = "rebuild the dataset with `python -m bigcat_ml.preprocess preprocess.overwrite=true`"


class UntrustedDatasetError(ValueError):
    """A dataset holds something its writer did not write (a file, a pickle, an edit)."""


class _SchemaUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in SCHEMA_GLOBALS:
            raise UntrustedDatasetError(
                f"a dataset's pickled Unischema names {module}.{name}, which a ChipSchema pickle never does; "
                f"refusing to unpickle it (bigcat_ml.chips.trusted.SCHEMA_GLOBALS): {REBUILD_ADVICE}"
            )
        return super().find_class(module, name)


def load_schema_pickle(payload: bytes) -> Any:
    """``pickle.loads`` that resolves only :data:`SCHEMA_GLOBALS`."""
    return _SchemaUnpickler(io.BytesIO(payload)).load()


# petastorm's get_schema (make_reader, make_batch_reader) and row-group indexes unpickle
# through legacy.depickle_legacy_package_name_compatible, which calls this module global.
# Installed on import, which every reader of this package does first, in the driver and in
# each Spark worker: a process-wide replacement, and the only one this project makes.
legacy.restricted_loads = load_schema_pickle


def name_some(paths: Iterable[str], at_most: int = 5) -> str:
    """``a, b, c`` or, past ``at_most``, ``a, ..., e and 7 more``: a message names files, not thousands."""
    listed = list(paths)
    more = f" and {len(listed) - at_most} more" if len(listed) > at_most else ""
    return ", ".join(listed[:at_most]) + more


def check_written_files(output: str) -> None:
    """Raise :class:`UntrustedDatasetError` naming every file under ``output`` (a chip
    dataset folder) that the writer never writes."""
    unknown = sorted(relative for relative in fs.list_files(output) if not is_written_file(relative))
    if not unknown:
        return
    raise UntrustedDatasetError(
        f"{name_some(fs.join(output, relative) for relative in unknown)}: the chip dataset writer never writes "
        f"such a file, and a reader could take it for the dataset's metadata (pyarrow reads any file ending in "
        f"{COMMON_METADATA_FILE} as such); refusing to open {output}. Remove it if you know where it came from, "
        f"or {REBUILD_ADVICE}"
    )


def pickle_globals(payload: bytes) -> List[str]:
    """The ``module.name`` globals a pickle would import, read without unpickling it."""
    found: List[str] = []
    pushed: List[Optional[str]] = []  # what each opcode put on the stack, when a string
    memo: Dict[int, Optional[str]] = {}
    try:
        for opcode, arg, _ in pickletools.genops(payload):
            if opcode.name in ("GLOBAL", "INST"):
                found.append(str(arg).replace(" ", "."))
            elif opcode.name == "STACK_GLOBAL":
                found.append(".".join(str(part) for part in pushed[-2:]))
            elif opcode.name == "MEMOIZE":
                memo[len(memo)] = pushed[-1] if pushed else None
            elif opcode.name.endswith("PUT"):
                memo[arg] = pushed[-1] if pushed else None
            if opcode.name.endswith("GET"):
                pushed.append(memo.get(arg))
            elif opcode.stack_after and opcode.name != "MEMOIZE":
                pushed.append(arg if isinstance(arg, str) else None)
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
