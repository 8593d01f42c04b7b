"""Random changes to a chip before it is resized, so the head sees more than each chip once.

Pure NumPy on a decoded RGB uint8 chip (h, w, 3) with a caller-owned generator: the same
seed gives the same chips, which keeps training deterministic. They run before
:func:`bigcat_ml.scoring.models.model_input`, so an augmented chip is resized and
preprocessed exactly as inference does it.
"""
from __future__ import annotations

import numpy as np

_GREY = np.array([0.299, 0.587, 0.114], np.float32)  # ITU-R 601 luma weights


def augment_chip(chip: np.ndarray, rng: np.random.Generator, flip: bool, crop: float, colour: float) -> np.ndarray:
    """A randomly changed copy of ``chip``.

    ``flip``: mirror left-right with probability 0.5. ``crop``: keep a random window whose
    sides are between ``1 - crop`` and 1 of the chip's (fractions; 0 = off). ``colour``:
    scale brightness, contrast and saturation each by a random factor in
    ``[1 - colour, 1 + colour]`` (0 = off).
    """
    if not 0 <= crop < 1 or colour < 0:
        raise ValueError(f"train.augment.crop must be in [0, 1) and colour >= 0; got crop={crop}, colour={colour}")
    out = chip
    if flip and rng.random() < 0.5:
        out = out[:, ::-1]
    if crop > 0:
        height, width = out.shape[:2]
        keep_h = max(1, int(round(height * rng.uniform(1 - crop, 1))))
        keep_w = max(1, int(round(width * rng.uniform(1 - crop, 1))))
        top = int(rng.integers(0, height - keep_h + 1))
        left = int(rng.integers(0, width - keep_w + 1))
        out = out[top : top + keep_h, left : left + keep_w]
    if colour > 0:
        brightness, contrast, saturation = rng.uniform(1 - colour, 1 + colour, size=3)
        pixels = out.astype(np.float32) * brightness
        pixels = pixels.mean() + (pixels - pixels.mean()) * contrast
        grey = (pixels @ _GREY)[..., None]
        pixels = grey + (pixels - grey) * saturation
        out = np.clip(np.rint(pixels), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(out)
