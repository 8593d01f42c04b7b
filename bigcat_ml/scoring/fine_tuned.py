"""The fine-tuned classifier file: a Keras model that knows its classes and its backbone.

A model trained by the ``train`` step is saved as one ``.keras`` file (Keras' own zip
format) with one extra entry, :data:`DESCRIPTION_ENTRY`: the class names in output order
and the backbone's ``model`` config (``keras_module`` picks ``preprocess_input``,
``input_size`` the resize). One self-describing file, because it travels where a weights
file travels: ``local_weights_file`` fetches it and inference ships it to the Spark
executors with ``addFile``, which handles single files; a sidecar file could be separated
from it. Keras ignores entries it does not know when loading.

The same file is the artifact of the MLflow pyfunc model (:mod:`bigcat_ml.training.pyfunc`),
so the registered model and ``evaluate`` score chips with the same code. It is loaded with
Keras' ``safe_mode`` on (no code stored in the file runs), and only from inside the model
folder whose ``MLmodel`` names it: an ``MLmodel`` is data anyone with write access to the
store can edit, so a path in it that leads out of the folder (``../``, an absolute path, a
symlink) is refused.
"""
from __future__ import annotations

import json
import os
import tempfile
import zipfile
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, Iterator, List, Sequence, Tuple

from bigcat_ml.config.schema import ModelConfig, Precision

if TYPE_CHECKING:
    import keras

DESCRIPTION_ENTRY = "bigcat_classifier.json"
CLASSIFIER_FILE = "classifier.keras"
# The Keras file inside a logged pyfunc model (relative to the MLflow model folder).
PYFUNC_ARTIFACT = "classifier"
# The file that describes an MLflow model folder.
MLMODEL_FILE = "MLmodel"


def save_classifier(model: "keras.Model", path: Path, class_names: Sequence[str], backbone: ModelConfig) -> Path:
    """Save ``model`` to ``path`` (``.keras``) with its class names and backbone config."""
    outputs = int(model.output_shape[-1])
    if outputs != len(class_names):
        raise ValueError(f"the model has {outputs} outputs but {len(class_names)} class names were given")
    model.save(str(path))
    description = {"class_names": list(class_names), "backbone": asdict(backbone)}
    with zipfile.ZipFile(path, "a") as archive:
        # Enum values (model.precision) are stored by value and read back into their Enum.
        archive.writestr(DESCRIPTION_ENTRY, json.dumps(description, indent=2, default=lambda v: v.value))
    return path


def read_description(path: Path) -> Tuple[List[str], ModelConfig]:
    """The class names (output order) and the backbone config stored in a classifier file."""
    try:
        with zipfile.ZipFile(path) as archive:
            description: Dict[str, Any] = json.loads(archive.read(DESCRIPTION_ENTRY))
    except (zipfile.BadZipFile, KeyError) as error:
        raise ValueError(
            f"{path} is not a classifier saved by the train step (no {DESCRIPTION_ENTRY} inside): "
            "set model.source to a model registered by `python -m bigcat_ml.train`"
        ) from error
    backbone = description["backbone"]
    return list(description["class_names"]), ModelConfig(**{**backbone, "precision": Precision(backbone["precision"])})


def load_classifier_file(path: Path) -> Tuple["keras.Model", List[str], ModelConfig]:
    """The Keras model, its class names and its backbone config."""
    import keras

    class_names, backbone = read_description(path)
    return keras.saving.load_model(str(path), compile=False, safe_mode=True), class_names, backbone


def logged_classifier(folder: Path, source: str) -> Path:
    """The classifier file that the ``MLmodel`` of the model folder ``folder`` names, once
    checked to lie inside ``folder`` (symlinks followed); ``source`` names the model in errors."""
    from mlflow.models import Model

    artifacts = Model.load(str(folder)).flavors.get("python_function", {}).get("artifacts", {})
    if PYFUNC_ARTIFACT not in artifacts:
        raise ValueError(f"model.source {source!r} is not a classifier logged by the train step (no {PYFUNC_ARTIFACT!r} artifact)")
    named = artifacts[PYFUNC_ARTIFACT]["path"]
    inside, resolved = folder.resolve(), (folder / named).resolve()
    if inside not in resolved.parents:
        raise ValueError(
            f"model {source!r}: its {MLMODEL_FILE} names the classifier {named!r}, which resolves to {resolved}, "
            f"outside the model folder {inside}; refusing to load it. Was the model edited? Log it again with the train step"
        )
    return folder / named


def classifier_given_to_load_context(artifact: str) -> Path:
    """The classifier MLflow hands a pyfunc model's ``load_context``, checked as :func:`logged_classifier` does.

    MLflow passes only the model folder joined with the ``MLmodel``'s path; it copies every
    artifact to ``<model folder>/artifacts/<file>`` (``mlflow.pyfunc.model``), so the folder
    is two levels up from a path that stays inside it.
    """
    folder = Path(os.path.normpath(artifact)).parents[1]
    if not (folder / MLMODEL_FILE).is_file():
        raise ValueError(
            f"the classifier {artifact} is not in the artifacts folder of an MLflow model: its {MLMODEL_FILE} "
            "points outside the model folder; refusing to load it. Was the model edited? Log it again with the train step"
        )
    return logged_classifier(folder, str(folder))


def resolved_model_uri(source: str) -> str:
    """``models:/<name>/<version>`` of the version a ``models:/`` URI names now (by number,
    alias, ``latest`` or stage, resolved in the configured registry); any other URI as given.

    A ValueError when the registry has no such model or version, naming what to set.
    """
    if not source.startswith("models:/"):
        return source
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException
    # MLflow's own resolution of every models:/ form (mlflow.pyfunc.load_model uses it).
    from mlflow.store.artifact.utils.models import get_model_name_and_version

    try:
        resolved = get_model_name_and_version(MlflowClient(), source)
    except MlflowException as error:
        raise ValueError(
            f"model.source {source!r} names no registered model version ({error.message}); use "
            "models:/<name>/<version>, models:/<name>@<alias> or models:/<name>/latest of a model registered by the train step"
        ) from error
    if len(resolved) == 1:  # models:/<model id>: one logged model, already unambiguous
        return source
    name, version = resolved
    return f"models:/{name}/{version}"


@contextmanager
def fetched_classifier(source: str) -> Iterator[Path]:
    """The classifier file of the MLflow model at ``source`` (:func:`download_classifier`),
    in a temporary folder removed when the block exits."""
    with tempfile.TemporaryDirectory(prefix="bigcat_ml-model-") as folder:
        yield download_classifier(source, Path(folder))


def download_classifier(source: str, folder: Path) -> Path:
    """The classifier file of the MLflow model at ``source``, downloaded into ``folder``.

    ``source`` is any model URI MLflow resolves (``models:/<name>/<version>``,
    ``runs:/<run>/model``, a local folder); the file is found through the model's
    ``MLmodel`` (its python_function artifacts), not by guessing a path, and refused if
    that path leads out of the model folder. A local folder is checked where it is as
    well, since the download copies what a symlink points at.
    """
    import mlflow
    from mlflow.exceptions import MlflowException

    from bigcat_ml.storage import fs

    in_place = fs.local_path(source)
    if in_place is not None and Path(in_place, MLMODEL_FILE).is_file():
        logged_classifier(Path(in_place), source)
    try:
        local = Path(mlflow.artifacts.download_artifacts(artifact_uri=source, dst_path=str(folder)))
    except (MlflowException, OSError) as error:
        raise ValueError(
            f"model.source {source!r} could not be fetched from MLflow ({error}); use models:/<name>/<version> "
            "of a model registered by the train step, or runs:/<run id>/model"
        ) from error
    return logged_classifier(local, source)
