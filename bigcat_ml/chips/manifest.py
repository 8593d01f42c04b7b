"""What a chip dataset folder says about itself, and the checks a reader makes against it.

``summary.json`` holds the counts, the selected classes and the content digest;
``manifest.json``, written last, the size, modification time and sha256 of every other
file (:mod:`bigcat_ml.chips.layout`). A finished run is reused only while the folder
still matches what it recorded (:func:`mismatch`), and a step reads the summary only
once it is the one the manifest records (:func:`read_summary`).
"""
from __future__ import annotations

import hashlib
import json
from typing import Any, Dict, Mapping, Optional

from bigcat_ml.chips import trusted
from bigcat_ml.chips.layout import MANIFEST_FILE, SUMMARY_CONTENT_DIGEST, SUMMARY_FILE, SUMMARY_MANIFEST_SHA256
from bigcat_ml.storage import fs


def _data_files(output: str) -> Dict[str, Any]:
    """``{path below output: (bytes, modification time)}`` of every file but the manifest."""
    return {relative: found for relative, found in fs.list_files(output).items() if relative != MANIFEST_FILE}


def build_manifest(output: str) -> Dict[str, Dict[str, Any]]:
    """Size, modification time and sha256 of every file of the dataset at ``output``
    (``summary.json`` included) but the manifest itself."""
    return {
        path: {"bytes": size, "mtime": mtime, "sha256": fs.sha256(fs.join(output, path))}
        for path, (size, mtime) in sorted(_data_files(output).items())
    }


def _read_if_there(path: str) -> Optional[bytes]:
    try:
        return fs.read_bytes(path)
    except (FileNotFoundError, OSError):
        return None


def _summary_problem(output: str, summary_bytes: bytes, manifest: Mapping[str, Any]) -> Optional[str]:
    """Why ``summary.json`` is not the one ``manifest.json`` records, or None when it is."""
    entry = manifest.get(SUMMARY_FILE)
    if entry is None:
        return f"{output}: its {MANIFEST_FILE} does not list {SUMMARY_FILE} (written by an older version)"
    if hashlib.sha256(summary_bytes).hexdigest() != entry["sha256"]:
        return f"{output}: {SUMMARY_FILE} is not the one its {MANIFEST_FILE} records (edited after it was written)"
    return None


def mismatch(output: str, content_digest: str, manifest_sha256: Optional[str], full: bool = False) -> Optional[str]:
    """Why the dataset at ``output`` is not the one a run recorded, or None when it is.

    The cheap check reads ``summary.json`` and ``manifest.json`` and lists the files: the
    manifest's sha256 must be the recorded one, the summary must hash to the manifest's
    entry and hold the recorded content digest, and every other file must be there with
    the manifest's size and modification time, and no other. ``full`` also re-hashes
    every file against the manifest's sha256.
    """
    summary_bytes = _read_if_there(fs.join(output, SUMMARY_FILE))
    if summary_bytes is None:
        return f"no {SUMMARY_FILE} in {output}"
    manifest_bytes = _read_if_there(fs.join(output, MANIFEST_FILE))
    if manifest_bytes is None or hashlib.sha256(manifest_bytes).hexdigest() != manifest_sha256:
        return f"{output}: {MANIFEST_FILE} is missing or not the one the run recorded"
    manifest = json.loads(manifest_bytes)
    problem = _summary_problem(output, summary_bytes, manifest)
    if problem:
        return problem
    if json.loads(summary_bytes).get(SUMMARY_CONTENT_DIGEST) != content_digest:
        return f"{output} holds a dataset of another content digest"
    found = _data_files(output)
    added, removed = sorted(set(found) - set(manifest)), sorted(set(manifest) - set(found))
    if added or removed:
        return (
            f"{output}: files were added ({trusted.name_some(added) or 'none'}) or removed "
            f"({trusted.name_some(removed) or 'none'}) since it was written"
        )
    for path, (size, mtime) in found.items():
        if (size, mtime) != (manifest[path]["bytes"], manifest[path]["mtime"]):
            return f"{output}: {path} was changed since it was written"
        if full and fs.sha256(fs.join(output, path)) != manifest[path]["sha256"]:
            return f"{output}: {path} no longer has the content it was written with"
    return None


def read_summary(output: str) -> Dict[str, Any]:
    """The ``summary.json`` of a chip dataset (local path or URI), once it is the one its
    ``manifest.json`` records (evaluate and train take the counts and the selected classes,
    whose order is the label order, from it), with ``manifest_sha256``: what
    :func:`bigcat_ml.chips.writer.write_chip_dataset` returned."""
    try:
        summary_bytes = fs.read_bytes(fs.join(output, SUMMARY_FILE))
    except FileNotFoundError as error:
        raise FileNotFoundError(
            f"no {SUMMARY_FILE} in {output}: is it a chip dataset written by the preprocess step?"
        ) from error
    manifest_bytes = _read_if_there(fs.join(output, MANIFEST_FILE))
    if manifest_bytes is None:
        problem: Optional[str] = f"no {MANIFEST_FILE} in {output}"
    else:
        problem = _summary_problem(output, summary_bytes, json.loads(manifest_bytes))
    if problem:
        raise trusted.UntrustedDatasetError(
            f"{problem}; its counts and selected classes cannot be trusted: {trusted.REBUILD_ADVICE}"
        )
    return {**json.loads(summary_bytes), SUMMARY_MANIFEST_SHA256: hashlib.sha256(manifest_bytes).hexdigest()}
