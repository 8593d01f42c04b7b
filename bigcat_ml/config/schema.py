"""Structured configs backing the Hydra groups in ``conf/``: types only.

Every value's default lives in one place, the group's YAML in ``conf/``; these
dataclasses give the types, so a misspelt key or a value of the wrong type still fails at
composition time with Hydra's message naming the key, before any Spark or TensorFlow
start-up cost is paid. A field left ``MISSING`` by every YAML fails when it is read.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, OmegaConf


def absolute_path(path: str) -> str:
    """Resolve a local path against the caller's working directory; leave URIs alone.

    Hydra does not change the working directory here (``hydra.job.chdir=false``), so a
    relative path means what the user typed it relative to.
    """
    if "://" in path:
        return path
    return str(Path(path).expanduser().resolve())


if not OmegaConf.has_resolver("abspath"):
    OmegaConf.register_new_resolver("abspath", absolute_path)


@dataclass
class PathsConfig:
    """Every location the project writes to; nothing else hard-codes a path."""

    output_dir: str = MISSING
    data_dir: str = MISSING
    datasets_dir: str = MISSING
    mlflow_dir: str = MISSING


@dataclass
class SampleConfig:
    """Size and shape of the generated Open Images-format sample (``sample_data``)."""

    seed: int = MISSING
    images_per_subset: Dict[str, int] = MISSING
    min_image_side: int = MISSING
    max_image_side: int = MISSING
    max_boxes_per_image: int = MISSING
    corrupt_images: int = MISSING
    missing_images: int = MISSING
    jpeg_quality: int = MISSING


@dataclass
class DataConfig:
    """Where the Open Images V6 files are and which parts of them to read.

    ``image_labels`` and ``boxes`` are patterns with ``{subset}``; every file may be a
    local path or any URI Spark reads (hdfs://, s3a://).
    """

    name: str = MISSING
    root: str = MISSING
    subsets: List[str] = MISSING
    class_descriptions: str = MISSING
    hierarchy: str = MISSING
    image_labels: str = MISSING
    boxes: str = MISSING
    # "dir": <images_path>/<subset>/<ImageID>.jpg ; "parquet": a Parquet of (ImageID, Data)
    images_format: str = MISSING
    images_path: str = MISSING
    # Only set for generated data: the sample generator's knobs.
    sample: Optional[SampleConfig] = MISSING


@dataclass
class ClassesConfig:
    """Which OID classes to keep: by display name and/or by hierarchy ancestor."""

    name: str = MISSING
    names: List[str] = MISSING
    descendants_of: List[str] = MISSING
    # Ground truth for ImageNet classifiers: OID display name -> ImageNet class index.
    imagenet_map: Dict[str, int] = MISSING
    # ImageNet indices that count as "the right family" (e.g. all big cats).
    family: List[int] = MISSING


@dataclass
class SparkConfig:
    """One SparkSession: master, app name and any ``spark.*`` key passed through."""

    master: str = MISSING
    app_name: str = MISSING
    log_level: str = MISSING
    conf: Dict[str, Any] = MISSING


@dataclass
class ModelConfig:
    """A ``keras.applications`` model chosen by configuration alone.

    ``weights``: ``imagenet`` (Keras download, needs internet), ``null`` (random init,
    offline smoke runs), or a path/URI of a weights file shipped to the executors.
    """

    name: str = MISSING
    keras_class: str = MISSING
    keras_module: str = MISSING
    input_size: int = MISSING
    weights: Optional[str] = MISSING


@dataclass
class MlflowConfig:
    """Tracking server and experiment; the default is a local SQLite store."""

    tracking_uri: str = MISSING
    artifact_location: Optional[str] = MISSING
    experiment_name: str = MISSING
    tags: Dict[str, str] = MISSING


@dataclass
class PreprocessConfig:
    """Image-level filter and chip extraction knobs (fractions are of image size)."""

    min_confidence: float = MISSING
    sources: List[str] = MISSING
    padding: float = MISSING
    min_chip_side: int = MISSING
    jpeg_quality: int = MISSING
    max_image_pixels: int = MISSING
    rows_per_partition: int = MISSING
    output: Optional[str] = MISSING
    overwrite: bool = MISSING
    fault_injection: Dict[str, Any] = MISSING


@dataclass
class EvaluateConfig:
    """Inference and metrics knobs, and the OID -> ImageNet ground-truth map."""

    batch_size: int = MISSING
    # Spark path: chips are spread evenly over the task slots, at most this many per task.
    max_chips_per_task: int = MISSING
    top_k: int = MISSING
    dataset: str = MISSING
    # "spark": predict_batch_udf on the cluster; "local": one process over tf.data.
    path: str = MISSING
    allow_unmapped: bool = MISSING
    calibration_bins: int = MISSING
    size_buckets: List[int] = MISSING
    gallery_size: int = MISSING
    fault_injection: Dict[str, Any] = MISSING


@dataclass
class CompareConfig:
    """Which evaluation runs ``compare`` puts side by side."""

    experiment_name: str = MISSING
    filter_tag: Optional[str] = MISSING
    allow_mixed_datasets: bool = MISSING


class ReuseCheck(enum.Enum):
    """How ``main`` checks a finished step's output before reusing it."""

    manifest = "manifest"  # the files listed in the manifest, with their sizes and times
    full = "full"  # the same, and every file re-hashed


@dataclass
class BigcatConfig:
    """The root: one field per config group plus run-wide switches."""

    paths: PathsConfig = field(default_factory=PathsConfig)
    data: DataConfig = field(default_factory=DataConfig)
    classes: ClassesConfig = field(default_factory=ClassesConfig)
    spark: SparkConfig = field(default_factory=SparkConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    mlflow: MlflowConfig = field(default_factory=MlflowConfig)
    preprocess: PreprocessConfig = field(default_factory=PreprocessConfig)
    evaluate: EvaluateConfig = field(default_factory=EvaluateConfig)
    compare: CompareConfig = field(default_factory=CompareConfig)
    force: bool = MISSING
    reuse_check: ReuseCheck = MISSING


def register_configs() -> None:
    """Register the root schema; ``conf/config.yaml`` lists it first in its defaults."""
    ConfigStore.instance().store(name="bigcat_schema", node=BigcatConfig)


register_configs()


CONF_DIR = Path(__file__).resolve().parents[2] / "conf"


def compose(overrides: Optional[List[str]] = None) -> Any:
    """Compose the project config outside ``@hydra.main`` (tests, notebooks, benchmarks)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return finalize(hydra_compose(config_name="config", overrides=list(overrides or [])))


def finalize(cfg: Any) -> Any:
    """Make every ``paths.*`` absolute, even one overridden with a relative value, and
    put an unset ``preprocess.output`` at its config's own folder (see
    :func:`bigcat_ml.preprocess.default_output`).

    Entry points call this first, so whatever reads a path later (Spark executors, the
    MLflow tracking URI) sees the location the user meant from their working directory.
    """
    for key, value in cfg.paths.items():
        cfg.paths[key] = absolute_path(str(value))
    if "preprocess" in cfg and cfg.preprocess.output is None:
        from bigcat_ml.preprocess import default_output  # the step's record knows its key

        cfg.preprocess.output = default_output(cfg)
    return cfg
