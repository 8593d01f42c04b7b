"""The chip classifier: a built model and its preprocessing, JPEG chips in, top-k or a reject reason out.

:func:`shared_classifier` builds one per process and keeps it: both inference paths and
every Spark Python worker score with it; the MLflow model (:mod:`bigcat_ml.training.pyfunc`)
wraps :func:`fine_tuned_classifier`.
"""
from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from bigcat_ml.chips import schema
from bigcat_ml.config.schema import ModelConfig
from bigcat_ml.oid.rejects import DECODE_ERROR, PREDICT_ERROR, fails_the_task
from bigcat_ml.scoring.fine_tuned import load_classifier_file
from bigcat_ml.scoring.imagenet import NUM_CLASSES, class_names, top_k
from bigcat_ml.scoring.inference.tables import DETAIL, REASON
from bigcat_ml.scoring.models import (
    RANDOM_INIT,
    KerasApplication,
    as_model_config,
    build_model,
    check_model,
    keras_application,
    model_input,
    weights_source,
)

log = logging.getLogger(__name__)


@dataclass
class ChipClassifier:
    """A built model and its preprocessing: JPEG chips in, top-k or a reject reason out."""

    model: Any
    application: KerasApplication
    input_size: int
    k: int
    # Class names by output index for a fine-tuned head; None = the 1000 ImageNet classes.
    labels: Optional[np.ndarray] = None

    @property
    def n_classes(self) -> int:
        return NUM_CLASSES if self.labels is None else len(self.labels)

    def score(self, jpegs: Sequence[bytes]) -> Dict[str, np.ndarray]:
        """One entry per chip, in order: ``top_k_indices`` (n, k) int32, ``top_k_labels``
        (n, k) str, ``top_k_probs`` (n, k) float32, and ``reason``/``detail`` (None on a
        prediction; on a reject the top-k arrays hold -1 / "" / NaN)."""
        n = len(jpegs)
        reason = np.full(n, None, dtype=object)
        detail = np.full(n, None, dtype=object)
        decoded: Dict[int, np.ndarray] = {}
        for i, jpeg in enumerate(jpegs):
            try:
                decoded[i] = _decode_rgb(jpeg)
            except Exception as error:  # any undecodable chip becomes a counted reject...
                if fails_the_task(error):  # ...but running out of memory fails the task
                    raise
                reason[i], detail[i] = DECODE_ERROR, f"{type(error).__name__}: {error}"
        indices = np.full((n, self.k), -1, np.int32)
        probs = np.full((n, self.k), np.nan, np.float32)
        rows = np.fromiter(decoded, dtype=np.int64, count=len(decoded))
        if len(rows):
            softmax = self._softmax([decoded[i] for i in rows], rows, reason, detail)
            ok = np.array([reason[i] is None for i in rows], dtype=bool)
            if ok.any():
                indices[rows[ok]], probs[rows[ok]] = top_k(softmax[ok], self.k)
        names = class_names(np.maximum(indices, 0)) if self.labels is None else self.labels[np.maximum(indices, 0)]
        labels = np.where(indices >= 0, names, "")
        return {"top_k_indices": indices, "top_k_labels": labels, "top_k_probs": probs, REASON: reason, DETAIL: detail}

    def _softmax(self, chips: List[np.ndarray], rows: np.ndarray, reason: np.ndarray, detail: np.ndarray) -> np.ndarray:
        """(len(chips), 1000) probabilities; a chip the model fails on gets a
        ``predict_error`` in ``reason``/``detail`` at its ``rows`` position.

        The batch is predicted at once; if that raises, chip by chip, so one bad chip
        costs only itself. Non-finite outputs also count as a failure of that chip.
        Running out of memory is no chip's fault: it is raised (:func:`fails_the_task`).
        """
        try:
            out = self._predict(chips)
        except Exception as error:
            if fails_the_task(error):  # out of memory: the task fails and Spark retries it
                raise
            log.warning("a batch of %d chips failed to predict; retrying chip by chip", len(chips), exc_info=True)
            out = np.full((len(chips), self.n_classes), np.nan, np.float32)
            for j, (row, chip) in enumerate(zip(rows, chips)):
                try:
                    out[j] = self._predict([chip])[0]
                except Exception as error:
                    if fails_the_task(error):
                        raise
                    reason[row], detail[row] = PREDICT_ERROR, f"{type(error).__name__}: {error}"
        for row in rows[~np.isfinite(out).all(axis=1)]:
            if reason[row] is None:
                reason[row], detail[row] = PREDICT_ERROR, "the model gave non-finite probabilities"
        return out

    def _predict(self, chips: List[np.ndarray]) -> np.ndarray:
        """Probabilities of a batch; a batch of one chip is predicted as two copies.

        A chip's probabilities are bit-identical whatever batch it shares and whatever its
        size, except a batch of one, where Keras' dense head computes a matrix-vector
        product summed in another order (ResNet50 differs in the last bits: 3e-10). With
        that case padded, Spark and the local path, any partitioning and any retry give
        the same numbers for the same chip (docs/decisions.md).
        """
        batch = model_input(chips, self.application, self.input_size)
        if len(batch) == 1:
            return np.asarray(self.model.predict_on_batch(np.repeat(batch, 2, axis=0))[:1], dtype=np.float32)
        return np.asarray(self.model.predict_on_batch(batch), dtype=np.float32)


def _decode_rgb(jpeg: bytes) -> np.ndarray:
    chip = schema.decode_chip(jpeg)
    if chip is None or chip.ndim != 3 or chip.shape[2] != 3 or 0 in chip.shape:
        raise ValueError(f"expected an RGB chip (h, w, 3), got shape {getattr(chip, 'shape', None)}")
    return chip


def load_classifier(model_cfg: Any, weights_file: Optional[Path], k: int) -> ChipClassifier:
    """Build and check the model (see :func:`bigcat_ml.scoring.models.check_model`).

    With ``model.source`` set, ``weights_file`` is the fine-tuned classifier file: its own
    class names label the outputs and its backbone config chooses the preprocessing; ``k``
    is capped at its number of classes.
    """
    if model_cfg.source:
        if weights_file is None:
            raise ValueError(f"model.source {model_cfg.source}: its classifier file was not fetched; pass weights_file")
        return fine_tuned_classifier(weights_file, k)
    if not 1 <= k <= NUM_CLASSES:
        raise ValueError(f"evaluate.top_k must be between 1 and {NUM_CLASSES}; got {k}")
    model = build_model(model_cfg, weights_file)
    check_model(model, model_cfg)
    return ChipClassifier(model, keras_application(model_cfg), model_cfg.input_size, k)


def fine_tuned_classifier(classifier_file: Path, k: Optional[int] = None) -> ChipClassifier:
    """The classifier saved by ``train``: its class names label the outputs, its backbone
    config picks the preprocessing; ``k`` (default: every class) is capped at its classes."""
    model, names, backbone = load_classifier_file(classifier_file)
    check_model(model, backbone, len(names))
    k = len(names) if k is None else min(k, len(names))
    return ChipClassifier(model, keras_application(backbone), backbone.input_size, k, np.array(names, dtype=object))


def shared_classifier(model_cfg: Any, weights_file: Optional[Path], k: int) -> ChipClassifier:
    """:func:`load_classifier`, built once per process and reused while the model config,
    the weights file (path, size, modification time) and ``k`` stay the same.

    Building and checking a model takes seconds (docs/decisions.md);
    ``predict_batch_udf`` would pay it in every Python worker on every ``predict_spark``
    call (its own cache lives for one UDF); Spark reuses its Python workers, so this
    cache carries the model from one call to the next, as it does on the driver. At most
    two models are kept: a sweep alternates between a few.
    """
    stamp = None
    if weights_file is not None:
        info = weights_file.stat()
        stamp = (str(weights_file), info.st_size, info.st_mtime_ns)
    return _classifier_for(dataclasses.astuple(as_model_config(model_cfg)), stamp, k)


@lru_cache(maxsize=2)
def _classifier_for(model_fields: Tuple, weights_stamp: Optional[Tuple[str, int, int]], k: int) -> ChipClassifier:
    weights_file = Path(weights_stamp[0]) if weights_stamp else None
    return load_classifier(ModelConfig(*model_fields), weights_file, k)


def models_built() -> int:
    """How many classifiers :func:`shared_classifier` has built in this process: a Python
    worker that Spark reuses keeps its count from one job to the next."""
    return _classifier_for.cache_info().misses


def forget_models() -> None:
    """Drop the classifiers :func:`shared_classifier` keeps, so the next call builds its model
    again (what a cold call costs: ``benchmarks/bench_inference.py``)."""
    _classifier_for.cache_clear()


def warn_if_random(model_cfg: Any) -> None:
    if weights_source(model_cfg) == RANDOM_INIT:
        log.warning("model %r has random-init weights (model.weights=null): a smoke run, not a measurement", model_cfg.name)

