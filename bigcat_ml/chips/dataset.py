"""The chip dataset: its Petastorm Unischema, its atomic writer, and its readers.

A preprocess output folder holds ``chips/`` (the Petastorm dataset), ``rejects/``
(Parquet, :data:`bigcat_ml.chips.rejects.REJECTS_SCHEMA`) and ``summary.json`` (counts,
selected classes, content digest). It is a local path or a Hadoop URI (hdfs://...).
"""
from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import functools
import hashlib
import json
import logging
import os
import pickle
import pickletools
import re
import shutil
import time
import uuid
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterator, List, Mapping, Optional

import numpy as np
from petastorm import make_batch_reader, make_reader
from petastorm.codecs import CompressedImageCodec, ScalarCodec
from petastorm.etl.dataset_metadata import UNISCHEMA_KEY, materialize_dataset
from petastorm.reader import Reader
from petastorm.unischema import Unischema, UnischemaField
import pyarrow.parquet as pq
from pyarrow import fs as pafs
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import DoubleType, IntegerType, StringType

from bigcat_ml.oid.schemas import BOX_COORDINATES, BOX_FLAGS

if TYPE_CHECKING:
    import tensorflow as tf

log = logging.getLogger(__name__)

CHIPS_DIR = "chips"
REJECTS_DIR = "rejects"
SUMMARY_FILE = "summary.json"
# Every data file of the dataset (path, bytes, modification time, sha256), written with it:
# a finished run's output is reused only while the files still match it.
MANIFEST_FILE = "manifest.json"
LATEST_ALIAS = "latest"

# Columns that identify a chip and describe its box, in OID's own names and units
# (coordinates are fractions of the image size; flags are 1/0, -1 = unknown).
BOX_COLUMNS = BOX_COORDINATES
ATTRIBUTE_COLUMNS = BOX_FLAGS


def _string(name: str) -> UnischemaField:
    return UnischemaField(name, np.str_, (), ScalarCodec(StringType()), False)


def _double(name: str) -> UnischemaField:
    return UnischemaField(name, np.float64, (), ScalarCodec(DoubleType()), False)


def _int(name: str) -> UnischemaField:
    return UnischemaField(name, np.int32, (), ScalarCodec(IntegerType()), False)


ChipSchema = Unischema(
    "ChipSchema",
    [
        _string("ImageID"),
        _string("Subset"),
        _string("Source"),
        _string("LabelName"),
        _string("LabelText"),
        *[_double(c) for c in BOX_COLUMNS],
        *[_int(c) for c in ATTRIBUTE_COLUMNS],
        _int("image_width"),  # source image size in pixels, after EXIF orientation
        _int("image_height"),
        # RGB chip stored as JPEG bytes; petastorm decodes it to uint8 (h, w, 3).
        UnischemaField("chip", np.uint8, (None, None, 3), CompressedImageCodec("jpeg"), False),
        _int("chip_width"),
        _int("chip_height"),
    ],
)


# ---------------------------------------------------------------------------- locations


def _join(base: str, name: str) -> str:
    return f"{base.rstrip('/')}/{name}"


def _is_uri(path: str) -> bool:
    return "://" in path


def _to_url(path: str) -> str:
    """A URI as given; a local path as an absolute ``file://`` URL.

    Spark would read a bare path on its default filesystem (HDFS on a cluster), so local
    paths are always made explicit.
    """
    return path if _is_uri(path) else Path(path).resolve().as_uri()


def dataset_url(output: str) -> str:
    """URL of the Petastorm chip dataset (``<output>/chips``) for petastorm and Spark."""
    return _to_url(_join(output, CHIPS_DIR))


# --------------------------------------------------------------------------- filesystems

# renameat2(2) flags: fail if the target exists / swap two paths, each in one atomic step.
_RENAME_NOREPLACE = 1
_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _renameat2(src: str, dst: str, flags: int) -> None:
    """Linux ``renameat2``; OSError(ENOSYS/EINVAL) where the kernel, libc or filesystem lacks it."""
    function = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    if function is None:
        raise OSError(errno.ENOSYS, "renameat2 is not available", src)
    function.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if function(_AT_FDCWD, os.fsencode(src), _AT_FDCWD, os.fsencode(dst), flags) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code), src, None, dst)


_UNSUPPORTED = (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP)


def _unlock(path: str, descriptor: int) -> None:
    """Remove a lock file, then drop its lock (closing the descriptor releases the flock)."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    os.close(descriptor)


class _LocalFiles:
    """Folder operations on the local disk."""

    def exists(self, path: str) -> bool:
        return os.path.exists(path)

    def mkdirs(self, path: str) -> None:
        Path(path).mkdir(parents=True)

    def move_noreplace(self, src: str, dst: str) -> None:
        """Rename ``src`` to ``dst``, failing with FileExistsError if ``dst`` exists, atomically."""
        try:
            _renameat2(src, dst, _RENAME_NOREPLACE)
            return
        except OSError as error:
            if error.errno == errno.EEXIST:
                raise FileExistsError(errno.EEXIST, "exists", dst) from error
            if error.errno not in _UNSUPPORTED:
                raise
        if os.path.exists(dst):  # no atomic primitive here: check, then rename
            raise FileExistsError(errno.EEXIST, "exists", dst)
        os.rename(src, dst)

    def exchange(self, a: str, b: str) -> bool:
        """Swap ``a`` and ``b`` in one step; False where the filesystem cannot."""
        try:
            _renameat2(a, b, _RENAME_EXCHANGE)
        except OSError as error:
            if error.errno in _UNSUPPORTED:
                return False
            raise
        return True

    def delete(self, path: str) -> None:
        if os.path.isdir(path):
            shutil.rmtree(path, ignore_errors=True)
        elif os.path.exists(path):
            os.unlink(path)

    def write_text(self, path: str, text: str) -> None:
        Path(path).write_text(text, encoding="utf-8")

    def siblings(self, path: str) -> List[str]:
        """Names in ``path``'s folder that start with its own name and a dot."""
        parent, name = os.path.split(path.rstrip("/"))
        try:
            return [n for n in os.listdir(parent or ".") if n.startswith(name + ".")]
        except (FileNotFoundError, NotADirectoryError):  # the write itself reports a bad parent
            return []

    def hold_lock(self, path: str) -> Callable[[], None]:
        """Create and lock ``path`` for as long as this process lives; return its release.

        The kernel drops the lock when the process dies however it dies, so a lock that
        :meth:`probe_lock` can take proves its owner is dead.
        """
        Path(path).parent.mkdir(parents=True, exist_ok=True)  # the dataset's folder may be new
        descriptor = os.open(path, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o644)
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return functools.partial(_unlock, path, descriptor)

    def probe_lock(self, path: str) -> Optional[Callable[[], None]]:
        """The release of ``path``'s lock if its owner is dead (we now hold it), else None."""
        try:
            descriptor = os.open(path, os.O_RDWR)
        except FileNotFoundError:
            return None
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(descriptor)
            return None
        return functools.partial(_unlock, path, descriptor)


class _HadoopFiles:
    """The same operations on any Hadoop filesystem URI (hdfs://, s3a://, file://).

    Goes through the JVM of the running SparkSession, so it needs no extra Python client
    and uses the cluster's Hadoop configuration and credentials. Hadoop has no atomic
    exchange and no lock that dies with its owner: an overwrite takes two renames (see
    :func:`_publish`) and leftovers of dead runs are reported, not removed.
    """

    def __init__(self, spark: SparkSession, uri: str) -> None:
        self._jvm = spark._jvm
        self._gateway = spark.sparkContext._gateway
        self._conf = spark._jsc.hadoopConfiguration()
        self._path = spark._jvm.org.apache.hadoop.fs.Path
        self._fs = self._path(uri).getFileSystem(self._conf)

    def exists(self, path: str) -> bool:
        return bool(self._fs.exists(self._path(path)))

    def mkdirs(self, path: str) -> None:
        if not self._fs.mkdirs(self._path(path)):
            raise OSError(f"Hadoop FileSystem could not create {path}")

    def move_noreplace(self, src: str, dst: str) -> None:
        # FileSystem.rename would move src *into* an existing dst folder; FileContext's
        # rename with Options.Rename.NONE refuses an existing dst instead (atomic on HDFS).
        fs_api = self._jvm.org.apache.hadoop.fs
        options = self._gateway.new_array(fs_api.Options.Rename, 1)
        options[0] = fs_api.Options.Rename.NONE
        context = fs_api.FileContext.getFileContext(self._path(dst).toUri(), self._conf)
        try:
            context.rename(self._path(src), self._path(dst), options)
        except Exception as error:  # py4j wraps the Java exception
            if "FileAlreadyExistsException" in str(error):
                raise FileExistsError(errno.EEXIST, "exists", dst) from error
            raise OSError(f"Hadoop FileSystem could not rename {src} to {dst}: {error}") from error

    def exchange(self, a: str, b: str) -> bool:
        return False

    def delete(self, path: str) -> None:
        self._fs.delete(self._path(path), True)

    def write_text(self, path: str, text: str) -> None:
        stream = self._fs.create(self._path(path), False)
        try:
            stream.write(bytearray(text.encode("utf-8")))
        finally:
            stream.close()

    def siblings(self, path: str) -> List[str]:
        target = self._path(path.rstrip("/"))
        parent, name = target.getParent(), target.getName()
        if parent is None or not self._fs.exists(parent):
            return []
        names = [status.getPath().getName() for status in self._fs.listStatus(parent)]
        return [n for n in names if n.startswith(name + ".")]

    def hold_lock(self, path: str) -> Callable[[], None]:
        return lambda: None

    def probe_lock(self, path: str) -> Optional[Callable[[], None]]:
        return None


def _files_for(spark: SparkSession, output: str) -> Any:
    return _HadoopFiles(spark, output) if _is_uri(output) else _LocalFiles()


# ---------------------------------------------------------------------------- publishing

# A run writing <output> owns <output>.tmp-<id> (its staging folder), <output>.old-<id>
# (the previous dataset, only while Hadoop's two-rename overwrite runs) and
# <output>.lock-<id> (locked while it lives). Names never start with "." or "_", which
# Spark would hide.
_LEFTOVER = re.compile(r"\.(tmp|old|lock)-([0-9a-f]{12})$")


def _run_path(output: str, kind: str, run: str) -> str:
    return f"{output.rstrip('/')}.{kind}-{run}"


def sweep_leftovers(files: Any, output: str) -> None:
    """Report the staging folders other runs left next to ``output``; clean the dead ones.

    A leftover whose lock this process can take belonged to a run that is dead (the
    kernel released its lock): its folders are removed, and a previous dataset it had
    moved aside is first put back if ``output`` is missing. A leftover whose lock is held
    belongs to a running run and is left alone; one without a lock (Hadoop filesystems,
    or a run that died while creating it) cannot be proven dead and is only reported.
    """
    runs: Dict[str, List[str]] = {}
    for name in files.siblings(output):
        match = _LEFTOVER.search(name)
        if match and name == f"{os.path.basename(output.rstrip('/'))}.{match.group(1)}-{match.group(2)}":
            runs.setdefault(match.group(2), []).append(match.group(1))
    for run, kinds in sorted(runs.items()):
        release = files.probe_lock(_run_path(output, "lock", run)) if "lock" in kinds else None
        folders = [_run_path(output, kind, run) for kind in ("tmp", "old") if kind in kinds]
        if release is None:
            log.warning(
                "%s: left by another run that is still writing or cannot be proven dead; "
                "remove them by hand if no run is writing %s", ", ".join(folders) or "a lock file", output,
            )
            continue
        try:
            old = _run_path(output, "old", run)
            if "old" in kinds and not files.exists(output):
                files.move_noreplace(old, output)
                log.warning("restored %s from %s, left by a run that died while replacing it", output, old)
            for folder in folders:
                files.delete(folder)
            log.warning("removed %s, left by a run that died", ", ".join(folders) or "a stale lock")
        finally:
            release()


def _publish(files: Any, staging: str, output: str, overwrite: bool, run: str) -> None:
    """Move the complete ``staging`` folder to ``output``: the previous or the new dataset
    is at ``output`` at every instant, and ``overwrite=False`` is enforced by the move."""
    if not overwrite or not files.exists(output):
        try:
            files.move_noreplace(staging, output)
            return
        except FileExistsError:
            if not overwrite:
                raise FileExistsError(
                    f"chip dataset {output} was published by another run while this one was writing; "
                    "nothing was replaced. Set preprocess.overwrite=true to replace it or choose another "
                    "preprocess.output"
                ) from None
    if files.exchange(staging, output):
        files.delete(staging)  # it now holds the previous dataset
        return
    # No atomic exchange (Hadoop): move the previous dataset aside, then the new one in.
    # A kill between the two leaves it in <output>.old-<run>, which the next run restores.
    old = _run_path(output, "old", run)
    files.move_noreplace(output, old)
    try:
        files.move_noreplace(staging, output)
    except BaseException:
        files.move_noreplace(old, output)
        raise
    files.delete(old)


# -------------------------------------------------------------------------------- write


def content_digest(chips: DataFrame) -> str:
    """sha256 hex digest of the chip rows (every column, chip bytes included).

    Independent of row order, partitioning and file names: each row is hashed with
    ``sha2``, its 256 bits are summed in four 64-bit chunks across rows (an additive
    multiset hash, computed by Spark without collecting rows), and the row count and
    the four sums are hashed once more. A content fingerprint, not a security seal.
    """
    identity = [
        F.coalesce(F.col(c).cast("string"), F.lit("<null>")) for c in ChipSchema.fields if c != "chip"
    ]
    row_hash = F.sha2(F.concat_ws("\x1f", *identity, F.sha2(F.col("chip"), 256)), 256)
    chunks = [
        F.sum(F.conv(F.substring(row_hash, 1 + 16 * i, 16), 16, 10).cast("decimal(38,0)"))
        for i in range(4)
    ]
    row = chips.agg(F.count(F.lit(1)), *chunks).first()
    combined = json.dumps([int(row[0]), *[str(v or 0) for v in row[1:]]])
    return hashlib.sha256(combined.encode("utf-8")).hexdigest()


def _measure(spark: SparkSession, folder: str) -> Dict[str, Any]:
    """Counts and digest read back from the written files (no recomputation upstream)."""
    chips = spark.read.parquet(dataset_url(folder))
    rejects = spark.read.parquet(_to_url(_join(folder, REJECTS_DIR)))
    by_reason = {r["reason"]: int(r["count"]) for r in rejects.groupBy("reason").count().collect()}
    return {
        "chips": chips.count(),
        "rejects": sum(by_reason.values()),
        "rejects_by_reason": dict(sorted(by_reason.items())),
        "content_digest": content_digest(chips),
    }


def _write_parts(
    spark: SparkSession,
    chips: DataFrame,
    rejects: DataFrame,
    folder: str,
    rows_per_file: int,
    row_group_size_mb: int,
) -> None:
    chips_url = dataset_url(folder)
    # The chip column already holds JPEG bytes in CompressedImageCodec's format, so the
    # rows are written as they are; materialize_dataset adds the Unischema metadata.
    with materialize_dataset(spark, chips_url, ChipSchema, row_group_size_mb):
        chips.select(*ChipSchema.fields).write.option("maxRecordsPerFile", rows_per_file).parquet(chips_url)
    rejects.write.parquet(_to_url(_join(folder, REJECTS_DIR)))


def _cancel_jobs(spark: SparkSession, wait_seconds: float = 60.0) -> None:
    """Cancel the session's jobs and wait for them to end, so that no task writes into a
    staging folder after it is deleted."""
    context = spark.sparkContext
    context.cancelAllJobs()
    tracker = context.statusTracker()
    deadline = time.monotonic() + wait_seconds
    while (tracker.getActiveJobsIds() or tracker.getActiveStageIds()) and time.monotonic() < deadline:
        time.sleep(0.05)


def check_output(spark: SparkSession, output: str, overwrite: bool) -> Any:
    """Refuse an existing ``output`` unless ``overwrite``; cheap, so callers check first.

    Leftovers of other runs next to ``output`` are reported, and removed when their run
    is provably dead (:func:`sweep_leftovers`). Returns the file-system helper for
    ``output`` (local or Hadoop). The move into place checks again, atomically.
    """
    files = _files_for(spark, output)
    sweep_leftovers(files, output)
    if files.exists(output) and not overwrite:
        raise FileExistsError(
            f"chip dataset {output} already exists; set preprocess.overwrite=true to replace it "
            "or choose another preprocess.output"
        )
    return files


def write_chip_dataset(
    spark: SparkSession,
    chips: DataFrame,
    rejects: DataFrame,
    output: str,
    *,
    overwrite: bool = False,
    summary: Optional[Mapping[str, Any]] = None,
    rows_per_file: int = 2000,
    row_group_size_mb: int = 32,
    verify: Optional[Callable[[Dict[str, Any]], None]] = None,
) -> Dict[str, Any]:
    """Write ``<output>/chips`` (Petastorm), ``rejects`` (Parquet) and ``summary.json``.

    All or nothing: everything goes to a sibling staging folder that is moved to
    ``output`` once complete and checked, so the previous dataset (or none) stays at
    ``output`` until the new one replaces it in one step (:func:`_publish`). ``verify``
    is called with the measured summary before that move: raise in it to abandon the
    dataset (the counts are reconciled there). An existing ``output`` is refused unless
    ``overwrite``, also when another run publishes it while this one writes. ``chips``
    has the ChipSchema columns, ``rejects`` the REJECTS_SCHEMA ones; ``summary`` (plain
    JSON values) is stored with the measured ``chips``, ``rejects``,
    ``rejects_by_reason``, ``content_digest`` and ``manifest_sha256`` (of
    ``manifest.json``, see :func:`build_manifest`), and the whole summary is returned.
    ``output`` is a local path or a Hadoop URI. ``chips`` and ``rejects`` are each
    computed once: persist their common parent if it is expensive.
    """
    files = check_output(spark, output, overwrite)
    run = uuid.uuid4().hex[:12]
    staging = _run_path(output, "tmp", run)
    try:
        release = files.hold_lock(_run_path(output, "lock", run))
    except Exception as error:
        raise PermissionError(
            f"cannot write the chip dataset next to {output} ({error}); choose a writable preprocess.output"
        ) from error
    try:
        try:
            files.mkdirs(staging)
        except Exception as error:
            raise PermissionError(
                f"cannot write the chip dataset next to {output} (creating {staging} failed: {error}); "
                "choose a writable preprocess.output"
            ) from error
        log.info("writing the chip dataset to %s, moved to %s once complete", staging, output)
        try:
            _write_parts(spark, chips, rejects, staging, rows_per_file, row_group_size_mb)
            written = {**(summary or {}), **_measure(spark, staging)}
            if verify is not None:
                verify(written)
            manifest = json.dumps(build_manifest(staging), indent=1, sort_keys=True)
            files.write_text(_join(staging, MANIFEST_FILE), manifest)
            written["manifest_sha256"] = hashlib.sha256(manifest.encode("utf-8")).hexdigest()
            files.write_text(_join(staging, SUMMARY_FILE), json.dumps(written, indent=2, sort_keys=True))
            _publish(files, staging, output, overwrite, run)
        except BaseException as error:
            if isinstance(error, KeyboardInterrupt):  # Ctrl-C or SIGTERM (runtime.signals)
                _cancel_jobs(spark)
            files.delete(staging)
            raise
    finally:
        release()
    log.info("wrote %d chips and %d rejects to %s", written["chips"], written["rejects"], output)
    return written


# ------------------------------------------------------------------------------ manifest


def _data_files(output: str) -> Dict[str, Any]:
    """``{relative path: pyarrow FileInfo}`` of every file under chips/ and rejects/."""
    filesystem, root = pafs.FileSystem.from_uri(_to_url(output))
    found: Dict[str, Any] = {}
    for folder in (CHIPS_DIR, REJECTS_DIR):
        selector = pafs.FileSelector(f"{root.rstrip('/')}/{folder}", allow_not_found=True, recursive=True)
        for info in filesystem.get_file_info(selector):
            if info.type == pafs.FileType.File:
                found[info.path[len(root.rstrip("/")) + 1 :]] = info
    return found


def _sha256(output: str, relative: str) -> str:
    filesystem, root = pafs.FileSystem.from_uri(_to_url(output))
    digest = hashlib.sha256()
    with filesystem.open_input_stream(f"{root.rstrip('/')}/{relative}") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def build_manifest(output: str) -> Dict[str, Dict[str, Any]]:
    """Size, modification time (ns) and sha256 of every data file of the dataset at ``output``."""
    return {
        path: {"bytes": info.size, "mtime_ns": info.mtime_ns, "sha256": _sha256(output, path)}
        for path, info in sorted(_data_files(output).items())
    }


def _read_text(path: str) -> Optional[bytes]:
    filesystem, inner = pafs.FileSystem.from_uri(_to_url(path))
    try:
        with filesystem.open_input_stream(inner) as stream:
            return stream.read()
    except (FileNotFoundError, OSError):
        return None


def mismatch(output: str, content_digest: str, manifest_sha256: Optional[str], full: bool = False) -> Optional[str]:
    """Why the dataset at ``output`` is not the one a run recorded, or None when it is.

    The cheap check reads ``summary.json`` and ``manifest.json`` and lists the files:
    the content digest and the manifest's sha256 must be the recorded ones, and every
    data file must be there with the manifest's size and modification time, and no
    other. ``full`` also re-hashes every file against the manifest's sha256.
    """
    summary_bytes = _read_text(_join(output, SUMMARY_FILE))
    if summary_bytes is None:
        return f"no {SUMMARY_FILE} in {output}"
    if json.loads(summary_bytes).get("content_digest") != content_digest:
        return f"{output} holds a dataset of another content digest"
    manifest_bytes = _read_text(_join(output, MANIFEST_FILE))
    if manifest_bytes is None or hashlib.sha256(manifest_bytes).hexdigest() != manifest_sha256:
        return f"{output}: {MANIFEST_FILE} is missing or not the one the run recorded"
    manifest = json.loads(manifest_bytes)
    files = _data_files(output)
    if sorted(files) != sorted(manifest):
        return f"{output}: files were added or removed since it was written"
    for path, info in files.items():
        if (info.size, info.mtime_ns) != (manifest[path]["bytes"], manifest[path]["mtime_ns"]):
            return f"{output}: {path} was changed since it was written"
        if full and _sha256(output, path) != manifest[path]["sha256"]:
            return f"{output}: {path} no longer has the content it was written with"
    return None


def point_alias(output: str, alias: str) -> None:
    """Make the local symlink ``alias`` point at ``output``, replacing it in one step."""
    if _is_uri(output) or _is_uri(alias):
        return
    temporary = f"{alias}.tmp-{uuid.uuid4().hex[:12]}"
    os.symlink(os.path.relpath(output, os.path.dirname(alias)), temporary)
    os.replace(temporary, alias)


# --------------------------------------------------------------------------------- read


def read_summary(output: str) -> Dict[str, Any]:
    """The ``summary.json`` of a chip dataset (local path or any pyarrow-supported URI)."""
    filesystem, path = pafs.FileSystem.from_uri(_to_url(_join(output, SUMMARY_FILE)))
    try:
        with filesystem.open_input_stream(path) as stream:
            return json.loads(stream.read())
    except FileNotFoundError as error:
        raise FileNotFoundError(
            f"no {SUMMARY_FILE} in {output}: is it a chip dataset written by the preprocess step?"
        ) from error


def read_chips_spark(spark: SparkSession, output: str) -> DataFrame:
    """The chip rows as a Spark DataFrame (``chip`` holds the JPEG bytes)."""
    return spark.read.parquet(dataset_url(output))


def decode_chip(jpeg: bytes) -> np.ndarray:
    """JPEG chip bytes to a uint8 RGB array of shape (height, width, 3), as make_reader does."""
    field = ChipSchema.fields["chip"]
    return field.codec.decode(field, jpeg)


COMMON_METADATA_FILE = "_common_metadata"


class UntrustedDatasetError(ValueError):
    """A dataset's metadata holds a pickle that is not this project's own Unischema."""


def _pickle_globals(payload: bytes) -> List[str]:
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


def check_trusted_metadata(output: str) -> None:
    """Refuse a chip dataset whose pickled Unischema is not byte for byte :data:`ChipSchema`.

    Petastorm unpickles ``<chips>/_common_metadata`` with an unpickler that still admits
    ``builtins`` (so ``eval``/``exec``): opening a crafted dataset would run its code.
    The metadata is read here with pyarrow, which never unpickles, and compared with the
    pickle petastorm writes for this project's schema; anything else raises
    :class:`UntrustedDatasetError` naming the file and the globals it would import.
    """
    url = _join(dataset_url(output), COMMON_METADATA_FILE)
    filesystem, path = pafs.FileSystem.from_uri(url)
    try:
        with filesystem.open_input_file(path) as stream:
            metadata = pq.read_metadata(stream).metadata or {}
    except FileNotFoundError as error:
        raise FileNotFoundError(f"no {COMMON_METADATA_FILE} in {dataset_url(output)}: is it a chip dataset written by the preprocess step?") from error
    pickled = metadata.get(UNISCHEMA_KEY)  # bytes, as pyarrow returns keys
    if pickled is None or pickled == pickle.dumps(ChipSchema):
        return
    raise UntrustedDatasetError(
        f"{url}: its pickled Unischema is not this project's ChipSchema (it would import "
        f"{', '.join(_pickle_globals(pickled)) or 'nothing'}); refusing to unpickle it, since petastorm would run "
        "whatever it names. Open only chip datasets written by `python -m bigcat_ml.preprocess` with this "
        "version, or rebuild this one."
    )


def _after_first_ventilation(reader: Reader) -> Reader:
    """Return ``reader`` once every row group of a one-epoch read has been queued.

    Works around a race in petastorm 0.13.1's pools: ``get_results`` checks "all queued
    work is done" and then "the ventilator has finished" non-atomically, so a read
    issued while the ventilator thread is still queueing (it shuffles first, and it
    pauses whenever ``workers_count * 4`` items wait) can see "nothing queued, nothing
    left" and end the read early (measured: ~5% of reads of a 2-file dataset). A queued
    item is only a row-group index (the rows themselves wait in bounded result queues),
    so the ventilator's cap is lifted to the whole epoch: it then finishes at once,
    without waiting for a reader that is not reading yet (with the cap kept, waiting
    here blocked forever beyond ``workers_count * 4`` row groups). Multi-epoch reads are
    left as they are.
    """
    if reader.num_epochs == 1:
        ventilator = reader.ventilator
        # Private attribute: petastorm sets the cap at construction and offers no option.
        ventilator._max_ventilation_queue_size = max(
            ventilator._max_ventilation_queue_size, len(ventilator._items_to_ventilate)
        )
        while not ventilator.completed():
            time.sleep(0.001)
    return reader


def open_reader(output: str, **reader_kwargs: Any) -> Reader:
    """Petastorm ``make_reader`` over the chips: one row at a time, ``chip`` decoded.

    Use as ``with open_reader(out) as reader:``; keyword arguments go to make_reader
    (e.g. ``num_epochs``, ``shuffle_row_groups=False``, ``schema_fields``). Use this
    rather than ``make_reader`` directly: the dataset's pickled metadata is checked
    first (:func:`check_trusted_metadata`), and see :func:`_after_first_ventilation`.
    """
    check_trusted_metadata(output)
    return _after_first_ventilation(make_reader(dataset_url(output), **reader_kwargs))


def open_batch_reader(output: str, **reader_kwargs: Any) -> Reader:
    """Petastorm ``make_batch_reader`` over the chips: columnar batches, faster.

    Batches hold ``chip`` as JPEG bytes (the batch reader does not run codecs); decode
    them with :func:`decode_chip`. Petastorm's advice to use make_reader on a Unischema
    dataset is silenced because skipping the decoding is the point here. The metadata is
    checked first, as for :func:`open_reader`.
    """
    check_trusted_metadata(output)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Please use make_reader")
        reader = make_batch_reader(dataset_url(output), **reader_kwargs)
    return _after_first_ventilation(reader)


@contextmanager
def open_tf_dataset(output: str, batched: bool = False, **reader_kwargs: Any) -> Iterator["tf.data.Dataset"]:
    """A ``tf.data.Dataset`` over the chips via petastorm's ``make_petastorm_dataset``.

    ``batched=False``: one decoded chip per element (uint8, (h, w, 3)); ``batched=True``:
    batch-reader row groups with ``chip`` as JPEG strings (``tf.io.decode_jpeg`` them).
    The reader is stopped when the block exits.
    """
    from petastorm.tf_utils import make_petastorm_dataset  # imports TensorFlow: slow

    opener = open_batch_reader if batched else open_reader
    with opener(output, **reader_kwargs) as reader:
        yield make_petastorm_dataset(reader)
