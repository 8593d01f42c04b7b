"""The one file-system layer for every project read and write that does not go through Spark.

Spark reads and writes through Hadoop's file systems; everything else (chip-dataset
summaries and staging renames, weights files, the local Petastorm reader, the OID file
look-ups, the CSV->Parquet cache and the image reads inside Spark tasks) goes through
this module, built on fsspec, which knows the same URI schemes: ``file://`` and plain
paths, ``hdfs://`` (pyarrow's libhdfs client), ``s3://``/``s3a://`` (s3fs), ``gs://``
(gcsfs), ``abfs://`` (adlfs). Only the local ones ship with the project; a scheme whose
client is not installed fails with fsspec's message naming the package to install.
Which schemes are *tested* is stated in the README.
"""
from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Tuple

import fsspec
from fsspec.core import url_to_fs
from fsspec.implementations.local import LocalFileSystem as _FsspecLocal

log = logging.getLogger(__name__)


def is_uri(path: str) -> bool:
    """Whether ``path`` names its scheme (``file:///x``, ``hdfs://nn/x``) rather than a local path."""
    return "://" in path


def to_url(path: str) -> str:
    """A URI as given; a local path as an absolute ``file://`` URL.

    Spark would read a bare path on its default file system (HDFS on a cluster), so local
    paths are always made explicit before they reach Spark or petastorm.
    """
    return path if is_uri(path) else Path(path).expanduser().resolve().as_uri()


def join(base: str, *names: str) -> str:
    """``base/name/...`` for paths and URIs alike (no normalisation of the scheme part)."""
    return "/".join([base.rstrip("/"), *(n.strip("/") for n in names)])


def resolve(path: str) -> Tuple[fsspec.AbstractFileSystem, str]:
    """The fsspec file system serving ``path`` and the path within it."""
    return url_to_fs(path)


def exists(path: str) -> bool:
    fs, inner = resolve(path)
    return bool(fs.exists(inner))


def is_file(path: str) -> bool:
    fs, inner = resolve(path)
    return bool(fs.isfile(inner))


def first_existing(candidates: Iterable[str]) -> Optional[str]:
    """The first of ``candidates`` that is a file, or None."""
    for candidate in candidates:
        if is_file(candidate):
            return candidate
    return None


def stat(path: str) -> Tuple[int, float]:
    """(size in bytes, modification time in seconds since the epoch; 0 when the store has none)."""
    fs, inner = resolve(path)
    return _size_and_time(fs.info(inner))


def _size_and_time(info: Dict[str, Any]) -> Tuple[int, float]:
    """(size, modification time) from an fsspec ``info`` record, whatever the store calls them."""
    modified = info.get("mtime") or info.get("LastModified") or info.get("last_modified") or 0
    if hasattr(modified, "timestamp"):
        modified = modified.timestamp()
    return int(info.get("size") or 0), float(modified)


def read_bytes(path: str) -> bytes:
    fs, inner = resolve(path)
    with fs.open(inner, "rb") as stream:
        return stream.read()


def read_text(path: str) -> str:
    return read_bytes(path).decode("utf-8")


def write_text(path: str, text: str) -> None:
    fs, inner = resolve(path)
    with fs.open(inner, "wb") as stream:
        stream.write(text.encode("utf-8"))


def mkdirs(path: str) -> None:
    """Create ``path`` (and parents); an existing folder is an error, as for ``Path.mkdir``."""
    fs, inner = resolve(path)
    if fs.exists(inner):
        raise FileExistsError(f"{path} already exists")
    fs.makedirs(inner, exist_ok=False)


def rename(src: str, dst: str) -> None:
    """Move ``src`` to ``dst`` (a folder move on stores that have folders)."""
    fs, inner_src = resolve(src)
    _, inner_dst = resolve(dst)
    fs.mv(inner_src, inner_dst, recursive=True)


def delete(path: str) -> None:
    """Remove ``path`` and everything below it; a missing path is fine."""
    fs, inner = resolve(path)
    if fs.exists(inner):
        fs.rm(inner, recursive=True)


def copy_to_local(path: str, local: Path) -> None:
    fs, inner = resolve(path)
    fs.get(inner, str(local))


def pyarrow_filesystem(path: str) -> Tuple[Any, str]:
    """A pyarrow FileSystem over the same fsspec file system, for pyarrow/petastorm readers."""
    from pyarrow.fs import FSSpecHandler, LocalFileSystem, PyFileSystem

    fs, inner = resolve(path)
    if isinstance(fs, _FsspecLocal):
        return LocalFileSystem(), inner
    return PyFileSystem(FSSpecHandler(fs)), inner


def parquet_rows(url: str, where: Optional[Any] = None) -> int:
    """Rows of the Parquet table at ``url`` (files whose names start with ``_`` or ``.``
    skipped), from the files' footers; with ``where`` (a pyarrow dataset expression) only
    its columns are read."""
    import pyarrow.dataset as pads

    filesystem, inner = pyarrow_filesystem(url)
    return pads.dataset(inner, filesystem=filesystem, format="parquet").count_rows(filter=where)


def local_path(path: str) -> Optional[str]:
    """The local path behind a plain path or a ``file://`` URI; None for any other scheme."""
    if not is_uri(path):
        return str(Path(path).expanduser())
    fs, inner = resolve(path)
    return inner if isinstance(fs, _FsspecLocal) else None


def list_files(path: str, maxdepth: Optional[int] = None) -> Dict[str, Tuple[int, float]]:
    """``{path relative to path: (bytes, modification time)}`` of every file below ``path``,
    at most ``maxdepth`` folders down (1: the files in ``path`` itself); empty when it does
    not exist."""
    fs, inner = resolve(path)
    root = inner.rstrip("/")
    if not fs.exists(root):
        return {}
    return {
        found[len(root) + 1 :]: _size_and_time(info)
        for found, info in fs.find(root, maxdepth=maxdepth, detail=True).items()
        if info.get("type") == "file"
    }


def subfolders(path: str) -> List[str]:
    """The names of the folders (and links to folders) directly in ``path``, sorted; none
    when it does not exist."""
    fs, inner = resolve(path)
    root = inner.rstrip("/")
    if not fs.exists(root):
        return []
    return sorted(
        entry["name"].rstrip("/").rsplit("/", 1)[-1]
        for entry in fs.ls(root, detail=True)
        if entry["type"] == "directory" or (entry.get("islink") and fs.isdir(entry["name"]))
    )


def sha256(path: str) -> str:
    """Hex sha256 of a file's bytes, read in blocks."""
    fs, inner = resolve(path)
    digest = hashlib.sha256()
    with fs.open(inner, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
