"""A pyspark daemon whose forked workers run one library function through :func:`fail_once`.

Started by Spark as ``python -m helpers.fault_daemon`` (``spark.python.daemon.module``);
see :mod:`helpers.faults`. The function is patched in each forked worker, after the fork,
so no library (and no TensorFlow) is imported into the daemon itself.
"""
from __future__ import annotations

import functools
import importlib
import os

from pyspark import daemon

from helpers.faults import FAULT_ENV, fail_once

_worker_main = daemon.worker_main


def _patch() -> None:
    module_name, function, marker_dir = os.environ[FAULT_ENV].split(":", 2)
    module = importlib.import_module(module_name)
    original = getattr(module, function)

    @functools.wraps(original)
    def failing_once(*args, **kwargs):
        fail_once(marker_dir, function)
        return original(*args, **kwargs)

    setattr(module, function, failing_once)


def _worker_main_with_fault(*args, **kwargs):
    _patch()
    return _worker_main(*args, **kwargs)


if __name__ == "__main__":
    daemon.worker_main = _worker_main_with_fault
    daemon.manager()
