"""``keras.applications`` classifiers chosen by configuration: build, weights, preprocessing.

``model.keras_module``/``model.keras_class`` name any model of ``keras.applications``
(``mobilenet``/``MobileNet``, ``resnet50``/``ResNet50``…); the module's own
``preprocess_input`` prepares its input. ``model.weights`` is one of:

* ``imagenet``: Keras downloads the pretrained weights (needs internet, cached in
  ``~/.keras/models``);
* ``null``: random initialisation, for offline smoke runs. It is seeded
  (:data:`RANDOM_INIT_SEED`) so that every process builds the same model, and every output
  must say ``random-init`` (:func:`weights_source`);
* a path or URI of a weights file (Keras 3 ``.weights.h5``, or legacy ``.h5``) saved from
  the same architecture. URIs are read with pyarrow (``file://``, ``hdfs://``, ``s3://``…).

``model.source`` (``models:/<name>/<version>``, ``runs:/<run>/model``) names a fine-tuned
classifier logged by the ``train`` step instead; :func:`local_weights_file` then fetches
its classifier file (:mod:`bigcat_ml.scoring.fine_tuned`), which travels as a weights
file does.

Keras is imported inside the functions: it takes seconds, and callers that only need
:func:`weights_source` (tags, reports) should not pay for it.
"""
from __future__ import annotations

import functools
import importlib
import logging
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Optional, Sequence

import numpy as np
from omegaconf import DictConfig, OmegaConf
from PIL import Image

from bigcat_ml.config.schema import ModelConfig, Precision
from bigcat_ml.scoring.imagenet import NUM_CLASSES
from bigcat_ml.storage import fs
from bigcat_ml.tracking import names
from bigcat_ml.tracking.redact import redact_text

if TYPE_CHECKING:
    import keras

log = logging.getLogger(__name__)

IMAGENET = "imagenet"
RANDOM_INIT = "random-init"
RANDOM_INIT_SEED = 0
KERAS_APPLICATIONS = "keras.applications"


def as_model_config(model_cfg: Any) -> ModelConfig:
    """A plain :class:`ModelConfig` (no OmegaConf parent), cheap to pickle to Spark workers."""
    if isinstance(model_cfg, DictConfig):
        return ModelConfig(**OmegaConf.to_container(model_cfg, resolve=True))
    return model_cfg


def weights_source(model_cfg: Any) -> str:
    """``imagenet``, ``random-init``, ``file:<path or URI>`` or ``fine-tuned:<model URI>``:
    what to tag every output with, and name runs and printed lines by, so a URI's
    credentials (user-info, a signed URL's ``sig=``) are redacted."""
    if model_cfg.source:
        return f"{names.FINE_TUNED}:{redact_text(model_cfg.source)}"
    if model_cfg.weights is None:
        return RANDOM_INIT
    if model_cfg.weights == IMAGENET:
        return IMAGENET
    return f"file:{redact_text(model_cfg.weights)}"


@dataclass(frozen=True)
class KerasApplication:
    """The model constructor and its ``preprocess_input`` (float RGB 0..255 -> model input)."""

    constructor: Callable[..., "keras.Model"]
    preprocess_input: Callable[[np.ndarray], np.ndarray]


def keras_application(model_cfg: Any) -> KerasApplication:
    """Look up ``keras.applications.<keras_module>.<keras_class>`` and its preprocessing."""
    import keras  # noqa: F401  (makes keras.applications importable by name)

    module_name = f"{KERAS_APPLICATIONS}.{model_cfg.keras_module}"
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        applications = importlib.import_module(KERAS_APPLICATIONS)
        known = sorted(m for m in dir(applications) if m[:1].islower() and m != "imagenet_utils")
        raise ValueError(
            f"model {model_cfg.name!r}: there is no module {module_name}; model.keras_module must be one of {known}"
        ) from error
    constructor = getattr(module, model_cfg.keras_class, None)
    preprocess_input = getattr(module, "preprocess_input", None)
    if constructor is None or preprocess_input is None:
        classes = sorted(n for n in dir(module) if n[:1].isupper())
        raise ValueError(
            f"model {model_cfg.name!r}: {module_name} has no class {model_cfg.keras_class!r} "
            f"(it has {classes}); fix model.keras_class"
        )
    return KerasApplication(constructor, preprocess_input)


def weights_digest(path: Path) -> str:
    """SHA-256 of a weights file, computed once per (path, size, modification time): the
    reuse key and the shipping to executors both need it, and ResNet50's weights are 100 MB."""
    info = path.stat()
    return _file_digest(str(path), info.st_size, info.st_mtime_ns)


@functools.lru_cache(maxsize=8)
def _file_digest(path: str, size: int, mtime_ns: int) -> str:
    return fs.sha256(path)


def weights_identity(model_cfg: Any) -> str:
    """What the weights are, for reuse keys: ``imagenet``, ``random-init`` or
    ``sha256:<hex>`` of a weights file's content (another file at the same path is other
    weights; the same file moved is the same weights). A fine-tuned ``model.source`` is
    ``<models:/name/version it resolves to now> sha256:<hex>`` of its classifier file: an
    alias or ``latest`` that moves names another model, and a version number of a
    registered model deleted and made again names other weights."""
    if model_cfg.source:
        from bigcat_ml.scoring.fine_tuned import fetched_classifier, resolved_model_uri

        resolved = resolved_model_uri(model_cfg.source)
        with fetched_classifier(resolved) as path:  # a fresh download: no (path, size, time) to cache by
            return f"{resolved} sha256:{fs.sha256(str(path))}"
    if model_cfg.weights is None or model_cfg.weights == IMAGENET:
        return weights_source(model_cfg)
    try:
        with local_weights_file(model_cfg) as path:
            return f"sha256:{weights_digest(path)}"
    except FileNotFoundError:
        # The step's own run reports the missing file (and ends FAILED); the key only needs
        # to differ from any real file's.
        return f"missing:{model_cfg.weights}"


@contextmanager
def local_weights_file(model_cfg: Any) -> Iterator[Optional[Path]]:
    """The configured weights file on this machine, for the duration of the block.

    A local path is used as it is; a URI is downloaded to a temporary folder that is
    removed when the block exits. ``None`` for ``imagenet`` and random initialisation.
    A missing file is a :class:`FileNotFoundError` naming the file and the model. With
    ``model.source`` set, the fine-tuned classifier file of that MLflow model.
    """
    if model_cfg.source:
        from bigcat_ml.scoring.fine_tuned import fetched_classifier

        with fetched_classifier(model_cfg.source) as path:
            yield path
        return
    weights = model_cfg.weights
    if weights is None or weights == IMAGENET:
        yield None
        return
    missing = FileNotFoundError(
        f"model {model_cfg.name!r}: weights file {weights} does not exist; set model.weights to an existing "
        f"path or URI, to {IMAGENET!r}, or to null for random initialisation"
    )
    if "://" not in weights:
        path = Path(weights).expanduser()
        if not path.is_file():
            raise missing
        yield path.resolve()
        return
    if not fs.is_file(weights):
        raise missing
    with tempfile.TemporaryDirectory(prefix="bigcat_ml-weights-") as folder:
        local = Path(folder) / weights.rstrip("/").rsplit("/", 1)[-1]
        fs.copy_to_local(weights, local)
        log.info("downloaded weights %s to %s", weights, local)
        yield local


# Keras dtype policy of each model.precision.
KERAS_POLICIES = {Precision.float32: "float32", Precision.bfloat16: "mixed_bfloat16"}


def as_precision(value: Any) -> Precision:
    """``model.precision`` as a :class:`Precision`, from the enum or its name."""
    try:
        return value if isinstance(value, Precision) else Precision(str(value))
    except ValueError:
        raise ValueError(f"model.precision must be one of {[p.value for p in Precision]}; got {value!r}") from None


@contextmanager
def precision_policy(precision: Any) -> Iterator[str]:
    """Build models (or train them) in ``precision`` within the block: Keras' global dtype
    policy is set to :data:`KERAS_POLICIES` and restored afterwards, since one process may
    hold a float32 and a bfloat16 model at once. Yields the policy name.

    Layers read the policy when they are created, so a model built inside the block keeps
    it; ``mixed_bfloat16`` keeps the variables in float32 (weights files load and save as
    in float32) and computes in bfloat16.
    """
    import keras

    policy = KERAS_POLICIES[as_precision(precision)]
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        yield policy
    finally:
        keras.config.set_dtype_policy(previous)


def build_model(model_cfg: Any, weights_file: Optional[Path] = None) -> "keras.Model":
    """Build the configured model with its weights, in ``model.precision``.

    ``weights_file``: a local copy of the configured weights file (see
    :func:`local_weights_file`; on Spark workers the shipped copy). Weights of another
    architecture (Keras finds variables missing or of another shape) are a
    :class:`ValueError` naming the file and the model. Random initialisation first
    resets this process's Python, NumPy and TensorFlow generators to
    :data:`RANDOM_INIT_SEED`, so every process builds the same weights. In bfloat16 the
    classifier's softmax runs in float32 (Keras' advice for mixed precision): over 1000
    classes, bfloat16's 8-bit mantissa would leave probabilities that do not sum to 1.
    """
    with precision_policy(model_cfg.precision) as policy:
        model = _build(model_cfg, weights_file, softmax=policy == KERAS_POLICIES[Precision.float32])
    if model.output.dtype != "float32":
        import keras

        model = keras.Model(model.input, keras.layers.Activation("softmax", dtype="float32")(model.output))
    return model


def _build(model_cfg: Any, weights_file: Optional[Path], softmax: bool) -> "keras.Model":
    """The model of :func:`build_model` with logits as outputs unless ``softmax``."""
    import keras

    application = keras_application(model_cfg)
    shape = (model_cfg.input_size, model_cfg.input_size, 3)
    head = {} if softmax else {"classifier_activation": None}
    if model_cfg.weights is not None and model_cfg.weights != IMAGENET and weights_file is None:
        raise ValueError(f"model {model_cfg.name!r}: weights file {model_cfg.weights} was not fetched; pass weights_file")
    try:
        if model_cfg.weights == IMAGENET:
            return application.constructor(weights=IMAGENET, input_shape=shape, **head)
        if model_cfg.weights is None:
            keras.utils.set_random_seed(RANDOM_INIT_SEED)
        model = application.constructor(weights=None, input_shape=shape, **head)
    except Exception as error:
        hint = " (downloading them needs internet; use a weights file or null)" if model_cfg.weights == IMAGENET else ""
        raise ValueError(
            f"cannot build model {model_cfg.name!r} ({KERAS_APPLICATIONS}.{model_cfg.keras_module}."
            f"{model_cfg.keras_class}, input {model_cfg.input_size} px, weights {weights_source(model_cfg)}{hint}): "
            f"{error}"
        ) from error
    if weights_file is not None:
        _load_weights(model, weights_file, model_cfg)
    return model


def _load_weights(model: "keras.Model", weights_file: Path, model_cfg: Any) -> None:
    try:
        model.load_weights(str(weights_file))
    except Exception as error:
        raise ValueError(
            f"weights file {model_cfg.weights} does not fit model {model_cfg.name!r} "
            f"({model_cfg.keras_class}): was it saved from another architecture? Keras says: {error}"
        ) from error


def check_model(model: "keras.Model", model_cfg: Any, classes: int = NUM_CLASSES) -> None:
    """Fail unless the model maps one input to ``classes`` probabilities (ImageNet's 1000).

    One dry run on an all-zero input: cheap, and it catches a classifier head of another
    size or one without softmax before any Spark task starts.
    """
    size = model_cfg.input_size
    probs = np.asarray(model.predict_on_batch(np.zeros((1, size, size, 3), np.float32)))
    if probs.shape != (1, classes) or not np.isclose(probs.sum(), 1.0, atol=1e-3) or (probs < 0).any():
        raise ValueError(
            f"model {model_cfg.name!r} must output {classes} class probabilities (softmax) per image; "
            f"it gave shape {probs.shape[1:]} summing to {probs.sum():.4f}"
        )


def resize_chip(chip: np.ndarray, size: int) -> np.ndarray:
    """An RGB uint8 chip (h, w, 3) resized to (size, size, 3) pixels, bilinear.

    Plain resize, aspect ratio not kept: chips are tight boxes around the object, so a
    centre crop would cut the object off, and Keras' own loaders (``load_img``,
    ``image_dataset_from_directory``) also stretch to the target size. Pillow's bilinear
    filter widens its support when shrinking, so downscaling is antialiased.
    """
    return np.asarray(Image.fromarray(chip).resize((size, size), Image.BILINEAR))


def model_input(chips: Sequence[np.ndarray], application: KerasApplication, size: int) -> np.ndarray:
    """Resized RGB uint8 chips -> the float32 batch (n, size, size, 3) the model takes."""
    batch = np.stack([resize_chip(chip, size) for chip in chips]).astype(np.float32)
    return np.asarray(application.preprocess_input(batch), dtype=np.float32)
