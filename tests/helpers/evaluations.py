"""A tiny model's weights file, its overrides, and what an evaluate run logged."""
from __future__ import annotations

from pathlib import Path
from typing import Dict, List

import mlflow
import pandas as pd

from helpers.models import calibrated_mobilenet
from helpers.runs import TINY_MODEL

from bigcat_ml.chips import dataset
from bigcat_ml.tracking.names import PREDICTIONS, THROUGHPUT_METRIC
from bigcat_ml.tracking.runs import setup_tracking


def save_tiny_weights(folder: Path) -> Path:
    """A tiny MobileNet's weights file; its predictions depend on the chip (random init's do not)."""
    path = folder / "tiny.weights.h5"
    calibrated_mobilenet().save_weights(str(path))
    return path


def model_overrides(weights: Path) -> List[str]:
    return [*TINY_MODEL, f"model.weights='{weights}'", "evaluate.batch_size=4"]


def predictions(cfg, run_id: str, dst: Path) -> pd.DataFrame:
    """An evaluate run's logged predictions, one row per chip in a fixed order."""
    setup_tracking(cfg.mlflow)
    path = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=PREDICTIONS, dst_path=str(dst))
    frame = pd.read_parquet(path)
    for column in ("top_k_indices", "top_k_labels", "top_k_probs"):
        frame[column] = frame[column].map(tuple)
    return frame.sort_values(list(dataset.CHIP_KEY), ignore_index=True)


def result_metrics(cfg, run_id: str) -> Dict[str, float]:
    """Every metric an evaluate run logged except how long it took."""
    setup_tracking(cfg.mlflow)
    metrics = mlflow.get_run(run_id).data.metrics
    return {k: v for k, v in metrics.items() if k != THROUGHPUT_METRIC and not k.startswith("seconds.")}
