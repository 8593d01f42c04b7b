"""Structured configs backing the Hydra groups in ``conf/``.

Every group YAML is merged onto these dataclasses, so a misspelt key or a value of the
wrong type fails at composition time with Hydra's message naming the key, before any
Spark or TensorFlow start-up cost is paid.
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

    seed: int = 0
    images_per_subset: Dict[str, int] = field(
        default_factory=lambda: {"train": 60, "validation": 20, "test": 20}
    )
    min_image_side: int = 160
    max_image_side: int = 480
    max_boxes_per_image: int = 4
    corrupt_images: int = 1
    missing_images: int = 1
    jpeg_quality: int = 90


@dataclass
class DataConfig:
    """Where the Open Images V6 files are and which parts of them to read.

    ``image_labels`` and ``boxes`` are patterns with ``{subset}``; every file may be a
    local path or any URI Spark reads (hdfs://, s3a://).
    """

    name: str = MISSING
    root: str = MISSING
    subsets: List[str] = field(default_factory=lambda: ["train", "validation", "test"])
    class_descriptions: str = "${data.root}/class-descriptions-boxable.csv"
    hierarchy: str = "${data.root}/bbox_labels_600_hierarchy.json"
    image_labels: str = "${data.root}/{subset}-annotations-human-imagelabels-boxable.csv"
    boxes: str = "${data.root}/{subset}-annotations-bbox.csv"
    # "dir": <images_path>/<subset>/<ImageID>.jpg ; "parquet": a Parquet of (ImageID, Data)
    images_format: str = "dir"
    images_path: str = "${data.root}/images"
    # Only set for generated data: the sample generator's knobs.
    sample: Optional[SampleConfig] = None


@dataclass
class ClassesConfig:
    """Which OID classes to keep: by display name and/or by hierarchy ancestor."""

    name: str = MISSING
    names: List[str] = field(default_factory=list)
    descendants_of: List[str] = field(default_factory=list)
    # Ground truth for ImageNet classifiers: OID display name -> ImageNet class index.
    imagenet_map: Dict[str, int] = field(default_factory=dict)
    # ImageNet indices that count as "the right family" (e.g. all big cats).
    family: List[int] = field(default_factory=list)


@dataclass
class SparkConfig:
    """One SparkSession: master, app name and any ``spark.*`` key passed through."""

    master: str = "local[*]"
    app_name: str = "bigcat_ml"
    log_level: str = "WARN"
    conf: Dict[str, Any] = field(default_factory=dict)


@dataclass
class ModelConfig:
    """A ``keras.applications`` model chosen by configuration alone.

    ``weights``: ``imagenet`` (Keras download, needs internet), ``null`` (random init,
    offline smoke runs), or a path/URI of a weights file shipped to the executors.
    """

    name: str = MISSING
    keras_class: str = MISSING
    keras_module: str = MISSING
    input_size: int = 224
    weights: Optional[str] = None
    # A fine-tuned classifier logged by ``train`` (``models:/<name>/<version>``, ``runs:/...``):
    # when set, ``evaluate`` scores it instead of the ImageNet classifier built from the fields above.
    source: Optional[str] = MISSING


@dataclass
class MlflowConfig:
    """Tracking server and experiment; the default is a local SQLite store."""

    tracking_uri: str = MISSING
    artifact_location: Optional[str] = None
    experiment_name: str = "bigcat_ml"
    tags: Dict[str, str] = field(default_factory=dict)


@dataclass
class PreprocessConfig:
    """Image-level filter and chip extraction knobs (fractions are of image size)."""

    min_confidence: float = 1.0
    sources: List[str] = field(default_factory=list)
    padding: float = 0.0
    min_chip_side: int = 16
    jpeg_quality: int = 90
    max_image_pixels: int = 89_478_485
    rows_per_partition: int = 2000
    output: str = "${paths.datasets_dir}/${data.name}_${classes.name}"
    overwrite: bool = False
    fault_injection: Dict[str, Any] = field(default_factory=dict)


@dataclass
class EvaluateConfig:
    """Inference and metrics knobs, and the OID -> ImageNet ground-truth map."""

    batch_size: int = 32
    # Spark path: chips are spread evenly over the task slots, at most this many per task.
    max_chips_per_task: int = 2000
    top_k: int = 5
    dataset: str = "${preprocess.output}"
    # "spark": predict_batch_udf on the cluster; "local": one process over tf.data.
    path: str = "spark"
    allow_unmapped: bool = False
    calibration_bins: int = 10
    size_buckets: List[int] = field(default_factory=lambda: [32, 64, 128, 256])
    gallery_size: int = 16
    fault_injection: Dict[str, Any] = field(default_factory=dict)
    # Only the chips of this Subset (null: every chip for ImageNet models, test for fine-tuned ones).
    subset: Optional[str] = MISSING


class TrainStrategy(enum.Enum):
    """Where ``train`` runs: this process, or data-parallel over Spark executors."""

    single = "single"
    # tf.distribute.MultiWorkerMirroredStrategy, one worker per Spark barrier task.
    spark_barrier = "spark_barrier"


@dataclass
class AugmentConfig:
    """Random chip changes while training (see ``bigcat_ml.training.augment``)."""

    flip: bool = MISSING
    crop: float = MISSING
    colour: float = MISSING


@dataclass
class TrainConfig:
    """Fine-tuning a ``model`` backbone with a new softmax head over the selected classes."""

    dataset: str = MISSING
    train_subset: str = MISSING
    validation_subset: str = MISSING
    freeze_backbone: bool = MISSING
    epochs: int = MISSING
    batch_size: int = MISSING
    learning_rate: float = MISSING
    early_stopping_patience: int = MISSING
    shuffle_buffer: int = MISSING
    seed: int = MISSING
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    strategy: TrainStrategy = MISSING
    num_workers: int = MISSING
    registered_model_name: str = MISSING


@dataclass
class CompareConfig:
    """Which evaluation runs ``compare`` puts side by side."""

    experiment_name: str = "${mlflow.experiment_name}"
    filter_tag: Optional[str] = None
    allow_mixed_datasets: bool = False


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
    train: TrainConfig = field(default_factory=TrainConfig)
    force: bool = False


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
    """Make every ``paths.*`` absolute, even one overridden with a relative value.

    Entry points call this first, so whatever reads a path later (Spark executors, the
    MLflow tracking URI) sees the location the user meant from their working directory.
    """
    for key, value in cfg.paths.items():
        cfg.paths[key] = absolute_path(str(value))
    return cfg
