"""The whole chain: one parent run per job, reuse of finished steps, sweeps, MLflow projects."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import mlflow
import pandas as pd
import pytest

from bigcat_ml import main as main_step
from bigcat_ml.runtime.console import PROGRESS_LOGGER
from bigcat_ml.stepkit.step import compose
from bigcat_ml.scoring.metrics import CHIP_RESULT_COLUMNS
from bigcat_ml.tracking.names import (
    CHIPS_TABLE, DATASET_DIGEST_TAG, HEADLINE_METRICS, MODEL_TAG, THROUGHPUT_METRIC, PER_CLASS_CSV, PREDICTIONS,
    REUSED_TAG_PREFIX, STEP_TAG,
)
from bigcat_ml.tracking.runs import setup_tracking

PROJECT = Path(__file__).resolve().parents[1]
CHAIN = ["model.weights=null", "data.sample.images_per_subset={train:8,validation:3,test:3}", "spark.master='local[2]'"]

pytestmark = [pytest.mark.spark, pytest.mark.slow]


def _runs(cfg, step: str):
    experiment_id = setup_tracking(cfg.mlflow)
    return mlflow.search_runs([experiment_id], filter_string=f"tags.`{STEP_TAG}` = '{step}'")


def _python(*args: str, cwd: Path = PROJECT) -> subprocess.CompletedProcess:
    """``python *args`` in a user's environment: no MLflow hand-over, no verbosity settings."""
    quiet = ("BIGCAT_VERBOSE", "TF_CPP_MIN_LOG_LEVEL")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_") and k not in quiet}
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """``main -m model=mobilenet,resnet50`` once, as a user types it: the output folder and the process."""
    out = tmp_path_factory.mktemp("sweep") / "outputs"
    done = _python("-m", "bigcat_ml.main", "-m", "model=mobilenet,resnet50", f"paths.output_dir={out}", *CHAIN)
    assert done.returncode == 0, done.stderr[-4000:]
    return out, done


@pytest.fixture(scope="module")
def swept(sweep):
    return sweep[0]


def _cfg(out: Path, *overrides: str):
    return compose([f"paths.output_dir={out}", *CHAIN, *overrides])


def test_a_sweep_evaluates_each_model_once_on_one_chip_dataset(swept):
    cfg = _cfg(swept)
    evaluations = _runs(cfg, "evaluate")
    assert sorted(evaluations[f"tags.{MODEL_TAG}"]) == ["mobilenet", "resnet50"]
    assert evaluations[f"tags.{DATASET_DIGEST_TAG}"].nunique() == 1
    assert len(_runs(cfg, "preprocess")) == 1  # the second job reused it
    assert len(_runs(cfg, "sample_data")) == 1
    parents = _runs(cfg, "main")
    assert len(parents) == 2
    assert set(evaluations["tags.mlflow.parentRunId"]) == set(parents["run_id"])
    reused = parents.dropna(subset=[f"tags.{REUSED_TAG_PREFIX}preprocess"])
    assert len(reused) == 1


def test_each_evaluation_logs_one_result_row_per_scored_chip_its_auc_and_its_curves(swept):
    cfg = _cfg(swept)
    for _, run in _runs(cfg, "evaluate").iterrows():
        local = mlflow.artifacts.download_artifacts(run_id=run["run_id"], artifact_path=CHIPS_TABLE)
        table = pd.read_json(local, orient="split", dtype=False)
        scored = run["metrics.chips_read"] - run["metrics.rejects"] - run["metrics.unmapped_chips"]
        assert list(table.columns) == list(CHIP_RESULT_COLUMNS) and len(table) == scored
        assert table["top1_correct"].mean() == pytest.approx(run["metrics.top1_accuracy"])
        assert "metrics.roc_auc_macro" in run
        figures = {f.path for f in mlflow.MlflowClient().list_artifacts(run["run_id"], "figures")}
        assert {"figures/roc_pr_curves.png", "figures/most_confident_mistakes.png"} <= figures


def test_each_parent_carries_its_evaluation_s_headline_metrics_under_a_name_that_tells_it_apart(swept):
    cfg = _cfg(swept)
    evaluations = _runs(cfg, "evaluate").set_index("tags.mlflow.parentRunId")
    parents = _runs(cfg, "main")
    assert sorted(parents["tags.mlflow.runName"]) == [
        "main mobilenet random-init zero-shot sample/bigcats 224px pad0.0",
        "main resnet50 random-init zero-shot sample/bigcats 224px pad0.0",
    ]
    for _, parent in parents.iterrows():
        evaluation = evaluations.loc[parent["run_id"]]
        for metric in (*HEADLINE_METRICS, THROUGHPUT_METRIC):  # to the 4 digits the parent shows
            assert parent[f"metrics.{metric}"] == pytest.approx(evaluation[f"metrics.{metric}"], rel=1e-3), metric
        assert parent[f"tags.{MODEL_TAG}"] == evaluation[f"tags.{MODEL_TAG}"]


def test_a_second_main_with_the_same_config_reuses_every_step(swept, spark):
    cfg = _cfg(swept, "model=mobilenet")
    before = {step: len(_runs(cfg, step)) for step in ("sample_data", "preprocess", "evaluate")}
    step_runs = main_step.run(cfg)
    after = {step: len(_runs(cfg, step)) for step in ("sample_data", "preprocess", "evaluate")}
    assert after == before
    finished_evaluation = _runs(cfg, "evaluate").set_index(f"tags.{MODEL_TAG}").loc["mobilenet", "run_id"]
    assert step_runs["evaluate"] == finished_evaluation


def test_force_recomputes_every_step(swept, spark):
    cfg = _cfg(swept, "model=mobilenet", "force=true")
    before = {step: len(_runs(cfg, step)) for step in ("preprocess", "evaluate")}
    main_step.run(cfg)
    after = {step: len(_runs(cfg, step)) for step in ("preprocess", "evaluate")}
    assert after == {step: n + 1 for step, n in before.items()}


# What the libraries used to say on every run of the chain (issue "Reviewing results as people do").
_NOISE = re.compile(
    r"Cache cleanup complete|Your input ran out of data|schema_fields behavior has changed"
    r"|pyarrow\.localfs is deprecated|dataset source can be interpreted in multiple ways|Downloading artifacts"
    r"|triggered tf\.function retracing|Tensorflow will convert all unicode strings|Setting default log level"
    r"|Truncated the string representation of a plan"
)
# What a user's terminal shows of a run by default: the steps' summaries, progress (piped:
# Hydra's log lines of the progress logger), the sweep's jobs (Hydra's own lines), the MLflow UI.
_REPORT = re.compile(
    r"(sample_data|preprocess|evaluate \S+ \[[^]]+\]|main \S+ \(run \w{32}\)): "
    rf"|\[[^]]+\]\[{re.escape(PROGRESS_LOGGER)}\]\[INFO\] - "
    r"|\[[^]]+\]\[HYDRA\] "
    r"|MLflow UI: "
)


def test_a_sweep_prints_a_report_on_stdout_and_the_ui_once_at_its_end(sweep):
    _, done = sweep
    printed = done.stdout.splitlines()
    assert [line for line in printed if not _REPORT.match(line)] == []
    assert _NOISE.findall(done.stdout + done.stderr) == []
    assert [line.startswith("MLflow UI: ") for line in printed].count(True) == 1 and printed[-1].startswith("MLflow UI: ")
    assert "workflowType=machine_learning" in printed[-1]
    # run ids on a readable line: the second job reused the first one's sample and chips
    assert re.search(r"^main resnet50 \(run \w{32}\): sample_data \w{32} \(reused\), preprocess \w{32} \(reused\), "
                     r"evaluate \w{32}$", done.stdout, re.M)
    # preprocess reports its phases as it goes
    assert re.search(r"- preprocess 3/5: cut and write chips…$", done.stdout, re.M)
    # warnings are kept, on stderr
    assert done.stderr.count("WARNING bigcat_ml.scoring.inference.classifier: model 'mobilenet' has random-init weights") == 1


def test_mlflow_run_passes_hydra_overrides_to_the_step(tmp_path):
    out = tmp_path / "outputs"
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    overrides = f"paths.output_dir={out} data.sample.images_per_subset={{train:2,validation:1,test:1}} data.sample.seed=7"
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}, "MLFLOW_TRACKING_URI": uri,
           # --env-manager local runs `python` from PATH: the activated venv, as for a user.
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run(
        [str(Path(sys.executable).parent / "mlflow"), "run", str(PROJECT), "-e", "sample_data",
         "--env-manager", "local", "--experiment-name", "bigcat_ml", "-P", f"overrides={overrides}"],
        env=env, capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    assert (out / "data" / "sample" / "ground_truth.json").exists()
    mlflow.set_tracking_uri(uri)
    runs = mlflow.search_runs(experiment_names=["bigcat_ml"])
    assert len(runs) == 1  # the project run and the step's run are one and the same
    assert runs.iloc[0]["params.data.sample.seed"] == "7"
    assert runs.iloc[0][f"tags.{STEP_TAG}"] == "sample_data"


# TensorFlow's start-up lines: Abseil's pre-init warning and I/W lines (the oneDNN banner), the
# CPU-feature message.
_TF_START_UP = re.compile(r"absl::InitializeLog|^[IW]\d{4} |oneDNN custom operations|TensorFlow binary is optimized", re.M)
# Inference on Spark's Python workers, so that their TensorFlow start-up is checked too.
_CARNIVORES = ["classes=carnivores", "evaluate.path=spark"]


@pytest.fixture(scope="module")
def carnivores(tmp_path_factory):
    """``main classes=carnivores`` as a user types it: the output folder and the process."""
    out = tmp_path_factory.mktemp("carnivores") / "outputs"
    done = _python("-m", "bigcat_ml.main", *_CARNIVORES, f"paths.output_dir={out}", *CHAIN)
    assert done.returncode == 0, done.stderr[-4000:]
    return out, done


def _artifact(cfg, run_id: str, path: str, dst: Path) -> Path:
    setup_tracking(cfg.mlflow)
    return Path(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=path, dst_path=str(dst)))


def test_classes_carnivores_evaluates_every_class_that_has_chips(carnivores, tmp_path):
    out, _ = carnivores
    cfg = _cfg(out, *_CARNIVORES)
    evaluation = _runs(cfg, "evaluate").dropna(subset=["tags.mlflow.parentRunId"]).iloc[0]  # main's
    predictions = pd.read_parquet(_artifact(cfg, evaluation.run_id, PREDICTIONS, tmp_path))
    per_class = pd.read_csv(_artifact(cfg, evaluation.run_id, PER_CLASS_CSV, tmp_path))
    chip_classes = set(predictions["LabelText"])
    assert chip_classes - {"Tiger", "Lion", "Cheetah", "Leopard", "Jaguar (Animal)", "Lynx"}  # more than the big cats
    assert set(per_class["class"]) == chip_classes
    assert per_class["support"].sum() == len(predictions) == evaluation["metrics.n_chips"]
    assert evaluation["metrics.unmapped_classes"] == 0 and evaluation["metrics.unmapped_chips"] == 0


def test_a_class_without_imagenet_classes_is_counted_unmapped_and_the_rest_scored(carnivores, tmp_path):
    out, _ = carnivores
    # main's chip dataset: the ground truth does not change the chips (but is part of the dataset's
    # step key since issue 12, so an imagenet_map override alone would address another dataset)
    unmapped = ["+classes.imagenet_map.Dog=[]", f"evaluate.dataset={_cfg(out, *_CARNIVORES).evaluate.dataset}"]
    done = _python("-m", "bigcat_ml.evaluate", *_CARNIVORES, *unmapped, f"paths.output_dir={out}", *CHAIN)
    assert done.returncode == 0, done.stderr[-4000:]
    cfg = _cfg(out, *_CARNIVORES, *unmapped)
    evaluation = _runs(cfg, "evaluate").sort_values("start_time").iloc[-1]
    predictions = pd.read_parquet(_artifact(cfg, evaluation.run_id, PREDICTIONS, tmp_path))
    per_class = pd.read_csv(_artifact(cfg, evaluation.run_id, PER_CLASS_CSV, tmp_path))
    dogs = int((predictions["LabelText"] == "Dog").sum())
    assert dogs > 0 and evaluation["metrics.unmapped_classes"] == 1 and evaluation["metrics.unmapped_chips"] == dogs
    assert "Dog" not in set(per_class["class"]) and per_class["support"].sum() == len(predictions) - dogs


def test_tensorflow_start_up_logs_stay_out_of_stderr_by_default(carnivores):
    _, done = carnivores
    assert "evaluate mobilenet" in done.stdout  # TensorFlow did start, in the driver and the workers
    assert _TF_START_UP.findall(done.stderr) == []


@pytest.fixture(scope="module")
def verbose_evaluation(carnivores) -> subprocess.CompletedProcess:
    """The README's ``python -m bigcat_ml.evaluate model=resnet50`` with ``verbose=true``, on main's chips."""
    out, _ = carnivores
    done = _python("-m", "bigcat_ml.evaluate", "model=resnet50", *_CARNIVORES, "verbose=true", f"paths.output_dir={out}", *CHAIN)
    assert done.returncode == 0, done.stderr[-4000:]
    return done


def test_verbose_shows_tensorflow_start_up_logs(verbose_evaluation):
    assert "oneDNN custom operations are on" in verbose_evaluation.stderr
    assert "This TensorFlow binary is optimized" in verbose_evaluation.stderr


# evaluate's log line, which only the log file of the job holds by default
_EVALUATED = re.compile(r"^\[[^]]+\]\[bigcat_ml\.scoring\.evaluation\]\[INFO\] - evaluated \d+ chips", re.M)


def test_verbose_puts_the_steps_log_lines_back_on_the_console(carnivores, verbose_evaluation):
    out, default = carnivores
    assert not _EVALUATED.search(default.stdout) and _EVALUATED.search(verbose_evaluation.stdout)
    assert "Setting default log level" in verbose_evaluation.stderr  # Spark's own log4j defaults
    first_job = sorted(out.glob("hydra/*/*/*.log"))[0]  # the fixture's main, before any later step
    assert _EVALUATED.search(first_job.read_text())  # the job's log file keeps it by default
