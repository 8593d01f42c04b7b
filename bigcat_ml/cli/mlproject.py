"""The ``MLproject`` file, written from the step registry so the two cannot disagree.

    python -m bigcat_ml.cli.mlproject          # rewrite MLproject after adding a step

Every entry point takes one ``overrides`` parameter: Hydra overrides as typed on a command
line, split by :mod:`bigcat_ml.cli.launch`.
"""
from __future__ import annotations

from pathlib import Path

import yaml

from bigcat_ml.config.compose import CONF_DIR
from bigcat_ml.main import STEPS
from bigcat_ml.tracking.names import MAIN_STEP

MLPROJECT_FILE = CONF_DIR.parent / "MLproject"

_HEADER = """\
# Written by `python -m bigcat_ml.cli.mlproject` from the step registry (STEPS in bigcat_ml/main.py).
# `mlflow run . --env-manager local` uses the active environment (make venv); without it
# MLflow builds conda.yaml. Hydra overrides go in one parameter:
#   mlflow run . -P overrides="model=resnet50 force=true"
"""


def render() -> str:
    """MLproject's text: one entry point per registered step, ``main`` first."""
    names = sorted(STEPS, key=lambda name: name != MAIN_STEP)
    project = {
        "name": "bigcat_ml",
        "conda_env": "conda.yaml",
        "entry_points": {
            name: {
                "parameters": {"overrides": {"type": "string", "default": ""}},
                "command": f"python -m bigcat_ml.cli.launch {name} {{overrides}}",
            }
            for name in names
        },
    }
    return _HEADER + yaml.safe_dump(project, sort_keys=False)


if __name__ == "__main__":
    Path(MLPROJECT_FILE).write_text(render())
    print(f"wrote {MLPROJECT_FILE}")
