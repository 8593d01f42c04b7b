"""No secrets in tracking: params, config.yaml, tags and printed lines are redacted."""
from __future__ import annotations

import logging
from pathlib import Path

import mlflow
import pytest
from mlflow.tracking._tracking_service import utils as tracking_utils

from bigcat_ml import sample_data
from bigcat_ml.tracking.redact import RedactingFilter, redact, redact_text
from bigcat_ml.tracking.runs import STEP_TAG

SECRET_URI = "postgresql://u:secret@host/db"
S3_KEY = "spark.conf.spark.hadoop.fs.s3a.secret.key"
S3_SECRET = "AKIAsupersecret42"


@pytest.fixture
def postgres_uri_on_a_local_store(tmp_path, monkeypatch):
    """``MLFLOW_TRACKING_URI=postgresql://u:secret@host/db`` as a user exports it.

    The tests have no network, so the ``postgresql`` scheme is served by a SQLite store
    in ``tmp_path``; everything above the store (the step, its params, artifacts, tags
    and printed lines) runs as in production.
    """
    registry = tracking_utils._tracking_store_registry
    previous = registry._registry.get("postgresql")
    sqlite_uri = f"sqlite:///{tmp_path}/tracking.db"
    registry.register("postgresql", lambda store_uri, artifact_uri: tracking_utils._get_sqlalchemy_store(sqlite_uri, artifact_uri))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", SECRET_URI)
    yield sqlite_uri
    registry.register("postgresql", previous)


def test_uri_user_info_and_secret_looking_keys_are_redacted():
    config = {
        "mlflow": {"tracking_uri": SECRET_URI},
        "spark": {"conf": {"spark": {"hadoop": {"fs": {"s3a": {"secret": {"key": S3_SECRET}, "endpoint": "s3a://k:p@b/x"}}}}}},
        "db": {"Password": "hunter2", "API_TOKEN": "t", "credentials": ["a", "b"]},
        "model": {"name": "mobilenet"},
    }

    shown = redact(config)

    assert shown["mlflow"]["tracking_uri"] == "postgresql://***@host/db"
    assert shown["spark"]["conf"]["spark"]["hadoop"]["fs"]["s3a"]["secret"]["key"] == "***"
    assert shown["spark"]["conf"]["spark"]["hadoop"]["fs"]["s3a"]["endpoint"] == "s3a://***@b/x"
    assert shown["db"] == {"Password": "***", "API_TOKEN": "***", "credentials": "***"}
    assert shown["model"]["name"] == "mobilenet"
    assert redact_text(f"runs at {SECRET_URI} and http://host:5000") == "runs at postgresql://***@host/db and http://host:5000"


def test_console_log_lines_lose_uri_credentials():
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "tracking at %s", (SECRET_URI,), None)

    RedactingFilter().filter(record)

    assert record.getMessage() == "tracking at postgresql://***@host/db"


def test_a_step_run_logs_no_secret_in_params_config_yaml_tags_or_printed_lines(
    postgres_uri_on_a_local_store, make_cfg, capsys, tmp_path
):
    cfg = make_cfg([f"+{S3_KEY}={S3_SECRET}", "mlflow=local"])
    assert cfg.mlflow.tracking_uri == SECRET_URI  # taken from the environment, as configured

    run_id = sample_data.run(cfg)["run_id"]

    printed = capsys.readouterr()
    mlflow.set_tracking_uri(postgres_uri_on_a_local_store)
    run = mlflow.get_run(run_id)
    params = run.data.params
    assert run.data.tags[STEP_TAG] == "sample_data"
    assert params["mlflow.tracking_uri"] == "postgresql://***@host/db"
    assert params[S3_KEY] == "***"
    config_yaml = Path(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="config.yaml", dst_path=str(tmp_path))).read_text()
    assert "postgresql://***@host/db" in config_yaml
    logged = [*params.values(), *run.data.tags.values(), config_yaml, printed.out, printed.err]
    for text in logged:
        assert "secret@" not in text and S3_SECRET not in text
