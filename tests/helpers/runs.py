"""Configs of the small generated sample, and the MLflow runs the steps leave."""
from __future__ import annotations

from pathlib import Path

import mlflow
import pandas as pd
from omegaconf import DictConfig

from bigcat_ml.stepkit.step import compose
from bigcat_ml.tracking.names import STEP_TAG
from bigcat_ml.tracking.runs import setup_tracking

# A few images per subset: enough for every class and fault, fast on 2 cores.
TINY_SAMPLE = [
    "data.sample.images_per_subset={train:12,validation:6,test:6}",
    "spark.master='local[2]'",
    "spark.conf.spark.driver.memory=2g",
]
# Ten images, every one with a big cat, and no faults of the generator's own.
SAMPLE = [
    "data.sample.images_per_subset={train:6,validation:2,test:2}",
    "data.sample.corrupt_images=0",
    "data.sample.missing_images=0",
    "spark.master='local[2]'",
    "spark.conf.spark.driver.memory=2g",
]
TINY_MODEL = ["model.name=tiny_mobilenet", "model.input_size=32"]


def cfg_for(out: Path, *overrides: str) -> DictConfig:
    return compose([f"paths.output_dir={out}", *SAMPLE, *overrides])


def runs(cfg, step: str) -> pd.DataFrame:
    return mlflow.search_runs([setup_tracking(cfg.mlflow)], filter_string=f"tags.`{STEP_TAG}` = '{step}'")
