"""Where the MLflow UI shows an experiment's runs, and how to open it.

MLflow 3's UI keeps its mode in the browser (``mlflow.workflowType``, ``genai`` by
default) and opens an experiment on its GenAI pages (traces, judges); the URL parameter
``workflowType=machine_learning`` switches it to "Model training", the runs table where a
model comparison is reviewed. No experiment tag does this, so every URL the project
prints carries the parameter.

The runs table's columns and the chart view's charts are browser state too (local
storage), with one way in from the store: MLflow's "shared view", an experiment tag
``mlflow.sharedViewState.<key>`` holding the view as JSON, opened by
``?viewStateShareKey=<key>``. Every step writes :func:`default_view_state` there and every
printed URL names it, so the table opens on the headline metrics and what tells runs apart.
"""
from __future__ import annotations

import json
import shlex
from typing import Any, Dict, List

from mlflow import MlflowClient

from bigcat_ml.tracking import names
from bigcat_ml.tracking.redact import redact_text

UI_HOST = "127.0.0.1"
UI_PORT = 5000
WORKFLOW_PARAMETER = "workflowType=machine_learning"
DEFAULT_VIEW_KEY = "bigcat_default"
VIEW_PARAMETER = f"viewStateShareKey={DEFAULT_VIEW_KEY}"
# The tag prefix and URL parameter of shared views in MLflow's UI (3.x, see the module docstring).
SHARED_VIEW_TAG_PREFIX = "mlflow.sharedViewState."

# The runs table's columns, in order: what a run is, then how well it did.
VIEW_PARAMS = ("model.name", "data.name", "classes.name", "train.in_main", "model.input_size", "preprocess.padding")
VIEW_TAGS = (names.KIND_TAG, names.WEIGHTS_TAG)
VIEW_METRICS = (*names.HEADLINE_METRICS, names.THROUGHPUT_METRIC)
HEADLINE_SECTION = "Headline"
# The sections MLflow generates for every other metric: shown collapsed below the headline.
COLLAPSED_SECTIONS = ("Model metrics", "System metrics", "train", "validation", "test")


def experiment_url(base_url: str, experiment_id: str) -> str:
    """The UI page of an experiment's runs in the project's default view:
    ``http://host:port/#/experiments/<id>/runs?workflowType=...&viewStateShareKey=...`` (the
    runs tab by name: ``#/experiments/<id>`` redirects there and drops the shared view)."""
    return f"{base_url.rstrip('/')}/#/experiments/{experiment_id}/runs?{WORKFLOW_PARAMETER}&{VIEW_PARAMETER}"


def _column(kind: str, key: str) -> str:
    """A column's id as MLflow's runs table names it: ``metrics.`top1_accuracy```."""
    return f"{kind}.`{key}`"


def default_view_state() -> Dict[str, Any]:
    """The runs table with the headline metrics, the params and tags that tell runs apart,
    and a chart view that opens on one bar chart per headline metric (other charts folded)."""
    # No Dataset, Source or Models columns (MLflow's default): the parents have none, and the
    # wide Dataset column would push the metrics off a laptop's screen.
    columns = [
        *(_column("metrics", key) for key in VIEW_METRICS),
        *(_column("tags", key) for key in VIEW_TAGS),
        *(_column("params", key) for key in VIEW_PARAMS),
    ]
    sections: List[Dict[str, Any]] = [
        {"uuid": f"bigcat-{name}", "name": name, "display": name == HEADLINE_SECTION, "isReordered": False,
         "deleted": False, "isGenerated": name != HEADLINE_SECTION}
        for name in (HEADLINE_SECTION, *COLLAPSED_SECTIONS)
    ]
    charts = [
        {"type": "BAR", "uuid": f"bigcat-bar-{metric}", "metricSectionId": f"bigcat-{HEADLINE_SECTION}",
         "metricKey": metric, "displayName": metric, "deleted": False, "isGenerated": False}
        for metric in VIEW_METRICS
    ]
    return {"selectedColumns": columns, "compareRunCharts": charts, "compareRunSections": sections,
            "isAccordionReordered": True}


def publish_default_view(client: MlflowClient, experiment_id: str) -> None:
    """Store :func:`default_view_state` on the experiment, where :func:`experiment_url` opens it
    (written only when it differs, so every step can call this)."""
    key, value = SHARED_VIEW_TAG_PREFIX + DEFAULT_VIEW_KEY, json.dumps(default_view_state())
    if client.get_experiment(experiment_id).tags.get(key) != value:
        client.set_experiment_tag(experiment_id, key, value)


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
