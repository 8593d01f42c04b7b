"""Run a Hydra entry point from an MLflow project command.

``mlflow run`` passes a parameter as one shell-quoted word, so ``-P overrides="a=1 b=2"``
would reach Hydra as a single malformed override. This splits it the way a shell would
and hands the words to the step's ``@hydra.main`` function.
"""
from __future__ import annotations

import importlib
import shlex
import sys


def main(argv: list[str]) -> None:
    if not argv:
        raise SystemExit("usage: python -m bigcat_ml.launch <step> [\"<hydra overrides>\"]")
    step, rest = argv[0], argv[1:]
    words = [word for chunk in rest for word in shlex.split(chunk)]
    module = importlib.import_module(f"bigcat_ml.{step}")
    sys.argv = [f"bigcat_ml.{step}", *words]
    module.main()


if __name__ == "__main__":
    main(sys.argv[1:])
