"""The step registry: one record per runnable step, read by ``main``, the launcher and MLproject.

A record says what a step is (its name and function), what its result depends on (the
config sections and non-config inputs its reuse key covers), whether ``main`` runs it
and how to tell that a finished run's output is still there. Adding a step means one
module holding its function and record, and one line in :func:`registry`.
"""
from __future__ import annotations

import contextlib
import functools
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Callable, ContextManager, Dict, Iterator, Mapping, Optional, Tuple

from omegaconf import DictConfig

from bigcat_ml.tracking.reuse import step_key

StepResult = Dict[str, Any]


# Keys already computed inside a :func:`key_once` block, by step name.
_held_keys: ContextVar[Optional[Dict[str, str]]] = ContextVar("held_step_keys", default=None)


@contextlib.contextmanager
def key_once() -> Iterator[None]:
    """Inside the block each step's key is computed once.

    ``main`` computes a step's key to look for a finished run, then runs the step, which
    tags its run with the same key: without this, a preprocess of the real download would
    list its images folders twice. The block must not change what a key depends on.
    """
    token = _held_keys.set({})
    try:
        yield
    finally:
        _held_keys.reset(token)


def _no_inputs(cfg: DictConfig) -> Mapping[str, str]:
    return {}


def _always(cfg: DictConfig, run_id: str) -> bool:
    return True


def _never(cfg: DictConfig) -> bool:
    return False


def in_every_chain(cfg: DictConfig) -> bool:
    """``in_chain`` of the steps ``main`` runs for every config."""
    return True


def _hands_over_nothing(cfg: DictConfig, run_id: str) -> None:
    return None


def _claims_nothing(cfg: DictConfig) -> ContextManager[None]:
    return contextlib.nullcontext()


@dataclass(frozen=True)
class Step:
    """A runnable step.

    ``sections`` are the config sections its result depends on; ``ignore`` the dotted keys
    inside them that change how it runs but not what it produces; ``inputs`` adds what is
    not config: the identity of every file it reads (a chip dataset's digest, the Open
    Images files' sizes and times, a registered model's resolved version). ``in_chain`` says whether ``main`` runs it for a
    config, ``output_exists(cfg, run_id)`` whether the output that finished run ``run_id``
    recorded is still there, unchanged, so that it can be reused. ``hand_over`` tells the
    later steps of ``main``'s chain what a run (new or reused) produced, by setting their
    config (``train`` sets ``model.source`` to its model). ``claim`` is held while ``main``
    decides to reuse or run the step and runs it, so that of two ``main`` runs producing
    one output the second waits and reuses the first's (preprocess claims its folder).
    """

    name: str
    run: Callable[[DictConfig], StepResult]
    sections: Tuple[str, ...] = ()
    ignore: Tuple[str, ...] = ()
    inputs: Callable[[DictConfig], Mapping[str, str]] = field(default=_no_inputs)
    in_chain: Callable[[DictConfig], bool] = field(default=_never)
    output_exists: Callable[[DictConfig, str], bool] = field(default=_always)
    hand_over: Callable[[DictConfig, str], None] = field(default=_hands_over_nothing)
    claim: Callable[[DictConfig], ContextManager[None]] = field(default=_claims_nothing)

    def key(self, cfg: DictConfig) -> str:
        """The reuse key of this step under ``cfg``: its config and its inputs (see :func:`step_key`)."""
        held = _held_keys.get()
        if held is not None and self.name in held:
            return held[self.name]
        key = step_key(cfg, self.sections, self.ignore, self.inputs(cfg))
        if held is not None:
            held[self.name] = key
        return key

    def config_key(self, cfg: DictConfig) -> str:
        """The reuse key without the inputs: the same for every state of the files read,
        so that it can name a folder before those files exist (``sample_data`` writes them)."""
        return step_key(cfg, self.sections, self.ignore)


@functools.cache
def registry() -> Dict[str, Step]:
    """Every step by name, in chain order.

    Imported here, on first use, because ``main`` itself is a step that reads the registry.
    """
    from bigcat_ml import compare, evaluate, main, preprocess, sample_data, train

    return {
        step.name: step
        for step in (sample_data.STEP, preprocess.STEP, train.STEP, evaluate.STEP, main.STEP, compare.STEP)
    }


def get(name: str) -> Step:
    """The step called ``name``, or an error listing the steps there are."""
    steps = registry()
    if name not in steps:
        raise KeyError(f"no step named {name!r}; the steps are: {', '.join(steps)}")
    return steps[name]


def chain(cfg: DictConfig) -> Tuple[Step, ...]:
    """The steps ``main`` runs for ``cfg``, in order."""
    return tuple(step for step in registry().values() if step.in_chain(cfg))
