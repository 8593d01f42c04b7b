"""What the schema's types cannot say, checked in one pass right after composition.

:mod:`bigcat_ml.config.schema` types every key, but a type lets ``evaluate.batch_size=0``
through (it then fails deep in Arrow or ``range()``), and Hydra's ``+key=value`` adds a
key even to a typed section (Hydra force-adds it: ``+model.wieghts=null`` composes and is
never read). So, before anything starts, :func:`check_config` refuses

* a number outside its declared range (:data:`RANGES`, one entry per numeric key),
* a key the schema does not declare, outside the genuinely open maps (``Dict`` fields
  such as ``spark.conf``, ``mlflow.tags``, ``data.boxes``), with the closest declared key,
* a ``*.name`` that becomes a folder but is not a plain folder name,

listing every problem at once, each with its key, its value and what is allowed.
"""
from __future__ import annotations

import dataclasses
import difflib
import math
import typing
from dataclasses import dataclass
from typing import Any, Dict, Iterator, List, Optional, Tuple

from omegaconf import DictConfig, ListConfig, OmegaConf

from bigcat_ml.config.schema import BigcatConfig


class ConfigError(ValueError):
    """One or more config values that cannot work; the message lists each key."""


@dataclass(frozen=True)
class Range:
    """The numbers a setting allows, between ``low`` and ``high`` (each included unless open)."""

    low: Optional[float] = None
    high: Optional[float] = None
    low_open: bool = False
    high_open: bool = False

    def allows(self, value: float) -> bool:
        if isinstance(value, float) and math.isnan(value):
            return False
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        return self.high is None or (value < self.high if self.high_open else value <= self.high)

    def __str__(self) -> str:
        if self.low is not None and self.high is not None:
            return f"in {'(' if self.low_open else '['}{self.low:g}, {self.high:g}{')' if self.high_open else ']'}"
        if self.low is not None:
            return f"{'>' if self.low_open else '>='} {self.low:g}"
        return f"{'<' if self.high_open else '<='} {self.high:g}"


POSITIVE = Range(low=1)  # a count or size that must be at least one
COUNT = Range(low=0)  # a count that may be zero
FRACTION = Range(low=0, high=1)
JPEG_QUALITY = Range(low=1, high=100)  # Pillow's quality scale
# keras.applications' smallest input side (MobileNet, ResNet50, ...), in pixels.
SMALLEST_INPUT = Range(low=32)

# Every numeric key of the schema and the values it allows; a list or map value is checked
# element by element. tests/test_config.py checks that no numeric field is missing here.
RANGES: Dict[str, Range] = {
    "data.sample.seed": COUNT,
    "data.sample.images_per_subset": COUNT,
    "data.sample.min_image_side": POSITIVE,
    "data.sample.max_image_side": POSITIVE,
    "data.sample.max_boxes_per_image": POSITIVE,
    "data.sample.corrupt_images": COUNT,
    "data.sample.missing_images": COUNT,
    "data.sample.jpeg_quality": JPEG_QUALITY,
    "model.input_size": SMALLEST_INPUT,
    "preprocess.min_confidence": FRACTION,
    "preprocess.padding": COUNT,
    "preprocess.min_chip_side": POSITIVE,
    "preprocess.jpeg_quality": JPEG_QUALITY,
    "preprocess.max_image_pixels": POSITIVE,
    "preprocess.images_per_task": POSITIVE,
    "preprocess.rows_per_partition": POSITIVE,
    "preprocess.lock_wait_s": COUNT,
    "evaluate.batch_size": POSITIVE,
    "evaluate.max_chips_per_task": POSITIVE,
    "evaluate.top_k": POSITIVE,
    "evaluate.auto_local_max_chips": COUNT,
    "evaluate.calibration_bins": POSITIVE,
    "evaluate.size_buckets": POSITIVE,
    "evaluate.gallery_size": COUNT,
    "train.epochs": POSITIVE,
    "train.batch_size": POSITIVE,
    "train.learning_rate": Range(low=0, low_open=True),
    "train.early_stopping_patience": COUNT,
    "train.batchnorm_momentum": FRACTION,
    "train.shuffle_buffer": POSITIVE,
    "train.seed": COUNT,
    "train.augment.crop": Range(low=0, high=1, high_open=True),  # 1 would keep nothing
    "train.augment.colour": FRACTION,
    "train.num_workers": POSITIVE,
}
# Names that become one folder of a path (``<datasets_dir>/<data.name>_<classes.name>``).
FOLDER_NAMES = ("data.name", "classes.name")
_PATH_CHARACTERS = ("/", "\\", "\0")


def check_config(cfg: DictConfig) -> None:
    """Raise :class:`ConfigError` listing every unknown key, out-of-range number and bad
    folder name in ``cfg`` (a composed :class:`BigcatConfig`); return quietly otherwise."""
    problems = [*unknown_keys(cfg), *out_of_range(cfg), *bad_folder_names(cfg)]
    if problems:
        listed = "\n  ".join(problems)
        raise ConfigError(f"{len(problems)} bad config value(s), fix them on the command line or in conf/:\n  {listed}")


# ------------------------------------------------------------------------ unknown keys


def _unwrap_optional(kind: Any) -> Any:
    args = [a for a in typing.get_args(kind) if a is not type(None)]
    return args[0] if typing.get_origin(kind) is typing.Union and len(args) == 1 else kind


def _map_values(kind: Any) -> Optional[Any]:
    """The value type of a ``Dict[str, V]`` field, else None."""
    return typing.get_args(kind)[1] if typing.get_origin(kind) in (dict, Dict) else None


def unknown_keys(cfg: Any, schema: type = BigcatConfig, prefix: str = "") -> Iterator[str]:
    """A line per key of ``cfg`` that the dataclass ``schema`` does not declare, with the
    closest declared key. The values of ``Dict`` fields are open (their keys are data,
    e.g. Spark's settings), unless the values are themselves dataclasses."""
    if not isinstance(cfg, DictConfig):
        return
    declared = typing.get_type_hints(schema)
    for key in cfg.keys():
        name = f"{prefix}{key}"
        if key not in declared:
            close = difflib.get_close_matches(str(key), list(declared), n=1)
            hint = f"did you mean {prefix}{close[0]}?" if close else f"{prefix.rstrip('.') or 'the root'} has {sorted(declared)}"
            yield f"{name}: not a setting of this project; {hint}"
            continue
        if OmegaConf.is_missing(cfg, key):
            continue
        kind = _unwrap_optional(declared[key])
        if dataclasses.is_dataclass(kind):
            yield from unknown_keys(cfg[key], kind, f"{name}.")
        elif dataclasses.is_dataclass(_map_values(kind)) and isinstance(cfg[key], DictConfig):
            for entry, value in cfg[key].items():
                yield from unknown_keys(value, _map_values(kind), f"{name}.{entry}.")


# ------------------------------------------------------------------------- numbers


def _elements(key: str, value: Any) -> Iterator[Tuple[str, Any]]:
    if isinstance(value, ListConfig):
        for i, element in enumerate(value):
            yield f"{key}[{i}]", element
    elif isinstance(value, DictConfig):
        for name, element in value.items():
            yield f"{key}.{name}", element
    else:
        yield key, value


def out_of_range(cfg: DictConfig) -> Iterator[str]:
    """A line per numeric value of :data:`RANGES` that ``cfg`` sets outside its range (null
    is left to the schema: only Optional fields accept it)."""
    for key, allowed in RANGES.items():
        value = OmegaConf.select(cfg, key, default=None)
        for name, number in _elements(key, value):
            if number is not None and not allowed.allows(number):
                yield f"{name}={number}: must be {allowed}"


# ------------------------------------------------------------------------- folders


def bad_folder_names(cfg: DictConfig) -> Iterator[str]:
    """A line per :data:`FOLDER_NAMES` value that would leave its parent folder or nest."""
    for key in FOLDER_NAMES:
        value = OmegaConf.select(cfg, key, default=None)
        if value is None:
            continue
        if value in ("", ".", "..") or any(c in value for c in _PATH_CHARACTERS):
            yield (
                f"{key}={value!r}: must be a plain folder name (no '/', not '.' or '..'): it names the "
                "folder of the chip datasets under paths.datasets_dir"
            )


def numeric_keys(schema: type = BigcatConfig, prefix: str = "") -> List[str]:
    """Every key of ``schema`` whose values are numbers (int/float, or lists/maps of them)."""
    keys: List[str] = []
    for name, kind in typing.get_type_hints(schema).items():
        kind = _unwrap_optional(kind)
        element = _map_values(kind) or (typing.get_args(kind)[0] if typing.get_origin(kind) in (list, List) else kind)
        if dataclasses.is_dataclass(kind):
            keys += numeric_keys(kind, f"{prefix}{name}.")
        elif element in (int, float):
            keys.append(f"{prefix}{name}")
    return keys
