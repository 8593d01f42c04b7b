"""Fault injection for tests, from outside the library: a task function that fails once.

Spark starts its Python workers through a daemon module (``spark.python.daemon.module``).
:mod:`helpers.fault_daemon` is such a module: in each forked worker it replaces one
library function (named by :data:`FAULT_ENV`) with a wrapper whose first call, across all
workers and attempts, fails. Spark unpickles task functions by module and name, so the
workers run the wrapper, and a job succeeds only if Spark retries the failed task. The
library carries no test hook.
"""
from __future__ import annotations

import functools
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Dict, List, Tuple

from pyspark import cloudpickle

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


class FailingOnce:
    """``function`` behind :func:`fail_once`: picklable, so Spark can ship it to its workers."""

    def __init__(self, function: Callable[..., Any], marker_dir: Path) -> None:
        self.function, self.marker_dir = function, str(marker_dir)
        functools.update_wrapper(self, function)  # Spark names tasks after __name__

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        fail_once(self.marker_dir, self.function.__name__)
        return self.function(*args, **kwargs)


def fail_once_in_process(monkeypatch: Any, module: ModuleType, function: str, marker_dir: Path) -> None:
    """Make ``module.function`` fail once in the tasks of this process's Spark session.

    The library looks the function up when it builds a task, so the patched attribute is
    what Spark pickles; this module is pickled by value, as workers cannot import tests.
    """
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    monkeypatch.setattr(module, function, FailingOnce(getattr(module, function), marker_dir))


def fail_once_in_workers(module: str, function: str, marker_dir: Path) -> Tuple[List[str], Dict[str, str]]:
    """Hydra overrides and environment that make ``module.function`` fail once in Spark's workers.

    For a step run as a subprocess (``python -m bigcat_ml.<step>``): its Spark session
    starts Python workers through :mod:`helpers.fault_daemon`, which finds this package
    on ``PYTHONPATH``.
    """
    overrides = ["++spark.conf.spark.python.daemon.module=helpers.fault_daemon"]
    pythonpath = os.pathsep.join(filter(None, [str(TESTS_DIR), os.environ.get("PYTHONPATH")]))
    # Verbose: Spark's WARN that the task was lost (and so retried) reaches stderr.
    return overrides, {FAULT_ENV: f"{module}:{function}:{marker_dir}", "PYTHONPATH": pythonpath, "BIGCAT_VERBOSE": "1"}
