"""Fault injection for tests, from outside the library: a task function that fails once.

Spark starts its Python workers through a daemon module (``spark.python.daemon.module``).
:mod:`helpers.fault_daemon` is such a module: in each forked worker it replaces one
library function (named by :data:`FAULT_ENV`) with a wrapper whose first call, across all
workers and attempts, fails. Spark unpickles task functions by module and name, so the
workers run the wrapper, and a job succeeds only if Spark retries the failed task. The
library carries no test hook.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Dict, List, Tuple

# "module:function:marker_dir" — read by helpers.fault_daemon in every Python worker.
FAULT_ENV = "BIGCAT_TEST_FAIL_ONCE"
TESTS_DIR = Path(__file__).resolve().parents[1]


def marker(marker_dir: Path, function: str) -> Path:
    """The file whose creation marks the one failed attempt of ``function``."""
    return Path(marker_dir) / f"{function}_failed_once"


def fail_once(marker_dir: str, function: str) -> None:
    """Raise on the first call anywhere (the marker is created atomically), pass after."""
    path = marker(Path(marker_dir), function)
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return
    raise RuntimeError(f"injected fault: {function} fails once (marker {path})")


def fail_once_in_workers(module: str, function: str, marker_dir: Path) -> Tuple[List[str], Dict[str, str]]:
    """Hydra overrides and environment that make ``module.function`` fail once in Spark's workers.

    For a step run as a subprocess (``python -m bigcat_ml.<step>``): its Spark session
    starts Python workers through :mod:`helpers.fault_daemon`, which finds this package
    on ``PYTHONPATH``.
    """
    overrides = ["++spark.conf.spark.python.daemon.module=helpers.fault_daemon"]
    pythonpath = os.pathsep.join(filter(None, [str(TESTS_DIR), os.environ.get("PYTHONPATH")]))
    return overrides, {FAULT_ENV: f"{module}:{function}:{marker_dir}", "PYTHONPATH": pythonpath}
