"""The trainable classifier: a ``keras.applications`` backbone and a new softmax head.

The backbone comes from the ``model`` group like the zero-shot classifier's, without its
ImageNet top and with global average pooling: ``imagenet`` weights are Keras' "notop"
download; a weights file holds a whole classifier of the same architecture (as
``evaluate`` uses it), so it is loaded into that classifier and copied layer by layer
(same layer names) into the backbone; ``null`` leaves the backbone at its random
initialisation, seeded by ``train.seed``.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

from bigcat_ml.scoring.models import IMAGENET, build_model, keras_application

if TYPE_CHECKING:
    import keras

log = logging.getLogger(__name__)

HEAD_NAME = "bigcat_head"


def build_backbone(model_cfg: Any, weights_file: Optional[Path]) -> "keras.Model":
    """The configured architecture without its top, pooled to one feature vector per chip."""
    application = keras_application(model_cfg)
    shape = (model_cfg.input_size, model_cfg.input_size, 3)
    weights = IMAGENET if model_cfg.weights == IMAGENET else None
    try:
        backbone = application.constructor(weights=weights, include_top=False, pooling="avg", input_shape=shape)
    except Exception as error:
        raise ValueError(f"cannot build the backbone of model {model_cfg.name!r} (weights {model_cfg.weights}): {error}") from error
    if weights_file is not None:
        full = build_model(model_cfg, weights_file)
        for layer in backbone.layers:
            if layer.weights:
                layer.set_weights(full.get_layer(layer.name).get_weights())
        log.info("backbone %s: weights copied from %s", model_cfg.name, model_cfg.weights)
    return backbone


def build_classifier(
    model_cfg: Any,
    weights_file: Optional[Path],
    n_classes: int,
    freeze_backbone: bool,
    batchnorm_momentum: Optional[float] = None,
) -> "keras.Model":
    """Backbone + ``Dense(n_classes, softmax)``; a frozen backbone runs in inference mode.

    Keras' transfer-learning guide: with the backbone frozen, its BatchNorm layers must
    keep their statistics, hence ``training=False`` on the call. ``batchnorm_momentum``
    (when given) replaces the momentum of every BatchNorm layer of the backbone.
    """
    import keras

    backbone = build_backbone(model_cfg, weights_file)
    backbone.trainable = not freeze_backbone
    if batchnorm_momentum is not None:
        for layer in backbone.layers:
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.momentum = float(batchnorm_momentum)
    inputs = keras.Input((model_cfg.input_size, model_cfg.input_size, 3))
    features = backbone(inputs, training=False) if freeze_backbone else backbone(inputs)
    outputs = keras.layers.Dense(n_classes, activation="softmax", name=HEAD_NAME)(features)
    return keras.Model(inputs, outputs, name=f"{model_cfg.name}_fine_tuned")


def compile_classifier(model: "keras.Model", learning_rate: float) -> None:
    import keras

    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
