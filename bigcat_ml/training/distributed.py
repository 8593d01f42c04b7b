"""Data-parallel training over Spark executors: ``MultiWorkerMirroredStrategy`` in barrier mode.

Spark's barrier execution mode gang-schedules ``train.num_workers`` tasks (all start
together or none does, and a failed task restarts the whole stage), which is what a
synchronous all-reduce needs. Each task learns its peers through
``BarrierTaskContext.allGather`` (host and a free port of each task), writes them to
``TF_CONFIG``, and runs the very :func:`bigcat_ml.training.fit.fit_classifier` of the
single-process path under the strategy; every worker reads all chips of a Subset and
keeps its share (tf.data's DATA auto-sharding). Worker 0 (the chief) saves the classifier
and sends the file's bytes and the per-epoch history back through ``collect``, so no
shared file system is needed; the driver logs them to MLflow.
"""
from __future__ import annotations

import json
import logging
import os
import socket
import tempfile
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Dict, Iterator, List, Sequence

from omegaconf import OmegaConf
from pyspark.sql import SparkSession

from bigcat_ml.config.schema import ModelConfig
from bigcat_ml.runtime.spark import task_slots
from bigcat_ml.training.data import SubsetStats

log = logging.getLogger(__name__)


@dataclass
class DistributedResult:
    """What the chief sent back; the classifier file is written on the driver."""

    history: Dict[str, List[float]]
    best_epoch: int
    stats: Dict[str, SubsetStats]


def train_on_spark_barrier(
    spark: SparkSession, train_cfg: Any, model_cfg: Any, class_names: Sequence[str], classifier_file: Path
) -> DistributedResult:
    """Train with ``train_cfg.num_workers`` barrier tasks; write the classifier to ``classifier_file``."""
    workers = int(train_cfg.num_workers)
    slots = task_slots(spark)
    if workers < 1 or workers > slots:
        raise ValueError(
            f"train.num_workers={workers} barrier tasks must all run at once, but the cluster has {slots} task slots; "
            "lower train.num_workers or add executors"
        )
    # The workers get plain dicts (picklable), resolved here where the sections' interpolations resolve.
    plain_train, plain_model = (OmegaConf.to_container(section, resolve=True) for section in (train_cfg, model_cfg))
    task = partial(_train_worker, plain_train, plain_model, list(class_names))
    results = spark.sparkContext.parallelize(range(workers), workers).barrier().mapPartitions(task).collect()
    if len(results) != 1:
        raise RuntimeError(f"expected the chief's result only, got {len(results)} results from {workers} workers")
    classifier_bytes, history, best_epoch, stats = results[0]
    classifier_file.write_bytes(classifier_bytes)
    return DistributedResult(history, best_epoch, {name: SubsetStats(**value) for name, value in stats.items()})


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("", 0))
        return sock.getsockname()[1]


def _train_worker(plain_train: Dict[str, Any], plain_model: Dict[str, Any], class_names: List[str], _: Iterator[int]) -> Iterator[tuple]:
    """One barrier task: join the TensorFlow cluster, fit, and (chief only) return the model."""
    from dataclasses import asdict

    from pyspark import BarrierTaskContext

    context = BarrierTaskContext.get()
    rank = context.partitionId()
    host = context.getTaskInfos()[rank].address.split(":")[0]
    peers = context.allGather(f"{host}:{_free_port()}")
    os.environ["TF_CONFIG"] = json.dumps({"cluster": {"worker": peers}, "task": {"type": "worker", "index": rank}})

    import tensorflow as tf

    try:  # the task's cores; impossible once TensorFlow has started in this (reused) worker
        tf.config.threading.set_intra_op_parallelism_threads(context.cpus())
        tf.config.threading.set_inter_op_parallelism_threads(context.cpus())
    except RuntimeError:
        log.debug("TensorFlow already initialised in this worker; thread settings unchanged")
    strategy = tf.distribute.MultiWorkerMirroredStrategy()

    from bigcat_ml.scoring.fine_tuned import CLASSIFIER_FILE, save_classifier
    from bigcat_ml.training.fit import fit_classifier

    train_cfg = OmegaConf.create(plain_train)
    result = fit_classifier(train_cfg, OmegaConf.create(plain_model), class_names, strategy=strategy, verbose=0)
    with tempfile.TemporaryDirectory(prefix=f"bigcat_ml-worker{rank}-") as folder:
        # Every worker saves (the strategy's variables are read collectively); the chief's copy is kept.
        path = save_classifier(result.model, Path(folder) / CLASSIFIER_FILE, class_names, ModelConfig(**plain_model))
        payload = path.read_bytes()
    context.barrier()
    if rank == 0:
        stats = {train_cfg.train_subset: asdict(result.train_stats), train_cfg.validation_subset: asdict(result.validation_stats)}
        yield payload, result.history, result.best_epoch, stats
