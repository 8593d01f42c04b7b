"""Tiny Keras models whose outputs depend on their input, for fast inference tests."""
from __future__ import annotations

import keras
import numpy as np

TINY = 32  # pixels: the smallest input MobileNet accepts, keeps every build fast


def probe_batch(n: int = 4) -> np.ndarray:
    return np.random.default_rng(7).uniform(-1, 1, (n, TINY, TINY, 3)).astype(np.float32)



def calibrated_mobilenet(seed: int = 123) -> keras.Model:
    """A tiny MobileNet whose outputs depend on its input, as a trained one's do.

    Random init alone gives every image the same uniform 0.001: with batch-norm
    statistics left at mean 0 / variance 1 the activations vanish layer after layer.
    One training-mode pass with momentum 0 sets the statistics to those of a batch.
    """
    keras.utils.set_random_seed(seed)
    model = keras.applications.MobileNet(weights=None, input_shape=(TINY, TINY, 3))
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = 0.0
    model(np.random.default_rng(seed).uniform(-1, 1, (16, TINY, TINY, 3)).astype(np.float32), training=True)
    return model
