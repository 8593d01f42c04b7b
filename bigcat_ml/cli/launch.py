"""Run a Hydra entry point from an MLflow project command.

``mlflow run`` passes a parameter as one shell-quoted word, so ``-P overrides="a=1 b=2"``
would reach Hydra as a single malformed override. This splits it into Hydra's words and
hands them to the step's ``@hydra.main`` function.

``mlflow run`` also creates the project run and hands it over (``MLFLOW_RUN_ID``): a
single job's first run resumes it (see :func:`bigcat_ml.tracking.runs.step_run`); a
sweep (``-m``) keeps it open as the parent of every job's run.
"""
from __future__ import annotations

import contextlib
import sys
from typing import ContextManager, List

import mlflow
from mlflow.environment_variables import MLFLOW_RUN_ID

from bigcat_ml.cli import steps
from bigcat_ml.cli.entry import hydra_entry_point
from bigcat_ml.tracking.names import STEP_TAG

SWEEP_STEP = "sweep"
_MULTIRUN_FLAGS = {"-m", "--multirun"}

_OPEN = {"[": "]", "{": "}", "(": ")"}


def split_overrides(text: str) -> List[str]:
    """Split on white space outside quotes and brackets, keeping quotes for Hydra.

    ``shlex`` would strip the quotes Hydra needs (``key='a=b'``) or split inside a list
    (``names=[Tiger,'Jaguar (Animal)']``); overrides are written here exactly as on a
    Hydra command line.
    """
    words, current, stack, quote = [], [], [], None
    for char in text:
        if quote:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char in _OPEN:
            stack.append(_OPEN[char])
        elif stack and char == stack[-1]:
            stack.pop()
        elif char.isspace() and not stack:
            if current:
                words.append("".join(current))
                current = []
            continue
        current.append(char)
    if quote or stack:
        raise ValueError(f"unbalanced quote or bracket in overrides: {text!r}")
    if current:
        words.append("".join(current))
    return words


def main(argv: List[str]) -> None:
    if not argv:
        raise SystemExit(f'usage: python -m bigcat_ml.cli.launch <{"|".join(steps.registry())}> ["<hydra overrides>"]')
    name, rest = argv[0], argv[1:]
    step = steps.get(name)
    words = [word for chunk in rest for word in split_overrides(chunk)]
    sys.argv = [f"bigcat_ml.{name}", *words]
    with _project_run_for(name, words):
        hydra_entry_point(step.run)()


def _project_run_for(name: str, words: List[str]) -> ContextManager:
    """The project run as the sweep's parent, when ``mlflow run`` handed one over to a sweep."""
    if not (MLFLOW_RUN_ID.get() and _MULTIRUN_FLAGS & set(words)):
        return contextlib.nullcontext()
    return mlflow.start_run(run_name=f"{SWEEP_STEP} {name}", tags={STEP_TAG: SWEEP_STEP})


if __name__ == "__main__":
    main(sys.argv[1:])
