"""Progress of long loops: a bar with ETA on a terminal, one log line per stage elsewhere.

CI logs and piped output would fill with carriage-return redraws, so the bar is only drawn
when stderr is a terminal and ``CI`` is not set; otherwise the stage logs one line when it
starts and one when it ends (with its count and time). Library loops (local inference,
the sample writer, training loops) use :func:`progress` and need not know which; a step
made of a few long Spark phases (preprocess) uses :func:`phases`.
"""
from __future__ import annotations

import logging
import os
import sys
import time
from contextlib import contextmanager
from typing import Callable, Iterator, Optional, Sequence

from tqdm import tqdm

log = logging.getLogger(__name__)


def interactive() -> bool:
    """True when a person watches: stderr is a terminal and no CI system is running us."""
    return sys.stderr.isatty() and not os.environ.get("CI")


class _Counter:
    """The ``update(n)`` side of a bar, for non-interactive runs."""

    def __init__(self) -> None:
        self.n = 0

    def update(self, n: int = 1) -> None:
        self.n += n


@contextmanager
def progress(stage: str, total: Optional[int], unit: str) -> Iterator[_Counter]:
    """A progress counter for ``stage``: call ``.update(n)`` as ``n`` more ``unit``s are done.

    On a terminal: a tqdm bar with rate and ETA (``total`` may be None when unknown).
    Elsewhere: ``<stage>: <total> <unit>s…`` then ``<stage>: <n> <unit>s in <s> s``.
    """
    if interactive():
        with tqdm(total=total, desc=stage, unit=unit, dynamic_ncols=True) as bar:
            yield bar
        return
    counter = _Counter()
    start = time.perf_counter()
    log.info("%s: %s %ss…", stage, total if total is not None else "?", unit)
    yield counter
    log.info("%s: %d %ss in %.1f s", stage, counter.n, unit, time.perf_counter() - start)


@contextmanager
def phases(stage: str, names: Sequence[str]) -> Iterator[Callable[[str], None]]:
    """Progress through the named phases of a long step: call ``begin(name)`` as each starts.

    For steps whose work is a few long Spark jobs rather than a loop of items. On a
    terminal: a bar over the phases, the current one beside it. Elsewhere: one line per
    phase (``<stage> 2/5: <name>…``) and one at the end with the time taken.
    """
    with progress(stage, len(names), "phase") as done:
        begun = []

        def begin(name: str) -> None:
            if begun:
                done.update(1)
            begun.append(name)
            if isinstance(done, tqdm):
                done.set_postfix_str(name)
            else:
                log.info("%s %d/%d: %s…", stage, len(begun), len(names), name)

        yield begin
        done.update(1 if begun else 0)
