"""Small images with known pixels, and the boxes and colour checks that go with them."""
from __future__ import annotations

import io
from typing import Dict, Tuple

import numpy as np
from PIL import Image

RED, GREEN, BLUE, YELLOW = (220, 20, 20), (20, 200, 40), (30, 40, 210), (230, 220, 30)


def blocks_image(width: int = 120, height: int = 80) -> Image.Image:
    """Four solid quadrants: red top-left, green top-right, blue bottom-left, yellow bottom-right."""
    image = Image.new("RGB", (width, height))
    half_w, half_h = width // 2, height // 2
    image.paste(RED, (0, 0, half_w, half_h))
    image.paste(GREEN, (half_w, 0, width, half_h))
    image.paste(BLUE, (0, half_h, half_w, height))
    image.paste(YELLOW, (half_w, half_h, width, height))
    return image


def encode(image: Image.Image, fmt: str = "PNG", **save_args) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **save_args)
    return buffer.getvalue()


def box(xmin: float, xmax: float, ymin: float, ymax: float, label: str = "/m/cat") -> Dict:
    return {"LabelName": label, "XMin": xmin, "XMax": xmax, "YMin": ymin, "YMax": ymax}


def decoded(chip: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(chip)))


def centre(pixels: np.ndarray) -> np.ndarray:
    return pixels[pixels.shape[0] // 2, pixels.shape[1] // 2].astype(int)


def assert_colour(pixel: np.ndarray, colour: Tuple[int, int, int], tolerance: int = 12) -> None:
    assert np.abs(pixel - np.array(colour)).max() <= tolerance, (pixel, colour)
