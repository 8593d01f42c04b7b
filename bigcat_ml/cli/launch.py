"""Run a Hydra entry point from an MLflow project command.

``mlflow run`` passes a parameter as one shell-quoted word, so ``-P overrides="a=1 b=2"``
would reach Hydra as a single malformed override. This splits it into Hydra's words and
hands them to the step's ``@hydra.main`` function.

``mlflow run`` logs the parameter itself, as typed, before this runs (and MLflow params
cannot be changed): a secret belongs in the environment, ``key=${oc.env:NAME}``, and a
literal one is refused (:func:`refuse_literal_secrets`).

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

from bigcat_ml.main import STEPS, get
from bigcat_ml.stepkit.step import hydra_entry_point
from bigcat_ml.tracking.names import STEP_TAG
from bigcat_ml.tracking.redact import redact_text

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


def refuse_literal_secrets(words: List[str]) -> None:
    """Stop at an override that holds a secret in clear: a secret-looking key's value,
    URI user-info, a signed URL's signature (whatever :func:`redact_text` would hide).

    Whatever comes after the ``=`` is already in the project run's ``overrides`` param,
    in MLflow's printed command line and on this process's command line; only an
    interpolation (``${oc.env:NAME}``) keeps the value itself out of all three.
    """
    for word in words:
        key, _, value = word.lstrip("+~").partition("=")
        if "${" not in value and redact_text(word) != word:
            raise SystemExit(
                f"overrides: {key} holds a secret in clear, and `mlflow run` logs the overrides parameter as typed "
                f"(the value is now in that run's params: change the credential). Pass it from the environment "
                f"instead: export the value (e.g. BIGCAT_SECRET=...) and write -P overrides='{key}=${{oc.env:BIGCAT_SECRET}}'."
            )


def main(argv: List[str]) -> None:
    if not argv:
        raise SystemExit(f'usage: python -m bigcat_ml.cli.launch <{"|".join(STEPS)}> ["<hydra overrides>"]')
    name, rest = argv[0], argv[1:]
    step = get(name)
    words = [word for chunk in rest for word in split_overrides(chunk)]
    refuse_literal_secrets(words)
    sys.argv = [f"bigcat_ml.{name}", *words]
    with _project_run_for(name, words):
        hydra_entry_point(step)()


def _project_run_for(name: str, words: List[str]) -> ContextManager:
    """The project run as the sweep's parent, when ``mlflow run`` handed one over to a sweep."""
    if not (MLFLOW_RUN_ID.get() and _MULTIRUN_FLAGS & set(words)):
        return contextlib.nullcontext()
    return mlflow.start_run(run_name=f"{SWEEP_STEP} {name}", tags={STEP_TAG: SWEEP_STEP})


if __name__ == "__main__":
    main(sys.argv[1:])
