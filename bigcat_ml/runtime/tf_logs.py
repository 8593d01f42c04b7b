"""TensorFlow's start-up logs, kept out of the terminal unless the user asks for them.

``TF_CPP_MIN_LOG_LEVEL`` hides TensorFlow's C++ INFO/WARNING logs (the CPU-feature lines),
but not all of them: TensorFlow 2.21 logs the oneDNN banner through Abseil from static
initialisers of ``libtensorflow_framework.so.2`` and of the profiler plugin (each with its own
Abseil), while the shared libraries load, before anything can lower Abseil's log level
(docs/decisions.md, 2026-11-30). So the first ``import tensorflow`` of a process — wherever it
happens: keras, petastorm's ``tf_utils`` or our own lazy imports, in the driver or in a Spark
Python worker — runs with file descriptor 2 sent to a temporary file, and every line that is
not start-up noise is written back to stderr afterwards. oneDNN itself stays on
(``TF_ENABLE_ONEDNN_OPTS=0`` would change the numerics).
"""
from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import os
import re
import sys
import tempfile
from contextlib import contextmanager
from types import ModuleType
from typing import Iterator, Optional, Sequence

from bigcat_ml.runtime.console import TF_LOG_LEVEL_ENV, verbose

# Abseil's warning before its first line, its I/W-prefixed lines (``I0000 00:00:1796051566.187380
# 11961 port.cc:153] …``) and the second line of TensorFlow's CPU-feature message.
_NOISE = re.compile(
    r"^(WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    r"|[IW]\d{4} \d\d:\d\d:\d+\.\d+ +\d+ \S+:\d+\] "
    r"|To enable the following instructions: .* rebuild TensorFlow with the appropriate compiler flags\.)"
)

def is_start_up_noise(line: str) -> bool:
    """Whether a stderr line is one of TensorFlow's (Abseil's) start-up INFO/WARNING lines."""
    return bool(_NOISE.match(line))


@contextmanager
def start_up_noise_dropped() -> Iterator[None]:
    """Within the block, what reaches file descriptor 2 (C++ and Python alike) is held back;
    on leaving, every line that is not start-up noise goes to stderr, in order."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            lines = held.read().decode("utf-8", "replace").splitlines(keepends=True)
            sys.stderr.write("".join(line for line in lines if not is_start_up_noise(line)))
            sys.stderr.flush()


class _QuietLoader(importlib.abc.Loader):
    """TensorFlow's own loader, run with the start-up noise dropped."""

    def __init__(self, loader: importlib.abc.Loader) -> None:
        self._loader = loader

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> Optional[ModuleType]:
        return self._loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        # Leave no trace: the module keeps TensorFlow's loader.
        module.__loader__ = module.__spec__.loader = self._loader
        if verbose():
            self._loader.exec_module(module)
            return
        with start_up_noise_dropped():
            self._loader.exec_module(module)


class _FirstTensorFlowImport(importlib.abc.MetaPathFinder):
    """Finds ``tensorflow`` as Python would, once, and hands it over with the quiet loader."""

    def find_spec(self, name: str, path: Optional[Sequence[str]], target: Optional[ModuleType] = None):
        if name != "tensorflow":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)  # the other finders, as if this one were not there
        if spec is not None and spec.loader is not None:
            spec.loader = _QuietLoader(spec.loader)
        return spec


def install() -> None:
    """Quiet the first ``import tensorflow`` of this process (a no-op once TensorFlow is
    imported), and default TensorFlow's C++ logs to errors only unless verbose (the entry
    point's :func:`~bigcat_ml.runtime.console.set_verbose` then sets them either way)."""
    os.environ.setdefault(TF_LOG_LEVEL_ENV, "0" if verbose() else "2")
    if "tensorflow" in sys.modules or any(isinstance(f, _FirstTensorFlowImport) for f in sys.meta_path):
        return
    sys.meta_path.insert(0, _FirstTensorFlowImport())
