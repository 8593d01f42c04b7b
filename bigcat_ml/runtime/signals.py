"""SIGTERM ends a step the way Ctrl-C does: by unwinding, so every cleanup runs.

A scheduler, ``kill`` or a cluster manager stops a job with SIGTERM, whose default
action ends the process on the spot: MLflow runs stay RUNNING forever, the staging
folder of a half-written dataset stays on disk, and Spark is not stopped. Raised as an
exception instead, it passes through every ``with``/``finally`` on the way out: the
dataset writer deletes its staging folder, the MLflow runs end as KILLED, and the entry
point stops Spark.
"""
from __future__ import annotations

import contextlib
import logging
import signal
from types import FrameType
from typing import Iterator, Optional

log = logging.getLogger(__name__)


class Terminated(KeyboardInterrupt):
    """SIGTERM received; a KeyboardInterrupt so that code handling Ctrl-C handles it too."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"stopped by signal {signal.Signals(signum).name}")
        self.signum = signum


def _raise_terminated(signum: int, frame: Optional[FrameType]) -> None:
    raise Terminated(signum)


@contextlib.contextmanager
def signals_unwind() -> Iterator[None]:
    """For the block: SIGTERM raises :class:`Terminated`, SIGINT KeyboardInterrupt (Python's
    default, restored here in case a library replaced it); the previous handlers after."""
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    signal.signal(signal.SIGTERM, _raise_terminated)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def exit_code(interrupt: KeyboardInterrupt) -> int:
    """The shell's code for a process ended by this signal: 128 + its number."""
    return 128 + getattr(interrupt, "signum", signal.SIGINT)
