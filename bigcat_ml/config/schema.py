"""Structured configs backing the Hydra groups in ``conf/``: types only.

Every value's default lives in one place, the group's YAML in ``conf/``; these
dataclasses give the types, so a misspelt key or a value of the wrong type still fails at
composition time with Hydra's message naming the key, before any Spark or TensorFlow
start-up cost is paid. A field left ``MISSING`` by every YAML fails when it is read.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING


class ImagesFormat(str, enum.Enum):
    """How the images are stored: files in folders, or a Parquet of (ImageID, Data[, Subset])."""

    dir = "dir"
    parquet = "parquet"


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
    """Where the Open Images files are and which parts of them to read.

    ``class_descriptions`` is a file or a list of candidate files (the first that exists
    is read); ``image_labels`` and ``boxes`` map each subset to the same. Defaults come
    from :mod:`bigcat_ml.oid.files` (V6 and V5 names). Every file may be a local path or
    a URI (see the README for the schemes that are tested).
    """

    name: str = MISSING
    root: str = MISSING
    subsets: List[str] = MISSING
    class_descriptions: Any = MISSING
    hierarchy: str = MISSING
    image_labels: Dict[str, Any] = MISSING
    boxes: Dict[str, Any] = MISSING
    images_format: ImagesFormat = MISSING
    images_path: str = MISSING
    # dir format: folders to look for <ImageID>.jpg in, tried in order; {subset} and
    # {shard} (the ImageID's first character, as in the tar shards train_0..train_f).
    images_dirs: List[str] = MISSING
    # Where OID CSVs are cached as Parquet after their first parse; null: parse every run.
    csv_cache: Optional[str] = MISSING
    # Only set for generated data: the sample generator's knobs.
    sample: Optional[SampleConfig] = MISSING


@dataclass
class FamilyConfig:
    """A class group: the ImageNet classes that count as "the right family" for its classes."""

    classes: List[str] = MISSING
    imagenet: List[int] = MISSING


@dataclass
class ClassesConfig:
    """Which OID classes to keep: by display name and/or by hierarchy ancestor."""

    name: str = MISSING
    names: List[str] = MISSING
    descendants_of: List[str] = MISSING
    # Ground-truth overrides: OID display name -> an ImageNet index or a list of them
    # (every other class: the WordNet-derived table, bigcat_ml/scoring/resources).
    imagenet_map: Dict[str, Any] = MISSING
    # Family accuracy per class group: group name -> its classes and ImageNet indices.
    families: Dict[str, FamilyConfig] = MISSING


@dataclass
class SparkConfig:
    """One SparkSession: master, app name and any ``spark.*`` key passed through."""

    master: str = MISSING
    app_name: str = MISSING
    log_level: str = MISSING
    conf: Dict[str, Any] = MISSING


class Precision(enum.Enum):
    """Number format of a model's computations (``model.precision``)."""

    float32 = "float32"
    # Keras' mixed_bfloat16 policy: bfloat16 compute, float32 variables.
    bfloat16 = "bfloat16"


class InferencePath(enum.Enum):
    """Where ``evaluate`` runs the model (``evaluate.path``)."""

    spark = "spark"
    local = "local"
    # local when Spark runs in local mode and the dataset holds fewer than
    # evaluate.auto_local_max_chips chips, spark otherwise.
    auto = "auto"


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
    precision: Precision = MISSING
    # A fine-tuned classifier logged by ``train`` (``models:/<name>/<version>``, ``runs:/...``):
    # when set, ``evaluate`` scores it instead of the ImageNet classifier built from the fields above.
    source: Optional[str] = MISSING


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
    # Images per cropping task at most; tasks come in whole waves over the cores.
    images_per_task: int = MISSING
    rows_per_partition: int = MISSING
    output: Optional[str] = MISSING
    overwrite: bool = MISSING
    lock_wait_s: int = MISSING


@dataclass
class EvaluateConfig:
    """Inference and metrics knobs, and the OID -> ImageNet ground-truth map."""

    batch_size: int = MISSING
    # Spark path: chips are spread evenly over the task slots, at most this many per task.
    max_chips_per_task: int = MISSING
    top_k: int = MISSING
    dataset: str = MISSING
    path: InferencePath = MISSING
    # evaluate.path=auto: below this many chips (Spark in local mode) one process is faster.
    auto_local_max_chips: int = MISSING
    allow_unmapped: bool = MISSING
    calibration_bins: int = MISSING
    size_buckets: List[int] = MISSING
    gallery_size: int = MISSING
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
    batchnorm_momentum: Optional[float] = MISSING
    shuffle_buffer: int = MISSING
    seed: int = MISSING
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    strategy: TrainStrategy = MISSING
    num_workers: int = MISSING
    registered_model_name: str = MISSING
    registered_model_alias: Optional[str] = MISSING
    in_main: bool = MISSING


@dataclass
class CompareConfig:
    """Which evaluation runs ``compare`` puts side by side."""

    experiment_name: str = MISSING
    filter_tag: Optional[str] = MISSING
    allow_mixed_datasets: bool = MISSING
    subset: Optional[str] = MISSING  # the Subset every run is re-scored on; None: each run's chips


class ReuseCheck(enum.Enum):
    """How ``main`` checks a finished step's output before reusing it."""

    manifest = "manifest"  # the files listed in the manifest, with their sizes and times
    full = "full"  # the same, and every file re-hashed; preprocess also re-reads what it writes


@dataclass
class RedactConfig:
    """Secrets kept out of params, tags, ``config.yaml``, Hydra's saved files and printed lines."""

    # Regexes (or plain words) for more secret key names than bigcat_ml.tracking.redact lists.
    extra_keys: List[str] = MISSING


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
    redact: RedactConfig = field(default_factory=RedactConfig)
    force: bool = MISSING
    verbose: bool = MISSING
    reuse_check: ReuseCheck = MISSING


def register_configs() -> None:
    """Register the root schema; ``conf/config.yaml`` lists it first in its defaults."""
    ConfigStore.instance().store(name="bigcat_schema", node=BigcatConfig)


register_configs()
