"""TEST-ONLY fault injection, so tests can prove Spark's task retries keep outputs whole."""
from __future__ import annotations

import os
from pathlib import Path


def fail_once(marker_dir: str, step: str) -> None:
    """Fail the first task attempt that gets here; later attempts run normally.

    Set by ``<step>.fault_injection.fail_once_marker_dir``. The first attempt creates the
    marker file ``<step>_failed_once`` atomically and raises; every later attempt finds it,
    so a job succeeds only if Spark retries the task (local mode needs
    ``local[N,maxFailures]``). The folder must be visible to every executor.
    """
    marker = Path(marker_dir) / marker_name(step)
    try:
        os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return
    raise RuntimeError(f"injected fault: {step} fails once (marker {marker})")


def marker_name(step: str) -> str:
    return f"{step}_failed_once"
