"""``mlflow run .`` as the README shows it, and the MLflow UI that opens on its runs.

The README's ``mlflow run`` lines run word for word from the project folder; only the
store and the output folder are the test's own (``MLFLOW_TRACKING_URI`` instead of the
README's ``export`` line, ``BIGCAT_OUTPUT_DIR``). The store is then served with
``python -m bigcat_ml.cli.ui`` (``mlflow server`` on loopback) and read back over REST
and, where Chromium is installed, in a headless browser.
"""
from __future__ import annotations

import html
import json
import os
import re
import socket
import subprocess
import sys
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Dict, Iterator, List

import mlflow
import pandas as pd
import pytest

from bigcat_ml.cli.launch import SWEEP_STEP
from bigcat_ml.tracking import names
from bigcat_ml.tracking.names import STEP_TAG
from bigcat_ml.tracking.ui import VIEW_METRICS, VIEW_PARAMETER, WORKFLOW_PARAMETER
import readme
from helpers.runs import TINY_MODEL, TINY_SAMPLE
from helpers.sockets import all_loopback, listening

PROJECT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
CHROMIUM = Path("/usr/bin/chromium")
README_STORE_LINE = "export MLFLOW_TRACKING_URI=sqlite:///$PWD/outputs/mlflow/mlflow.db"

pytestmark = [pytest.mark.spark, pytest.mark.slow, pytest.mark.e2e]


def _env(out: Path) -> Dict[str, str]:
    """A user's shell with the venv activated, pointed at the test's store and outputs."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    return {
        **env,
        "MLFLOW_TRACKING_URI": f"sqlite:///{out}/mlflow/mlflow.db",
        "BIGCAT_OUTPUT_DIR": str(out),
        "PATH": f"{BIN}{os.pathsep}{env['PATH']}",
    }


def _init_store(out: Path, experiment: str) -> None:
    """Create the store and ``experiment`` from ``out``, as ``python -m bigcat_ml.main`` would:
    an experiment or store that ``mlflow run`` creates keeps its artifacts under ``./mlruns``
    of the folder it runs from, which must not be the project's."""
    (out / "mlflow").mkdir(parents=True)
    artifacts = (out / "mlflow" / "artifacts").as_uri()
    script = f"import mlflow; mlflow.create_experiment({experiment!r}, artifact_location={artifacts!r})"
    subprocess.run([sys.executable, "-c", script], cwd=out, env=_env(out), check=True)


def _shell(command: str, out: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-c", command], cwd=PROJECT, env=_env(out), capture_output=True, text=True, timeout=1200)


def _runs(out: Path, experiment: str) -> pd.DataFrame:
    mlflow.set_tracking_uri(f"sqlite:///{out}/mlflow/mlflow.db")
    return mlflow.search_runs(experiment_names=[experiment])


def _by_step(runs: pd.DataFrame, step: str) -> pd.DataFrame:
    return runs[runs[f"tags.{STEP_TAG}"] == step]


@pytest.fixture(scope="module")
def readme_store(tmp_path_factory) -> Path:
    """Every ``mlflow run`` line of the README, in order, on one store."""
    commands = readme.bash_commands()
    assert README_STORE_LINE in commands  # the store the README points at, replaced here
    runs = [c for c in commands if c.startswith("mlflow run ")]
    assert len(runs) >= 4
    out = tmp_path_factory.mktemp("readme") / "outputs"
    _init_store(out, "bigcat_ml")
    for command in runs:
        done = _shell(command, out)
        assert done.returncode == 0, f"{command}\n{done.stderr[-4000:]}"
    return out


def test_readme_mlflow_run_without_experiment_name_logs_under_the_handed_over_experiment(readme_store):
    runs = _runs(readme_store, "Default")
    steps = runs[f"tags.{STEP_TAG}"]
    assert steps.notna().all()  # every project run became a step's run: none is left empty
    assert (runs["status"] == "FINISHED").all()
    assert sorted(steps) == sorted(
        ["main", SWEEP_STEP, "main", "main", "sample_data", "preprocess", "evaluate", "evaluate", "compare", "preprocess", "train"]
    )
    # `main` is the project run itself; its steps are its children
    first_main = _by_step(runs, "main").sort_values("start_time").iloc[0]
    assert first_main["tags.mlflow.project.entryPoint"] == "main"
    children = runs[runs["tags.mlflow.parentRunId"] == first_main["run_id"]]
    assert sorted(children[f"tags.{STEP_TAG}"]) == ["evaluate", "preprocess", "sample_data"]


def test_a_readme_sweep_keeps_the_project_run_as_parent_of_every_job(readme_store):
    runs = _runs(readme_store, "Default")
    sweep = _by_step(runs, SWEEP_STEP).iloc[0]
    jobs = runs[runs["tags.mlflow.parentRunId"] == sweep["run_id"]]
    assert sorted(jobs[f"tags.{STEP_TAG}"]) == ["main", "main"]
    assert sorted(jobs["params.model.name"]) == ["mobilenet", "resnet50"]
    evaluations = _by_step(runs, "evaluate")
    assert sorted(evaluations[f"tags.{names.MODEL_TAG}"]) == ["mobilenet", "resnet50"]  # resnet50 reused


def test_readme_mlflow_run_with_experiment_name_logs_there(readme_store):
    runs = _runs(readme_store, "bigcat_ml")
    assert sorted(runs[f"tags.{STEP_TAG}"]) == ["evaluate", "main", "preprocess", "sample_data"]
    assert (runs["status"] == "FINISHED").all()


def test_main_carries_the_params_and_code_version_of_its_children(readme_store):
    runs = _runs(readme_store, "bigcat_ml")
    parent, child = _by_step(runs, "main").iloc[0], _by_step(runs, "evaluate").iloc[0]
    assert child["tags.mlflow.parentRunId"] == parent["run_id"]
    params = [c for c in runs.columns if c.startswith("params.") and c != "params.overrides"]
    assert parent[params].equals(child[params])
    assert parent[f"tags.{names.CODE_VERSION_TAG}"] == child[f"tags.{names.CODE_VERSION_TAG}"]


def test_every_entry_point_runs_with_experiment_name(tmp_path):
    out = tmp_path / "outputs"
    _init_store(out, "tiny")
    tiny = " ".join(TINY_SAMPLE)
    for entry, overrides in [
        ("sample_data", tiny),
        ("preprocess", tiny),
        ("evaluate", f"{tiny} model.weights=null"),
        ("train", f"{tiny} {' '.join(TINY_MODEL)} model.weights=null train.epochs=1 train.batch_size=8"),
        ("compare", ""),
    ]:
        command = f'mlflow run . --env-manager local --experiment-name tiny -e {entry} -P overrides="{overrides}"'
        done = _shell(command, out)
        assert done.returncode == 0, f"{command}\n{done.stderr[-4000:]}"
    runs = _runs(out, "tiny")
    assert sorted(runs[f"tags.{STEP_TAG}"]) == ["compare", "evaluate", "preprocess", "sample_data", "train"]
    [version] = mlflow.MlflowClient().search_model_versions("name = 'bigcat_bigcats_tiny_mobilenet'")
    assert version.run_id == runs[runs[f"tags.{STEP_TAG}"] == "train"]["run_id"].item()  # the project run registered it
    assert (runs["tags.mlflow.project.entryPoint"] == runs[f"tags.{STEP_TAG}"]).all()  # one run per project run
    assert "workflowType=machine_learning" in done.stdout  # compare says where the UI shows them


S3_SECRET_OVERRIDE = "+spark.conf.spark.hadoop.fs.s3a.secret.key"
SECRET_ENV = "BIGCAT_TEST_S3_SECRET"


def test_a_secret_given_to_mlflow_run_from_the_environment_is_in_no_param_tag_or_file(tmp_path):
    out = tmp_path / "outputs"
    _init_store(out, "secrets")
    secret = "MlflowRunS3Secret7"
    # As the README writes it: `\$` keeps the shell from expanding the interpolation.
    overrides = f"{S3_SECRET_OVERRIDE}=\\${{oc.env:{SECRET_ENV}}} {' '.join(TINY_SAMPLE)}"
    command = f'mlflow run . --env-manager local --experiment-name secrets -e sample_data -P overrides="{overrides}"'

    done = subprocess.run(["bash", "-c", command], cwd=PROJECT, env={**_env(out), SECRET_ENV: secret}, capture_output=True, text=True, timeout=1200)

    assert done.returncode == 0, done.stderr[-4000:]
    [run] = _runs(out, "secrets").to_dict("records")
    assert f"{S3_SECRET_OVERRIDE}=${{oc.env:{SECRET_ENV}}}" in run["params.overrides"]  # MLflow logs it as typed
    assert run[f"params.{S3_SECRET_OVERRIDE[1:]}"] == "***"
    assert not any(secret in str(value) for value in run.values())
    assert [str(p) for p in out.rglob("*") if p.is_file() and secret.encode() in p.read_bytes()] == []
    assert secret not in done.stdout + done.stderr


def test_mlflow_run_with_a_secret_in_clear_stops_and_says_how_to_pass_it(tmp_path):
    out = tmp_path / "outputs"
    _init_store(out, "secrets")
    command = f"mlflow run . --env-manager local --experiment-name secrets -e sample_data -P overrides='{S3_SECRET_OVERRIDE}=InClear8'"

    done = _shell(command, out)

    assert done.returncode != 0
    assert f"{S3_SECRET_OVERRIDE[1:]}=${{oc.env:" in done.stderr
    assert not list(out.glob("hydra/*"))  # stopped before Hydra wrote anything


# --- the UI on the README's store -------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def ui(readme_store) -> Iterator[Dict[str, str]]:
    """``python -m bigcat_ml.cli.ui`` serving the README's store on a free loopback port."""
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "bigcat_ml.cli.ui", "--backend-store-uri", f"sqlite:///{readme_store}/mlflow/mlflow.db",
         "--experiment-name", "Default", "--port", str(port)],
        cwd=readme_store, env=_env(readme_store), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        printed: List[str] = []
        for line in server.stdout:  # blocks until the server says it listens, or exits
            printed.append(line)
            if "Uvicorn running on" in line or "Listening at" in line:
                break
        assert server.poll() is None, "".join(printed)
        url = next(line.split(": ", 1)[1].strip() for line in printed if line.startswith("MLflow UI"))
        yield {"base": f"http://127.0.0.1:{port}", "url": url}
    finally:
        server.terminate()
        server.wait(timeout=60)


def test_the_ui_server_listens_on_loopback_only(ui):
    port = int(ui["base"].rsplit(":", 1)[1])

    sockets = listening(port=port)

    assert sockets and all_loopback(sockets), sockets


def _get(base: str, endpoint: str, **query: str) -> dict:
    with urllib.request.urlopen(f"{base}{endpoint}?{urllib.parse.urlencode(query)}", timeout=60) as response:
        return json.loads(response.read())


def _search_runs(base: str, filter_string: str = "") -> List[dict]:
    """The README experiment's runs (``Default``) that match ``filter_string``, over REST."""
    experiment_id = _get(base, "/api/2.0/mlflow/experiments/get-by-name", experiment_name="Default")["experiment"]["experiment_id"]
    request = urllib.request.Request(
        f"{base}/api/2.0/mlflow/runs/search", method="POST", headers={"Content-Type": "application/json"},
        data=json.dumps({"experiment_ids": [experiment_id], "filter": filter_string}).encode(),
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())["runs"]


def test_the_printed_ui_url_is_the_experiments_runs_in_model_training_mode(ui):
    experiment = _get(ui["base"], "/api/2.0/mlflow/experiments/get-by-name", experiment_name="Default")["experiment"]
    assert ui["url"] == f"{ui['base']}/#/experiments/{experiment['experiment_id']}/runs?{WORKFLOW_PARAMETER}&{VIEW_PARAMETER}"


def test_the_server_shows_the_runs_dataset_inputs_figures_and_tables_of_evaluate(ui):
    base = ui["base"]
    evaluations = _search_runs(base, f"tags.`{STEP_TAG}` = 'evaluate'")
    assert len(evaluations) == 2
    for run in evaluations:
        tags = {tag["key"]: tag["value"] for tag in run["data"]["tags"]}
        (dataset_input,) = run["inputs"]["dataset_inputs"]
        assert dataset_input["dataset"]["digest"] == tags[names.DATASET_DIGEST_TAG][: len(dataset_input["dataset"]["digest"])]
        input_tags = {tag["key"]: tag["value"] for tag in dataset_input["tags"]}
        assert input_tags[names.DATASET_SUBSET_INPUT_TAG] == "train,validation,test"
        assert input_tags["mlflow.data.context"] == names.EVALUATE_DATASET_CONTEXT
        run_id = run["info"]["run_id"]
        figures = {f["path"] for f in _get(base, "/api/2.0/mlflow/artifacts/list", run_id=run_id, path="figures")["files"]}
        assert "figures/confusion_matrix.png" in figures and "figures/reliability_diagram.png" in figures
        tables = {f["path"] for f in _get(base, "/api/2.0/mlflow/artifacts/list", run_id=run_id, path="tables")["files"]}
        assert {names.PER_CLASS_TABLE, names.CONFUSION_TABLE, names.CALIBRATION_TABLE, names.SLICES_TABLE} <= tables
        per_class = _get(base, "/get-artifact", path=names.PER_CLASS_TABLE, run_uuid=run_id)
        assert "Tiger" in {row[per_class["columns"].index("class")] for row in per_class["data"]}


def _chromium(*args: str, profile: Path) -> subprocess.CompletedProcess:
    # The virtual-time budget lets the single-page app fetch the runs and render them before
    # Chromium dumps the page (virtual time stands still while a request is in flight).
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
             "--window-size=1600,1000", "--virtual-time-budget=30000"]
    return subprocess.run([str(CHROMIUM), *flags, *args], capture_output=True, text=True, timeout=300)


def _page_text(url: str, profile: Path) -> str:
    """The text a user reads on the rendered page (markup, scripts and styles dropped)."""
    return _text(_chromium("--dump-dom", url, profile=profile).stdout)


def _text(dom: str) -> str:
    text = re.sub(r"<[^>]+>", " ", re.sub(r"<(script|style)\b.*?</\1>", " ", dom, flags=re.S))
    return re.sub(r"\s+", " ", html.unescape(text))


@pytest.mark.skipif(not CHROMIUM.exists(), reason="no /usr/bin/chromium (apt-get install chromium) for the browser check")
def test_a_browser_on_the_printed_url_shows_the_runs_table_under_model_training(ui, tmp_path):
    # The table lists the top-level runs (a step's runs fold under their main or sweep run).
    top_level = [run["info"]["run_name"] for run in _search_runs(ui["base"]) if "mlflow.parentRunId" not in
                 {tag["key"] for tag in run["data"].get("tags", [])}]
    page = _page_text(ui["url"], tmp_path / "profile")
    assert "Model training" in page and "Run Name" in page and f"{len(_search_runs(ui['base']))} matching runs" in page
    assert [name for name in top_level if name not in page] == []
    # Without the URL parameters the same experiment opens on the GenAI overview, with no runs table.
    bare = _page_text(ui["url"].split("/runs?")[0], tmp_path / "profile-bare")
    assert "Overview" in bare and "Run Name" not in bare
    screenshot = Path(os.environ.get("BIGCAT_UI_SCREENSHOT", tmp_path / "ui.png"))
    _chromium(f"--screenshot={screenshot}", ui["url"], profile=tmp_path / "profile-shot")
    assert screenshot.stat().st_size > 10_000


def _column_headers(dom: str) -> List[str]:
    """The runs table's column headers (AG Grid renders only the ones in the window)."""
    cells = re.findall(r'role="columnheader"[^>]*>(.*?)</div></div></div>', dom, flags=re.S)
    return [_text(cell).strip() for cell in cells]


@pytest.mark.skipif(not CHROMIUM.exists(), reason="no /usr/bin/chromium (apt-get install chromium) for the browser check")
def test_the_printed_url_opens_on_the_headline_metric_columns_with_each_parent_s_values(ui, tmp_path):
    """What a user sees first, in a fresh browser: the runs table with metric columns. The
    screenshots (the table, an evaluate run, compare's figures, the registry) are kept in
    $BIGCAT_UI_SCREENSHOTS, when set, for a person to look at."""
    dom = _chromium("--dump-dom", ui["url"], profile=tmp_path / "profile").stdout
    headers = _column_headers(dom)
    shown = [metric for metric in VIEW_METRICS if any(header.startswith(metric[:12]) for header in headers)]
    assert len(shown) >= 3, headers  # the leftmost metric columns fit a 1600-pixel window
    top_level = [run for run in _search_runs(ui["base"], f"tags.`{STEP_TAG}` = 'main'")
                 if "mlflow.parentRunId" not in {tag["key"] for tag in run["data"]["tags"]}]
    assert top_level
    for parent in top_level:  # its row shows its own headline values
        values = {metric["key"]: metric["value"] for metric in parent["data"]["metrics"]}
        assert set(VIEW_METRICS) <= set(values)
        assert f"{values['chips_per_second']:g}" in _text(dom)
    folder = Path(os.environ.get("BIGCAT_UI_SCREENSHOTS", tmp_path / "screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    evaluation = _search_runs(ui["base"], f"tags.`{STEP_TAG}` = 'evaluate'")[0]["info"]
    compare = _search_runs(ui["base"], f"tags.`{STEP_TAG}` = 'compare'")[0]["info"]
    experiment = ui["url"].split("#/experiments/")[1].split("/")[0]
    pages = {
        "runs_table": ui["url"],
        "evaluate_run": f"{ui['base']}/#/experiments/{experiment}/runs/{evaluation['run_id']}?{WORKFLOW_PARAMETER}",
        "compare_figures": f"{ui['base']}/#/experiments/{experiment}/runs/{compare['run_id']}/artifacts?{WORKFLOW_PARAMETER}",
        "registry": f"{ui['base']}/#/models",
    }
    for name, url in pages.items():
        _chromium(f"--screenshot={folder / name}.png", url, profile=tmp_path / f"profile-{name}")
        assert (folder / f"{name}.png").stat().st_size > 10_000, name
