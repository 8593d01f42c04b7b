"""train: a tiny backbone fine-tuned on the generated sample, logged, registered, scored, compared."""
from __future__ import annotations

import os
import shutil
import warnings
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest

from bigcat_ml import compare, evaluate, preprocess, train
from bigcat_ml.chips import manifest, readers
from bigcat_ml.stepkit.step import compose
from bigcat_ml.scoring.fine_tuned import CLASSIFIER_FILE, PYFUNC_ARTIFACT, download_classifier
from bigcat_ml.synthetic.write import generate_sample
from bigcat_ml.tracking import names
from bigcat_ml.training.augment import augment_chip
from bigcat_ml.training.data import ChipExamples, labelled_chips, subset_pipeline
from bigcat_ml.training.distributed import train_on_spark_barrier
from bigcat_ml.training.fit import fit_classifier
from bigcat_ml.training.pyfunc import LABEL, PROBABILITIES, REASON

pytestmark = [pytest.mark.spark, pytest.mark.slow]

# A 32-pixel random-init MobileNet on a sample of 12/6/6 images: seconds per epoch.
TINY = [
    "data.sample.images_per_subset={train:12,validation:6,test:6}",
    "spark.master='local[2]'",
    "spark.conf.spark.driver.memory=2g",
    "model.name=tiny_mobilenet",
    "model.input_size=32",
    "model.weights=null",
    "train.epochs=2",
    "train.batch_size=8",
    "evaluate.path=local",
    "evaluate.batch_size=8",
]
REGISTERED = "bigcat_bigcats_tiny_mobilenet"


def cfg_for(out: Path, *overrides: str):
    return compose([f"paths.output_dir={out}", *TINY, *overrides])


@pytest.fixture(scope="module")
def trained(tmp_path_factory, spark):
    """The sample, its chips, one train run and one zero-shot evaluation, in this process."""
    out = tmp_path_factory.mktemp("train") / "outputs"
    cfg = cfg_for(out)
    generate_sample(Path(cfg.data.root), cfg.data.sample)
    preprocess.run(cfg)
    result = train.run(cfg)
    zero_shot = evaluate.run(cfg)["run_id"]
    return {"out": out, "cfg": cfg, "result": result, "zero_shot": zero_shot}


def test_augmentation_is_reproducible_from_its_seed_and_changes_the_chip():
    chip = np.random.default_rng(1).integers(0, 256, (40, 60, 3), dtype=np.uint8)
    first = augment_chip(chip, np.random.default_rng(7), flip=True, crop=0.2, colour=0.2)
    again = augment_chip(chip, np.random.default_rng(7), flip=True, crop=0.2, colour=0.2)
    np.testing.assert_array_equal(first, again)
    assert 32 <= first.shape[0] <= 40 and 48 <= first.shape[1] <= 60 and first.dtype == np.uint8
    assert not np.array_equal(first[:32, :48], chip[:32, :48])
    np.testing.assert_array_equal(augment_chip(chip, np.random.default_rng(7), flip=False, crop=0, colour=0), chip)


def test_reading_a_subset_for_training_warns_nothing_and_prints_nothing(trained, capfd):
    """Each epoch reads both Subsets afresh: petastorm used to warn about ``schema_fields``
    and print "Cache cleanup complete." on stdout every time."""
    capfd.readouterr()
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        chips = list(labelled_chips(trained["cfg"].train.dataset, "train"))
    assert chips and [str(w.message) for w in said if "schema_fields" in str(w.message)] == []
    assert capfd.readouterr().out == ""


def test_a_train_run_logs_epochs_inputs_and_registers_one_model_version(trained):
    run = mlflow.get_run(trained["result"]["run_id"])
    client = mlflow.MlflowClient()
    assert [m.step for m in client.get_metric_history(run.info.run_id, "val_loss")] == [0, 1]
    assert {"loss", "accuracy", "val_loss", "val_accuracy", "best_val_loss"} <= set(run.data.metrics)
    contexts = {i.tags[0].value: i.dataset.name for i in run.inputs.dataset_inputs}
    assert contexts == {"training": "chips sample/bigcats [train]", "validation": "chips sample/bigcats [validation]"}
    assert run.data.tags[names.KIND_TAG] == names.FINE_TUNED
    assert run.data.params["train.learning_rate"] == "0.001"
    versions = client.search_model_versions(f"name = '{REGISTERED}'")
    assert [int(v.version) for v in versions] == [1] and versions[0].run_id == run.info.run_id
    assert trained["result"]["model_uri"] == f"models:/{REGISTERED}/1"


def test_the_registered_version_says_what_the_model_is_and_is_the_candidate(trained):
    cfg, run_id = trained["cfg"], trained["result"]["run_id"]
    digest = manifest.read_summary(cfg.train.dataset)["content_digest"]
    version = mlflow.MlflowClient().get_model_version_by_alias(REGISTERED, "candidate")
    assert str(version.version) == "1" and version.run_id == run_id
    assert version.description.startswith("tiny_mobilenet backbone, random-init weights, fine-tuned on ")
    assert f"(content digest {digest})" in version.description and "Tiger" in version.description
    assert version.tags[names.DATASET_DIGEST_TAG] == digest and version.tags[names.MODEL_TAG] == "tiny_mobilenet"
    # the run's val_accuracy is the last epoch's; the description names the kept one's
    run = mlflow.get_run(run_id)
    best = run.data.metrics["best_val_accuracy"]
    assert f"Kept epoch {int(run.data.metrics['best_epoch'])}: best_val_accuracy {best:.4f}" in run.data.tags[names.NOTE_TAG]
    assert run.data.tags[names.NOTE_TAG] == version.description


def test_the_registered_model_predicts_the_selected_classes_from_jpeg_bytes(trained):
    cfg = trained["cfg"]
    chips = [jpeg for jpeg, _ in labelled_chips(cfg.train.dataset, "test")][:3]
    model = mlflow.pyfunc.load_model(trained["result"]["model_uri"])
    out = model.predict(pd.DataFrame({"chip": [*chips, b"not a jpeg"]}))
    classes = model.metadata.metadata["class_names"]
    assert classes == sorted(classes) and "Tiger" in classes  # the dataset's selected classes, in its order
    assert set(out[LABEL][:3]) <= set(classes)
    np.testing.assert_allclose([sum(p) for p in out[PROBABILITIES][:3]], 1.0, atol=1e-4)
    assert out[REASON].tolist()[:3] == [None] * 3 and out[REASON].iloc[3] == "decode_error"
    assert model.metadata.get_input_schema().input_names() == ["chip"]


def _logged_model(trained, folder: Path) -> Path:
    return Path(mlflow.artifacts.download_artifacts(artifact_uri=trained["result"]["model_uri"], dst_path=str(folder)))


def test_the_logged_model_pickles_the_class_alone_and_carries_the_keras_file_as_its_artifact(trained, tmp_path):
    model = _logged_model(trained, tmp_path)
    pickled = (model / "python_model.pkl").read_bytes()
    assert len(pickled) < 100_000  # a pickled Keras model is megabytes, unpickled with safe_mode=False
    assert b"keras" not in pickled.lower() and b"ChipClassifierModel" in pickled
    artifacts = mlflow.models.Model.load(str(model)).flavors["python_function"]["artifacts"]
    assert artifacts[PYFUNC_ARTIFACT]["path"] == f"artifacts/{CLASSIFIER_FILE}"


@pytest.mark.parametrize("tamper", ["parent", "absolute", "symlink"])
def test_a_model_whose_mlmodel_leads_the_classifier_out_of_its_folder_is_refused(trained, tmp_path, tamper):
    model = _logged_model(trained, tmp_path / "logged")
    logged = model / "artifacts" / CLASSIFIER_FILE
    outside = tmp_path / "outside.keras"
    shutil.copy(logged, outside)  # a working classifier, so that only the path can be refused
    if tamper == "symlink":
        logged.unlink()
        logged.symlink_to(outside)
    else:
        named = os.path.relpath(outside, model) if tamper == "parent" else str(outside)
        mlmodel = model / "MLmodel"
        text = mlmodel.read_text()
        assert f"path: artifacts/{CLASSIFIER_FILE}" in text
        mlmodel.write_text(text.replace(f"path: artifacts/{CLASSIFIER_FILE}", f"path: {named}"))

    with pytest.raises(ValueError, match="outside the model folder"):
        download_classifier(str(model), tmp_path / "fetched")
    with pytest.raises(ValueError, match="outside the model folder"):
        mlflow.pyfunc.load_model(str(model))


def test_training_is_deterministic_with_a_fixed_seed(trained):
    cfg = cfg_for(trained["out"], "train.epochs=1")
    classes = manifest.read_summary(cfg.train.dataset)["selected_classes"]
    names_ = [c["DisplayName"] for c in classes]
    first, second = (fit_classifier(cfg.train, cfg.model, names_, verbose=0) for _ in range(2))
    assert first.history == second.history
    for a, b in zip(first.model.get_weights(), second.model.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_training_under_a_distribution_strategy_reports_the_validation_metrics_of_the_model_it_keeps(trained):
    """The data-parallel path's loop (``strategy.run`` steps, not ``Model.fit``), here on one CPU replica."""
    import keras
    import tensorflow as tf

    cfg = cfg_for(trained["out"])
    names_ = [c["DisplayName"] for c in manifest.read_summary(cfg.train.dataset)["selected_classes"]]
    result = fit_classifier(cfg.train, cfg.model, names_, strategy=tf.distribute.MirroredStrategy(["/cpu:0"]))
    assert set(result.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert len(result.history["val_loss"]) == 2 and result.train_stats.used > 0
    validation = ChipExamples(cfg.train.dataset, "validation", names_, cfg.model, None, 0)
    batches = [(result.model(images, training=False).numpy(), labels.numpy()) for images, labels in subset_pipeline(validation, 8)]
    probabilities, labels = (np.concatenate(parts) for parts in zip(*batches))
    best = result.best_metrics
    assert np.mean(probabilities.argmax(axis=1) == labels) == pytest.approx(best["val_accuracy"])
    loss = keras.losses.SparseCategoricalCrossentropy()(labels, probabilities)
    assert float(loss) == pytest.approx(best["val_loss"], rel=1e-4)


@pytest.fixture(scope="module")
def fine_tuned_evaluation(trained) -> str:
    """The registered model evaluated as a user does: ``evaluate model.source=models:/...``."""
    return evaluate.run(cfg_for(trained["out"], f"model.source={trained['result']['model_uri']}"))["run_id"]


def test_evaluate_scores_the_fine_tuned_model_on_the_test_chips_with_its_own_classes(trained, fine_tuned_evaluation):
    cfg = trained["cfg"]
    run = mlflow.get_run(fine_tuned_evaluation)
    assert run.data.tags[names.KIND_TAG] == names.FINE_TUNED and run.data.tags[names.SUBSET_TAG] == "test"
    assert run.data.tags[names.MODEL_TAG] == "tiny_mobilenet" and "unfrozen backbone" in run.data.tags[names.TRAINING_TAG]
    assert run.data.metrics["chips_read"] == readers.count_chips(cfg.evaluate.dataset, "test")
    assert run.data.metrics["test/top1_accuracy"] == run.data.metrics["top1_accuracy"]
    assert run.data.metrics["family_accuracy"] == 1.0  # every output is a selected class
    zero_shot = mlflow.get_run(trained["zero_shot"])
    assert zero_shot.data.tags[names.DATASET_DIGEST_TAG] == run.data.tags[names.DATASET_DIGEST_TAG]
    assert {"train/top1_accuracy", "validation/top1_accuracy", "test/top1_accuracy"} <= set(zero_shot.data.metrics)


def test_compare_puts_zero_shot_and_fine_tuned_runs_side_by_side_on_the_test_chips(trained, fine_tuned_evaluation, capsys):
    table = compare.run(cfg_for(trained["out"]))["table"].set_index("kind")
    assert sorted(table.index) == [names.FINE_TUNED, names.ZERO_SHOT]
    assert table.loc[names.FINE_TUNED, "evaluated"] == "test" and table.loc[names.ZERO_SHOT, "evaluated"] == "all"
    assert table.loc[names.ZERO_SHOT, "test/top1_accuracy"] == mlflow.get_run(trained["zero_shot"]).data.metrics["test/top1_accuracy"]
    assert table.loc[names.FINE_TUNED, "training"].startswith("unfrozen backbone")
    assert "fine-tuned" in capsys.readouterr().out


def test_more_barrier_workers_than_task_slots_are_refused_before_any_task(spark, tmp_path):
    cfg = compose(["train.strategy=spark_barrier", "train.num_workers=3"])  # the test session runs local[2]
    with pytest.raises(ValueError, match=r"train.num_workers=3 barrier tasks must all run at once, but the cluster has 2 task slots"):
        train_on_spark_barrier(spark, cfg.train, cfg.model, ["Lion", "Tiger"], tmp_path / "classifier.keras")
    assert not (tmp_path / "classifier.keras").exists()
