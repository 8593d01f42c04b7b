"""What the Open Images files a preprocess reads are, for its reuse key.

A finished preprocess may be reused only while the files it read are still the files
there: an edited box CSV, another seed's sample or a replaced image must mean recompute.
By default a file is known by its path, size and modification time (one ``stat``, cheap
on every store); ``reuse_check=full`` knows it by the sha256 of its content instead,
which also sees a same-size edit that kept the old time. The file of a candidate list
that counts is the one the readers read (the first that exists, :mod:`bigcat_ml.oid.files`).

Image files are many (1,743,042 in Open Images' train folder), so a folder of them is
known by one digest of its listing, each folder of ``data.images_dirs`` listed once,
not recursively, and only the names an image may have (``<ImageID>.jpg``: the CSVs
beside the images in a flat folder are known by their own entries); a Parquet of image
bytes by its files.
"""
from __future__ import annotations

import hashlib
import json
from typing import Any, Dict, Iterable, List, Tuple

from bigcat_ml.oid import files, images
from bigcat_ml.storage import fs

# The ``{shard}`` values of ``data.images_dirs``: the first character of an ImageID, a hex digit
# (the tar shards train_0 .. train_f).
SHARDS = "0123456789abcdef"


def file_identity(path: str, full: bool) -> str:
    """``<path> <bytes> <mtime>``, or ``sha256:<hex>`` of the content when ``full``."""
    if full:
        return f"sha256:{fs.sha256(path)}"
    size, modified = fs.stat(path)
    return f"{path} {size} {modified}"


def _configured_file(candidates: List[str], full: bool) -> str:
    """The identity of the file the readers pick among ``candidates``; a missing one is
    named by its candidates (the step's own run then reports it)."""
    found = fs.first_existing(candidates)
    return f"missing: {candidates}" if found is None else file_identity(found, full)


def _digest(entries: Iterable[Tuple[str, str]]) -> str:
    return hashlib.sha256(json.dumps(sorted(entries)).encode()).hexdigest()


def image_folders(images_dirs: Iterable[str], subsets: Iterable[str]) -> List[str]:
    """Every folder ``data.images_dirs`` names for the configured subsets, once each."""
    return list(
        dict.fromkeys(
            template.format(subset=subset, shard=shard)
            for template in images_dirs
            for subset in subsets
            for shard in SHARDS
        )
    )


def _images_identity(data_cfg: Any, full: bool) -> str:
    """One digest of every image source: each folder's files (name, size, time or content)
    for ``dir``, each Parquet file for ``parquet``."""
    if data_cfg.images_format == "parquet":
        try:
            parquet = images.parquet_files(data_cfg.images_path)
        except FileNotFoundError:
            return f"missing: {data_cfg.images_path}"
        return _digest((path, file_identity(path, full)) for path in parquet)
    entries = []
    for folder in image_folders(data_cfg.images_dirs, data_cfg.subsets):
        for name, (size, modified) in fs.list_files(folder, maxdepth=1).items():
            if name.endswith(images.EXTENSIONS):
                path = fs.join(folder, name)
                entries.append((path, file_identity(path, True) if full else f"{size} {modified}"))
    return _digest(entries)


def input_identity(data_cfg: Any, reads_hierarchy: bool, full: bool) -> Dict[str, str]:
    """``{input: identity}`` of every file a preprocess of ``data_cfg`` reads: the metadata
    files by their config keys (:func:`bigcat_ml.oid.files.read_by_preprocess`), and the images."""
    identity = {key: _configured_file(tried, full) for key, tried in files.read_by_preprocess(data_cfg, reads_hierarchy)}
    identity["images"] = _images_identity(data_cfg, full)
    return identity
