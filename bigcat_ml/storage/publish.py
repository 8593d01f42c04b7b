"""Publish a folder written elsewhere at its final place, so that readers never see half of it.

A run writing ``<output>`` owns ``<output>.tmp-<run>`` (its staging folder),
``<output>.old-<run>`` (the previous folder, only while a two-rename overwrite runs) and
``<output>.lock-<run>`` (locked for as long as the run's process lives). Names never
start with ``.`` or ``_``, which Spark would hide.

On the local disk (plain paths and ``file://``) the move is atomic and honest:
``renameat2`` refuses an existing target (``overwrite=false`` is enforced by the move
itself, so of two runs one wins and the other fails) and swaps old and new in one step
(an overwrite leaves the previous or the new folder at ``<output>`` at every instant);
the kernel drops a run's ``flock`` when its process dies, which proves a leftover dead.
Other schemes go through :mod:`bigcat_ml.storage.fs`, which has neither primitive: the
target is checked, then renamed, and leftovers are reported, never removed.

A published folder is not replaced under its readers: a reader holds a shared ``flock``
on the folder itself while it reads (:func:`reading`), and an overwrite swaps the new
folder in only once it holds that lock exclusively, waiting a bounded time and then
refusing. A run that builds ``<output>`` for others to reuse may first take
``<output>.claim`` (:func:`claimed`), so that a second run waits for it instead of
building the same folder again. Both are local-disk locks; on other stores there is no
lock that dies with its owner, so neither waits: an overwrite there may remove files a
reader is still reading, and two runs may both build one output.
"""
from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import functools
import logging
import os
import re
import shutil
import time
import uuid
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional, Protocol

from bigcat_ml.storage import fs

log = logging.getLogger(__name__)

Release = Callable[[], None]

# renameat2(2) flags: fail if the target exists / swap two paths, each in one atomic step.
_RENAME_NOREPLACE = 1
_RENAME_EXCHANGE = 2
_AT_FDCWD = -100
_UNSUPPORTED = (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP)
_LEFTOVER = re.compile(r"\.(tmp|old|lock)-([0-9a-f]{12})$")
# How often a run waiting for a lock tries again, in seconds.
_POLL_S = 0.2


class Folders(Protocol):
    """The folder operations publishing needs, on one kind of store."""

    def exists(self, path: str) -> bool: ...
    def mkdirs(self, path: str) -> None: ...
    def move_noreplace(self, src: str, dst: str) -> None: ...
    def exchange(self, a: str, b: str) -> bool: ...
    def delete(self, path: str) -> None: ...
    def siblings(self, path: str) -> List[str]: ...
    def hold_lock(self, path: str) -> Release: ...
    def probe_lock(self, path: str) -> Optional[Release]: ...
    def lock_folder(self, path: str, shared: bool, wait_s: float) -> Optional[Release]: ...


def _renameat2(src: str, dst: str, flags: int) -> None:
    """Linux ``renameat2``; OSError(ENOSYS/EINVAL) where the kernel, libc or filesystem lacks it."""
    function = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    if function is None:
        raise OSError(errno.ENOSYS, "renameat2 is not available", src)
    function.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if function(_AT_FDCWD, os.fsencode(src), _AT_FDCWD, os.fsencode(dst), flags) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code), src, None, dst)


def _unlock(path: str, descriptor: int) -> None:
    """Remove a lock file, then drop its lock (closing the descriptor releases the flock)."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    os.close(descriptor)


def _flock_within(descriptor: int, mode: int, wait_s: float) -> bool:
    """Take ``flock(mode)`` on ``descriptor``, trying for up to ``wait_s`` seconds; False if it stayed taken."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            fcntl.flock(descriptor, mode | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(_POLL_S)


def _lock_what_is_at(path: str, open_path: Callable[[], int], mode: int, wait_s: float) -> Optional[int]:
    """A descriptor of what is at ``path`` now, locked with ``mode``; None if it stayed taken for ``wait_s``.

    What a waiter finally locks may have been replaced or removed meanwhile (a folder
    swapped by an overwrite, a claim file removed by its holder): then it locks what is
    at ``path`` now, so that a lock always guards the file the path names.
    """
    deadline = time.monotonic() + wait_s
    while True:
        descriptor = open_path()
        if not _flock_within(descriptor, mode, max(0.0, deadline - time.monotonic())):
            os.close(descriptor)
            return None
        try:
            now = os.stat(path)
        except FileNotFoundError:
            now = None
        held = os.fstat(descriptor)
        if now is not None and (now.st_dev, now.st_ino) == (held.st_dev, held.st_ino):
            return descriptor
        os.close(descriptor)


class LocalFolders:
    """Folder operations on the local disk, atomic where Linux allows."""

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
        if os.path.exists(dst):  # no atomic primitive on this filesystem: check, then rename
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
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path, ignore_errors=True)
        elif os.path.lexists(path):
            os.unlink(path)

    def siblings(self, path: str) -> List[str]:
        """Names in ``path``'s folder that start with its own name and a dot."""
        parent, name = os.path.split(path.rstrip("/"))
        try:
            return [n for n in os.listdir(parent or ".") if n.startswith(name + ".")]
        except (FileNotFoundError, NotADirectoryError):  # the write itself reports a bad parent
            return []

    def hold_lock(self, path: str) -> Release:
        """Create and lock ``path`` for as long as this process lives; return its release.

        The kernel drops the lock when the process dies however it dies, so a lock that
        :meth:`probe_lock` can take proves its owner is dead.
        """
        Path(path).parent.mkdir(parents=True, exist_ok=True)  # the output's folder may be new
        descriptor = os.open(path, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o644)
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return functools.partial(_unlock, path, descriptor)

    def probe_lock(self, path: str) -> Optional[Release]:
        """The release of ``path``'s lock if its owner is dead (this process now holds it), else None."""
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

    def lock_folder(self, path: str, shared: bool, wait_s: float) -> Optional[Release]:
        """Lock the folder at ``path`` itself, shared (a reader) or exclusive (a run replacing
        it); the release, or None if others still held it after ``wait_s`` seconds."""
        mode = fcntl.LOCK_SH if shared else fcntl.LOCK_EX
        opened = functools.partial(os.open, path, os.O_RDONLY | os.O_DIRECTORY)
        descriptor = _lock_what_is_at(path, opened, mode, wait_s)
        return None if descriptor is None else functools.partial(os.close, descriptor)


class UriFolders:
    """The same operations on any other store, through :mod:`bigcat_ml.storage.fs`: no
    atomic primitive and no lock that dies with its owner."""

    def exists(self, path: str) -> bool:
        return fs.exists(path)

    def mkdirs(self, path: str) -> None:
        fs.mkdirs(path)

    def move_noreplace(self, src: str, dst: str) -> None:
        if fs.exists(dst):
            raise FileExistsError(errno.EEXIST, "exists", dst)
        fs.rename(src, dst)

    def exchange(self, a: str, b: str) -> bool:
        return False

    def delete(self, path: str) -> None:
        fs.delete(path)

    def siblings(self, path: str) -> List[str]:
        filesystem, inner = fs.resolve(path)
        parent, name = inner.rstrip("/").rsplit("/", 1)
        if not filesystem.exists(parent):
            return []
        return [p.rsplit("/", 1)[-1] for p in filesystem.ls(parent, detail=False) if p.rsplit("/", 1)[-1].startswith(name + ".")]

    def hold_lock(self, path: str) -> Release:
        return lambda: None

    def probe_lock(self, path: str) -> Optional[Release]:
        return None

    def lock_folder(self, path: str, shared: bool, wait_s: float) -> Optional[Release]:
        return lambda: None


def folders_for(output: str) -> Folders:
    """The folder operations serving ``output``."""
    return LocalFolders() if fs.local_path(output) is not None else UriFolders()


def _on_store(output: str) -> str:
    """``output`` as the operations of :func:`folders_for` name it (a local path for ``file://``)."""
    return fs.local_path(output) or output


def run_path(output: str, kind: str, run: str) -> str:
    return f"{output.rstrip('/')}.{kind}-{run}"


def sweep_leftovers(output: str) -> None:
    """Report the folders other runs left next to ``output``; clean the dead ones.

    A leftover whose lock this process can take belonged to a run that is dead (the
    kernel released its lock): its folders are removed, and a previous folder it had
    moved aside is first put back if ``output`` is missing. A leftover whose lock is held
    belongs to a running run and is left alone; one without a lock (other stores, or a
    run that died while creating it) cannot be proven dead and is only reported.
    """
    output = _on_store(output)
    folders = folders_for(output)
    runs: Dict[str, List[str]] = {}
    for name in folders.siblings(output):
        match = _LEFTOVER.search(name)
        if match and name == f"{os.path.basename(output.rstrip('/'))}.{match.group(1)}-{match.group(2)}":
            runs.setdefault(match.group(2), []).append(match.group(1))
    for run, kinds in sorted(runs.items()):
        release = folders.probe_lock(run_path(output, "lock", run)) if "lock" in kinds else None
        left = [run_path(output, kind, run) for kind in ("tmp", "old") if kind in kinds]
        if release is None:
            log.warning(
                "%s: left by another run that is still writing or cannot be proven dead; "
                "remove them by hand if no run is writing %s", ", ".join(left) or "a lock file", output,
            )
            continue
        try:
            old = run_path(output, "old", run)
            if "old" in kinds and not folders.exists(output):
                folders.move_noreplace(old, output)
                log.warning("restored %s from %s, left by a run that died while replacing it", output, old)
            for folder in left:
                folders.delete(folder)
            log.warning("removed %s, left by a run that died", ", ".join(left) or "a stale lock")
        finally:
            release()


def _publish(
    folders: Folders, staging: str, output: str, overwrite: bool, run: str, advice: str, wait_s: float
) -> None:
    """Move the complete ``staging`` folder to ``output``: the previous or the new folder
    is at ``output`` at every instant, and ``overwrite=False`` is enforced by the move.

    The previous folder is replaced (and deleted) only once no reader holds it
    (:func:`reading`), waiting up to ``wait_s`` seconds for them, else refused."""
    if not overwrite or not folders.exists(output):
        try:
            folders.move_noreplace(staging, output)
            return
        except FileExistsError:
            if not overwrite:
                raise FileExistsError(
                    f"{output} was published by another run while this one was writing; nothing was replaced. {advice}"
                ) from None
    release = folders.lock_folder(output, shared=False, wait_s=wait_s)
    if release is None:
        raise TimeoutError(
            f"{output} was still being read by another run after {wait_s:g} s; nothing was replaced. "
            "Run again once that run ends"
        )
    try:
        _replace(folders, staging, output, run)
    finally:
        release()


def _replace(folders: Folders, staging: str, output: str, run: str) -> None:
    """Replace the folder at ``output`` by ``staging`` and delete the previous one."""
    if folders.exchange(staging, output):
        folders.delete(staging)  # it now holds the previous folder
        return
    # No atomic exchange: move the previous folder aside, then the new one in. A kill
    # between the two leaves it in <output>.old-<run>, which the next run restores.
    old = run_path(output, "old", run)
    folders.move_noreplace(output, old)
    try:
        folders.move_noreplace(staging, output)
    except BaseException:
        folders.move_noreplace(old, output)
        raise
    folders.delete(old)


@contextlib.contextmanager
def staged(
    output: str,
    overwrite: bool,
    setting: str = "the output",
    overwrite_setting: str = "overwrite",
    wait_s: float = 0.0,
) -> Iterator[str]:
    """Yield a fresh staging folder next to ``output``; publish it there when the block ends.

    Call :func:`sweep_leftovers` first, to clean what dead runs left. The block writes
    the staging folder completely (raise in it to abandon it: the staging folder is
    deleted, ``output`` untouched). An existing ``output`` is replaced only with
    ``overwrite``, also when another run publishes it meanwhile (FileExistsError), and
    only once no reader holds it, waiting up to ``wait_s`` seconds (TimeoutError).
    Errors name ``setting`` and ``overwrite_setting``, the config values a user changes.
    """
    target = _on_store(output)
    folders = folders_for(target)
    run = uuid.uuid4().hex[:12]
    staging = run_path(target, "tmp", run)
    try:
        release = folders.hold_lock(run_path(target, "lock", run))
    except Exception as error:
        raise PermissionError(f"cannot write next to {output} ({error}); choose a writable {setting}") from error
    try:
        try:
            folders.mkdirs(staging)
        except Exception as error:
            raise PermissionError(
                f"cannot write next to {output} (creating {staging} failed: {error}); choose a writable {setting}"
            ) from error
        try:
            yield staging
            advice = f"Set {overwrite_setting}=true to replace it or choose another {setting}"
            _publish(folders, staging, target, overwrite, run, advice, wait_s)
        except BaseException:
            folders.delete(staging)
            raise
    finally:
        release()


@contextlib.contextmanager
def reading(output: str, wait_s: float) -> Iterator[None]:
    """Hold a shared lock on the published folder at ``output`` for the block, so that an
    overwrite waits for the block to end before it replaces and deletes the folder.

    Waits up to ``wait_s`` seconds while a run holds it exclusively (it is replacing the
    folder: the block then reads the new one), else TimeoutError. Nothing is locked when
    ``output`` is missing (nothing to protect; reading it reports that) or on other stores.
    """
    target = _on_store(output)
    folders = folders_for(target)
    if not folders.exists(target):
        yield
        return
    release = folders.lock_folder(target, shared=True, wait_s=wait_s)
    if release is None:
        raise TimeoutError(f"{output} was still being replaced by another run after {wait_s:g} s; run again once it ends")
    try:
        yield
    finally:
        release()


def _holder(claim: str) -> str:
    """What the claim file says of the run holding it."""
    with contextlib.suppress(OSError):
        return Path(claim).read_text().strip() or "a run"
    return "a run"


@contextlib.contextmanager
def claimed(output: str, wait_s: float, setting: str = "the output", wait_setting: str = "the wait") -> Iterator[None]:
    """Hold ``<output>.claim`` exclusively for the block: one run at a time decides whether
    to build ``output`` and builds it, and the next one waits for it to end, so that it
    finds the finished run to reuse instead of replacing the folder under its readers.

    Waits up to ``wait_s`` seconds, logging who holds it, else TimeoutError naming
    ``setting`` and ``wait_setting``. The claim file goes when the block ends (the
    kernel drops the lock if the process dies first; the next run takes it over). Other
    stores have no such lock: the block runs unclaimed.
    """
    target = _on_store(output)
    if fs.local_path(output) is None:
        log.info("%s: not on the local disk, so no lock keeps another run from building it at the same time", output)
        yield
        return
    claim = f"{target.rstrip('/')}.claim"
    Path(claim).parent.mkdir(parents=True, exist_ok=True)
    opened = functools.partial(os.open, claim, os.O_CREAT | os.O_RDWR, 0o644)
    descriptor = _lock_what_is_at(claim, opened, fcntl.LOCK_EX, 0.0)
    if descriptor is None:
        log.info("%s is being built by %s; waiting up to %g s for it to end", output, _holder(claim), wait_s)
        descriptor = _lock_what_is_at(claim, opened, fcntl.LOCK_EX, wait_s)
    if descriptor is None:
        raise TimeoutError(
            f"{output} was still being built by {_holder(claim)} after {wait_s:g} s; nothing was written. "
            f"Run again once it ends, raise {wait_setting}, or choose another {setting}"
        )
    os.ftruncate(descriptor, 0)
    os.write(descriptor, f"the run of process {os.getpid()}".encode())
    try:
        yield
    finally:
        _unlock(claim, descriptor)
