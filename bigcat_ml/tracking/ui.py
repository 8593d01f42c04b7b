"""Where the MLflow UI shows an experiment's runs, and how to open it.

MLflow 3's UI keeps its mode in the browser (``mlflow.workflowType``, ``genai`` by
default) and opens an experiment on its GenAI pages (traces, judges); the URL parameter
``workflowType=machine_learning`` switches it to "Model training", the runs table where a
model comparison is reviewed. No experiment tag does this, so every URL the project
prints carries the parameter.
"""
from __future__ import annotations

import shlex

from bigcat_ml.tracking.redact import redact_text

UI_HOST = "127.0.0.1"
UI_PORT = 5000
WORKFLOW_PARAMETER = "workflowType=machine_learning"


def experiment_url(base_url: str, experiment_id: str) -> str:
    """The UI page of an experiment's runs: ``http://host:port/#/experiments/<id>?workflowType=...``."""
    return f"{base_url.rstrip('/')}/#/experiments/{experiment_id}?{WORKFLOW_PARAMETER}"


def local_base_url(host: str = UI_HOST, port: int = UI_PORT) -> str:
    return f"http://{host}:{port}"


def serve_command(tracking_uri: str) -> str:
    """The command that serves a local store's UI and prints the experiment's URL."""
    return f".venv/bin/python -m bigcat_ml.cli.ui --backend-store-uri {shlex.quote(tracking_uri)}"


def how_to_open(tracking_uri: str, experiment_id: str) -> str:
    """What ``main`` and ``compare`` print last: the URL of the experiment's runs.

    One line. A tracking server (``http(s)://``) serves the UI itself; a local store
    needs a server started first.
    """
    if tracking_uri.startswith(("http://", "https://")):
        return redact_text(f"MLflow UI: {experiment_url(tracking_uri, experiment_id)}")
    return redact_text(
        f"MLflow UI: {experiment_url(local_base_url(), experiment_id)} once served by  {serve_command(tracking_uri)}"
        "  (or make mlflow-ui for outputs/)"
    )
