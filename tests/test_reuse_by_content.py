"""Reuse by content, not by existence: each config has its own chip folder, and a finished
step is reused only while its recorded output is there with the recorded digest."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import mlflow
import pytest

from bigcat_ml import evaluate, main as main_step, preprocess, sample_data, train
from bigcat_ml.chips.family import LATEST_ALIAS
from bigcat_ml.chips.layout import REJECTS_DIR, SUMMARY_FILE
from bigcat_ml.chips.manifest import read_summary
from bigcat_ml.chips.summary import ChipSummary
from bigcat_ml.chips.trusted import UntrustedDatasetError
from bigcat_ml.stepkit.preflight import MissingInputError, check_inputs
from bigcat_ml.stepkit.step import compose
from bigcat_ml.scoring.fine_tuned import PYFUNC_ARTIFACT
from bigcat_ml.synthetic.ground_truth import read_ground_truth
from bigcat_ml.synthetic.write import BOXES_FILE
from bigcat_ml.tracking.names import DATASET_DIGEST_TAG
from bigcat_ml.tracking.runs import code_version_of, setup_tracking

CHAIN = [
    "model.weights=null",
    "model.input_size=32",
    "evaluate.path=local",
    "data.sample.images_per_subset={train:8,validation:3,test:3}",
    "spark.master='local[2]'",
]
PADDED = "preprocess.padding=0.1"

pytestmark = [pytest.mark.spark, pytest.mark.slow]


def _cfg(out: Path, *overrides: str):
    return compose([f"paths.output_dir={out}", *CHAIN, *overrides])


def _digest(cfg, run_id: str) -> str:
    setup_tracking(cfg.mlflow)
    return mlflow.get_run(run_id).data.tags[DATASET_DIGEST_TAG]


@pytest.fixture(scope="module")
def scenario(spark, tmp_path_factory):
    """``main``; ``main preprocess.padding=0.1``; ``main``: the issue's scenario."""
    out = tmp_path_factory.mktemp("reuse") / "outputs"
    runs = [main_step.run(_cfg(out, *extra)) for extra in ([], [PADDED], [])]
    record = {
        f"run{i + 1}": {
            "preprocess": r["preprocess"],
            "evaluate": r["evaluate"],
            "digest": _digest(_cfg(out), r["preprocess"]),
            "output": _cfg(out, *extra).preprocess.output,
        }
        for i, (r, extra) in enumerate(zip(runs, ([], [PADDED], [])))
    }
    print("reuse scenario:", json.dumps(record, indent=1))  # pytest -s shows it
    return out, record


def test_each_config_writes_its_own_chips_and_a_returning_config_reuses_its_runs(scenario):
    out, runs = scenario
    first, padded, again = runs["run1"], runs["run2"], runs["run3"]

    assert first["output"] != padded["output"] and first["output"] == again["output"]
    assert first["digest"] != padded["digest"]
    assert again["preprocess"] == first["preprocess"] and again["evaluate"] == first["evaluate"]
    assert again["digest"] == first["digest"]
    assert Path(first["output"]).exists() and Path(padded["output"]).exists()  # nothing overwritten
    alias = Path(first["output"]).parent / LATEST_ALIAS
    assert alias.resolve() == Path(padded["output"]).resolve()  # the last one written


def test_deleting_the_chips_means_recompute_not_reuse(scenario):
    out, runs = scenario
    shutil.rmtree(Path(runs["run1"]["output"]) / "chips")

    again = main_step.run(_cfg(out))

    assert again["preprocess"] != runs["run1"]["preprocess"]
    assert _digest(_cfg(out), again["preprocess"]) == runs["run1"]["digest"]  # the same chips, rebuilt
    assert again["evaluate"] == runs["run1"]["evaluate"]  # same chips, same model: reused


def test_an_edited_file_means_recompute_and_a_full_check_sees_a_same_size_edit(scenario):
    out, runs = scenario
    cfg = _cfg(out, PADDED)
    run_id = runs["run2"]["preprocess"]
    rejects_file = next((Path(cfg.preprocess.output) / REJECTS_DIR).glob("*.parquet"))
    assert preprocess.STEP.output_exists(cfg, run_id)

    data = bytearray(rejects_file.read_bytes())
    stat = rejects_file.stat()
    data[len(data) // 2] ^= 0xFF  # same size, and the old modification time put back
    rejects_file.write_bytes(bytes(data))
    os.utime(rejects_file, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert preprocess.STEP.output_exists(cfg, run_id)  # the cheap check cannot see it
    assert not preprocess.STEP.output_exists(_cfg(out, PADDED, "reuse_check=full"), run_id)

    with rejects_file.open("ab") as stream:
        stream.write(b"edited")
    assert not preprocess.STEP.output_exists(cfg, run_id)


def test_an_edited_summary_means_recompute_and_evaluate_refuses_it(scenario, caplog):
    """The issue: ``chips`` edited in summary.json (same size, modification time put back)
    was reused and evaluate then failed with "this is a bug"; an edited selected_classes
    would have swapped labels."""
    out, _ = scenario
    cfg = _cfg(out)
    run_id = main_step.run(cfg)["preprocess"]  # the run whose chips are there now (all reused)
    summary_file = Path(cfg.preprocess.output) / SUMMARY_FILE
    original, stat = summary_file.read_bytes(), summary_file.stat()
    chips = json.loads(original)["chips"]
    edited = chips + 1 if len(str(chips + 1)) == len(str(chips)) else chips - 1
    summary_file.write_bytes(original.replace(f'"chips": {chips},'.encode(), f'"chips": {edited},'.encode()))
    os.utime(summary_file, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    try:
        assert summary_file.stat().st_size == stat.st_size and summary_file.read_bytes() != original
        with caplog.at_level("INFO", logger="bigcat_ml.preprocess"):
            assert not preprocess.STEP.output_exists(cfg, run_id)
        assert "summary.json is not the one its manifest.json records" in caplog.text
        with pytest.raises(UntrustedDatasetError, match="summary.json is not the one its manifest.json records"):
            read_summary(cfg.preprocess.output)
    finally:
        summary_file.write_bytes(original)
        os.utime(summary_file, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert preprocess.STEP.output_exists(cfg, run_id)


def test_weights_files_enter_the_evaluate_key_by_content_not_path(scenario, tmp_path):
    out, _ = scenario
    one, same, other = tmp_path / "a.weights.h5", tmp_path / "moved" / "b.weights.h5", tmp_path / "c.weights.h5"
    same.parent.mkdir()
    one.write_bytes(b"weights v1")
    same.write_bytes(b"weights v1")
    other.write_bytes(b"weights v2")

    def key(path: Path) -> str:
        return evaluate.STEP.key(_cfg(out, f"model.weights='{path}'"))

    assert key(one) == key(same)
    assert key(one) != key(other)


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.email=t@example.com", "-c", "user.name=t", *args], cwd=repo, check=True, capture_output=True)


def test_the_code_version_covers_untracked_files_under_the_code_folders(tmp_path):
    repo = tmp_path / "project"
    (repo / "bigcat_ml").mkdir(parents=True)
    (repo / "conf").mkdir()
    (repo / "bigcat_ml" / "step.py").write_text("x = 1\n")
    (repo / ".gitignore").write_text("__pycache__/\n")
    _git(repo, "init", "-q")
    _git(repo, "add", ".")
    _git(repo, "commit", "-qm", "init")
    committed = code_version_of(repo)
    assert "+dirty" not in committed

    (repo / "bigcat_ml" / "__pycache__").mkdir()
    (repo / "bigcat_ml" / "__pycache__" / "step.cpython-311.pyc").write_bytes(b"ignored")
    assert code_version_of(repo) == committed
    (repo / "conf" / "new_model.yaml").write_text("name: a\n")
    with_new = code_version_of(repo)
    (repo / "conf" / "new_model.yaml").write_text("name: b\n")

    assert with_new != committed and with_new.startswith(committed + "+dirty.")
    assert code_version_of(repo) != with_new


def test_the_imagenet_ground_truth_of_the_classes_does_not_move_the_chip_folder(tmp_path):
    plain = compose([f"paths.output_dir={tmp_path}"])
    remapped = compose([f"paths.output_dir={tmp_path}", "+classes.imagenet_map.Lynx=[287,286]"])
    other_classes = compose([f"paths.output_dir={tmp_path}", "classes.names=[Tiger]"])

    assert remapped.preprocess.output == plain.preprocess.output  # the same chips, scored against another truth
    assert other_classes.preprocess.output != plain.preprocess.output


def _selected_boxes(cfg, run_id: str) -> float:
    setup_tracking(cfg.mlflow)
    return mlflow.get_run(run_id).data.metrics["selected_boxes"]


def test_an_edited_box_csv_means_main_recomputes_preprocess_on_the_edited_rows(scenario):
    out, runs = scenario
    cfg = _cfg(out)
    boxes = Path(cfg.data.root) / BOXES_FILE.format(subset="train")
    selected = {mid for mid, _ in ChipSummary.read(runs["run1"]["output"]).selected_classes}
    header, *rows = boxes.read_text().splitlines(keepends=True)
    dropped = next(i for i, row in enumerate(rows) if row.split(",")[2] in selected)
    boxes.write_text("".join([header, *rows[:dropped], *rows[dropped + 1 :]]))

    again = main_step.run(_cfg(out))

    assert again["preprocess"] != runs["run1"]["preprocess"]
    assert _selected_boxes(cfg, again["preprocess"]) == _selected_boxes(cfg, runs["run1"]["preprocess"]) - 1


def test_a_sample_of_another_seed_written_since_is_regenerated_not_reused_under_the_old_record(scenario):
    out, runs = scenario
    sample_data.run(_cfg(out, "data.sample.seed=3"))

    padded = main_step.run(_cfg(out, PADDED))

    assert read_ground_truth(Path(_cfg(out).data.root))["config"]["seed"] == 0  # seed 0's files again
    assert _digest(_cfg(out), padded["preprocess"]) == runs["run2"]["digest"]  # and seed 0's chips cut from them


class _Probe(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input):
        return model_input


def test_a_models_alias_enters_the_evaluate_key_as_the_version_it_names_now(scenario, tmp_path):
    out, _ = scenario
    setup_tracking(_cfg(out).mlflow)
    name, client = "alias_probe", mlflow.MlflowClient()
    for version, content in (("1", b"classifier v1"), ("2", b"classifier v2")):
        classifier = tmp_path / version / "classifier.keras"
        classifier.parent.mkdir()
        classifier.write_bytes(content)
        with mlflow.start_run():
            mlflow.pyfunc.log_model(
                name="model", python_model=_Probe(), artifacts={PYFUNC_ARTIFACT: str(classifier)},
                registered_model_name=name, pip_requirements=[],
            )

    def key(source: str) -> str:
        return evaluate.STEP.key(_cfg(out, f"model.source='{source}'"))

    client.set_registered_model_alias(name, "champion", "1")
    on_one = key(f"models:/{name}@champion")
    client.set_registered_model_alias(name, "champion", "2")
    on_two = key(f"models:/{name}@champion")

    assert on_one != on_two
    assert on_one == key(f"models:/{name}/1")
    assert on_two == key(f"models:/{name}/2") == key(f"models:/{name}/latest")


@pytest.mark.parametrize("step, setting", [(evaluate, "evaluate.dataset"), (train, "train.dataset")])
def test_a_step_without_chips_at_its_address_names_the_family_s_latest_dataset_and_the_override(scenario, step, setting):
    out, runs = scenario
    cfg = _cfg(out, "preprocess.padding=0.3")  # a config whose chips were never written
    latest = Path(runs["run1"]["output"]).parent / LATEST_ALIAS

    with pytest.raises(FileNotFoundError) as raised:
        step.run(cfg)

    message = str(raised.value)
    assert f"{setting}={cfg.preprocess.output}: no chip dataset there" in message
    assert message.endswith(f"To use the latest: {setting}={latest}")
    assert runs["run1"]["output"] in message and runs["run2"]["output"] in message
    with pytest.raises(MissingInputError) as before_start:  # the entry point's pre-flight says the same
        check_inputs(cfg, setting.split(".")[0])
    assert message in str(before_start.value)
