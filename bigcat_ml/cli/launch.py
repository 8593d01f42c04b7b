"""Run a Hydra entry point from an MLflow project command.

``mlflow run`` passes a parameter as one shell-quoted word, so ``-P overrides="a=1 b=2"``
would reach Hydra as a single malformed override. This splits it into Hydra's words and
hands them to the step's ``@hydra.main`` function.
"""
from __future__ import annotations

import sys
from typing import List

from bigcat_ml.cli import steps
from bigcat_ml.cli.entry import hydra_entry_point

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
    sys.argv = [f"bigcat_ml.{name}", *(word for chunk in rest for word in split_overrides(chunk))]
    hydra_entry_point(step.run)()


if __name__ == "__main__":
    main(sys.argv[1:])
