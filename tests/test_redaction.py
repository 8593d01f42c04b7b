"""No secrets in tracking: params, config.yaml, tags and printed lines are redacted."""
from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import List, Set, Tuple

import mlflow
import pytest
from hydra import compose as hydra_compose
from hydra import initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.utils import setup_globals
from mlflow.tracking._tracking_service import utils as tracking_utils
from omegaconf import OmegaConf

from bigcat_ml import sample_data
from bigcat_ml.cli.launch import refuse_literal_secrets
from bigcat_ml.config.compose import CONF_DIR
from bigcat_ml.scoring.models import weights_source
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


SAS_KEY = "spark.conf.fs.azure.sas.chips.bigcatacct.blob.core.windows.net"
SAS_TOKEN = "sv2022sigAzureSAS77"
TAG_PASSWORD = "TagHunter2pw"
PROJECT = Path(__file__).resolve().parents[1]


def _logged_texts(run_id: str, tmp_path: Path) -> List[str]:
    """Everything a step run shows: params, tags, run name and ``config.yaml``."""
    run = mlflow.get_run(run_id)
    config_yaml = Path(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="config.yaml", dst_path=str(tmp_path))).read_text()
    return [*run.data.params.values(), *run.data.tags.values(), run.info.run_name, config_yaml]


def test_an_azure_sas_key_is_redacted_in_params_and_config_yaml(make_cfg, tmp_path):
    cfg = make_cfg([f"+{SAS_KEY}={SAS_TOKEN}"])

    run_id = sample_data.run(cfg)["run_id"]

    assert mlflow.get_run(run_id).data.params[SAS_KEY] == "***"
    assert not any(SAS_TOKEN in text for text in _logged_texts(run_id, tmp_path))


def test_a_key_named_in_redact_extra_keys_is_redacted_too(make_cfg, tmp_path):
    cfg = make_cfg(["redact.extra_keys=[vendor_pat]", "+spark.conf.spark.hadoop.vendor_pat=VendorPat99"])

    run_id = sample_data.run(cfg)["run_id"]

    assert mlflow.get_run(run_id).data.params["spark.conf.spark.hadoop.vendor_pat"] == "***"
    assert not any("VendorPat99" in text for text in _logged_texts(run_id, tmp_path))


def test_a_password_in_a_mlflow_tags_url_is_redacted_on_the_run(make_cfg):
    cfg = make_cfg([f"+mlflow.tags.data_source='https://reader:{TAG_PASSWORD}@data.example/chips?sig=SignedQ1'"])

    run_id = sample_data.run(cfg)["run_id"]

    assert mlflow.get_run(run_id).data.tags["data_source"] == "https://***@data.example/chips?sig=***"


def test_signed_url_parameters_and_secret_overrides_are_redacted_in_text():
    azure = "https://acct.blob.core.windows.net/c/w.h5?sv=2022-11-02&se=2030&sig=abc%3D"
    s3 = "https://b.s3.amazonaws.com/w.h5?X-Amz-Credential=AKIA%2F1&X-Amz-Date=1&X-Amz-Signature=f00d"
    overrides = "model=resnet50,+spark.conf.spark.hadoop.fs.s3a.secret.key=AKIA42,+db.Password='a b'"

    assert redact_text(azure) == "https://acct.blob.core.windows.net/c/w.h5?sv=2022-11-02&se=2030&sig=***"
    assert redact_text(s3) == "https://b.s3.amazonaws.com/w.h5?X-Amz-Credential=***&X-Amz-Date=1&X-Amz-Signature=***"
    assert redact_text(overrides) == "model=resnet50,+spark.conf.spark.hadoop.fs.s3a.secret.key=***,+db.Password=***"


def test_weights_uri_credentials_stay_out_of_run_names_and_printed_lines(make_cfg):
    cfg = make_cfg(["model.weights='https://u:WeightsPw5@models.example/w.h5?sig=WeightsSig6'"])

    # evaluate and train name their runs and summary lines by weights_source.
    assert weights_source(cfg.model) == "file:https://***@models.example/w.h5?sig=***"


def test_the_mlproject_launcher_refuses_a_secret_in_clear_and_accepts_one_from_the_environment():
    refuse_literal_secrets(["model=resnet50", "+spark.conf.spark.hadoop.fs.s3a.secret.key=${oc.env:S3_SECRET}"])

    for in_clear in (f"+{S3_KEY}={S3_SECRET}", f"mlflow.tracking_uri={SECRET_URI}", f"+{SAS_KEY}={SAS_TOKEN}"):
        with pytest.raises(SystemExit, match="oc.env"):
            refuse_literal_secrets(["model=resnet50", in_clear])


def _sample_data_in_a_subprocess(out: Path, *overrides: str, sweep: bool = False) -> subprocess.CompletedProcess:
    """``python -m bigcat_ml.sample_data`` (``-m`` for a sweep) on a tiny sample written under ``out``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    done = subprocess.run(
        [sys.executable, "-m", "bigcat_ml.sample_data", *(["-m"] if sweep else []), f"paths.output_dir={out}",
         "data.sample.images_per_subset={train:2,validation:1,test:1}", *overrides],
        cwd=out.parent, env={**env, "PYTHONPATH": str(PROJECT)}, capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def _files_holding(out: Path, secrets: Set[str]) -> List[Tuple[str, str]]:
    """(file, secret) for every file under ``out`` (the MLflow store too) holding a secret."""
    files = [p for p in out.rglob("*") if p.is_file()]
    assert any(p.name == "mlflow.db" for p in files)
    return [(str(p), s) for p in files for s in secrets if s.encode() in p.read_bytes()]


def test_an_entry_point_leaves_no_secret_in_any_file_under_outputs_nor_in_mlflow(tmp_path):
    """Hydra's saved job files, its log, the MLflow store and artifacts: the secrets
    given on the command line appear in none of them."""
    out = tmp_path / "outputs"
    secrets = {S3_SECRET, SAS_TOKEN, TAG_PASSWORD}

    done = _sample_data_in_a_subprocess(
        out, f"+{S3_KEY}={S3_SECRET}", f"+{SAS_KEY}={SAS_TOKEN}",
        f"+mlflow.tags.data_source='https://reader:{TAG_PASSWORD}@data.example/chips'",
    )

    hydra_files = sorted(p.name for p in out.glob("hydra/*/*/.hydra/*"))
    assert hydra_files == ["config.yaml", "hydra.yaml", "overrides.yaml"]  # written, redacted
    assert f"+{S3_KEY}=***" in next(out.glob("hydra/*/*/.hydra/overrides.yaml")).read_text()
    assert _files_holding(out, secrets) == []
    assert not any(s in done.stdout + done.stderr for s in secrets)


def test_a_sweep_leaves_no_secret_in_multirun_yaml_its_jobs_files_or_hydras_lines(tmp_path):
    out = tmp_path / "outputs"
    secrets = {"SweptSecretA1", "SweptSecretB2"}

    done = _sample_data_in_a_subprocess(out, f"+{S3_KEY}={','.join(sorted(secrets))}", sweep=True)

    assert len(list(out.glob("hydra/multirun/*/*/*/.hydra/overrides.yaml"))) == 2
    assert len(list(out.glob("hydra/multirun/*/*/multirun.yaml"))) == 1
    assert _files_holding(out, secrets) == []
    assert f"{S3_KEY}=***" in done.stdout  # Hydra's "#0 : <overrides>" line, redacted
    assert not any(s in done.stdout + done.stderr for s in secrets)


FROZEN_NOW = "2026-12-02_16-00-00"


def _hydra_run_dir_at_a_frozen_time() -> str:
    """``hydra.run.dir`` of a freshly composed config, as one run resolves it, with
    Hydra's ``now`` answering the same second every time."""
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            OmegaConf.register_new_resolver("now", lambda pattern: FROZEN_NOW, use_cache=True, replace=True)
            cfg = hydra_compose(config_name="config", return_hydra_config=True)
            first, again = OmegaConf.select(cfg, "hydra.run.dir"), OmegaConf.select(cfg, "hydra.run.dir")
    finally:
        setup_globals()  # Hydra's own ``now`` again
    assert first == again  # one run, one folder
    return first


def test_two_runs_started_in_the_same_second_get_their_own_hydra_folders():
    folders = {_hydra_run_dir_at_a_frozen_time(), _hydra_run_dir_at_a_frozen_time()}

    assert len(folders) == 2
    assert all(FROZEN_NOW in folder for folder in folders)
