"""Serve the MLflow UI of a tracking store and print the URL of the experiment's runs.

``make mlflow-ui`` runs this on ``outputs/mlflow/mlflow.db``. It prints the experiment's
URL with ``?workflowType=machine_learning`` and the project's default view of the runs
(see :mod:`bigcat_ml.tracking.ui`), then
becomes ``mlflow server`` on loopback, so stopping it (Ctrl-C) stops the server.
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import List, Optional

from mlflow import MlflowClient

from bigcat_ml.stepkit.step import compose
from bigcat_ml.tracking.ui import UI_HOST, UI_PORT, experiment_url, local_base_url, publish_default_view


def parse_args(argv: Optional[List[str]]) -> argparse.Namespace:
    defaults = compose().mlflow
    parser = argparse.ArgumentParser(prog="python -m bigcat_ml.cli.ui", description=__doc__.splitlines()[0])
    parser.add_argument("--backend-store-uri", default=defaults.tracking_uri, help="default: %(default)s")
    parser.add_argument("--experiment-name", default=defaults.experiment_name, help="default: %(default)s")
    parser.add_argument("--host", default=UI_HOST, help="default: %(default)s")
    parser.add_argument("--port", type=int, default=UI_PORT, help="default: %(default)s")
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    client = MlflowClient(tracking_uri=args.backend_store_uri)
    experiment = client.get_experiment_by_name(args.experiment_name)
    base = local_base_url(args.host, args.port)
    if experiment is None:
        print(f"no experiment '{args.experiment_name}' in {args.backend_store_uri} yet; the UI lists all at {base}")
    else:
        publish_default_view(client, experiment.experiment_id)  # a store older than the view
        print(f"MLflow UI of experiment '{args.experiment_name}': {experiment_url(base, experiment.experiment_id)}")
    sys.stdout.flush()
    command = [
        sys.executable, "-m", "mlflow", "server", "--backend-store-uri", args.backend_store_uri,
        "--host", args.host, "--port", str(args.port), "--workers", "1",
    ]
    os.execv(sys.executable, command)


if __name__ == "__main__":
    main()
