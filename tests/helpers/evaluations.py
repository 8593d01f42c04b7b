"""A tiny model's weights file, its overrides, and what an evaluate run logged."""
from __future__ import annotations

from pathlib import Path
from typing import Dict, List

import mlflow
import pandas as pd

from helpers.models import calibrated_mobilenet
from helpers.runs import TINY_MODEL

from bigcat_ml.chips import schema
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
    return frame.sort_values(list(schema.CHIP_KEY), ignore_index=True)


def result_metrics(cfg, run_id: str) -> Dict[str, float]:
    """Every metric an evaluate run logged except how long it took."""
    setup_tracking(cfg.mlflow)
    metrics = mlflow.get_run(run_id).data.metrics
    return {k: v for k, v in metrics.items() if k != THROUGHPUT_METRIC and not k.startswith("seconds.")}


def fake_chip_results(rows) -> pd.DataFrame:
    """Per-chip results as evaluate logs them (``tables/chips.json``) from rows of
    (Subset, true class, predicted class, top-1 confidence); top-5 and family = top-1."""
    frame = pd.DataFrame(rows, columns=["Subset", "LabelText", "predicted_class", "confidence"])
    correct = frame["LabelText"] == frame["predicted_class"]
    return frame.assign(
        ImageID=[f"img{i:03d}" for i in range(len(frame))], XMin=0.1, XMax=0.6, YMin=0.2, YMax=0.7,
        top_k_labels=[[p] for p in frame["predicted_class"]], top_k_probs=[[c] for c in frame["confidence"]],
        top1_correct=correct, top5_correct=correct, family_correct=correct,
    )


def log_fake_evaluation(tags: Dict[str, str], chips: pd.DataFrame, classes: List[str], n_bins: int = 4) -> str:
    """An evaluation run as evaluate logs it, without a model: the per-chip results, the
    headline metrics over all its chips and per Subset, and the tables (over all its chips)."""
    from sklearn.metrics import f1_score

    from bigcat_ml.scoring.metrics import calibration_table, expected_calibration_error
    from bigcat_ml.tracking import names

    def headline(part: pd.DataFrame) -> Dict[str, float]:
        calibration = calibration_table(part["confidence"], part["top1_correct"], n_bins)
        f1 = f1_score(part["LabelText"], part["predicted_class"], labels=classes, average="macro", zero_division=0)
        return {"top1_accuracy": part["top1_correct"].mean(), "top5_accuracy": part["top5_correct"].mean(),
                "family_accuracy": part["family_correct"].mean(), "f1_macro": f1,
                "ece": expected_calibration_error(calibration)}

    with mlflow.start_run(tags=tags) as run:
        mlflow.log_metrics({**headline(chips), THROUGHPUT_METRIC: 42.0,
                            **{names.subset_metric(s, m): v for s, part in chips.groupby("Subset")
                               for m, v in headline(part).items()}})
        f1 = f1_score(chips["LabelText"], chips["predicted_class"], labels=classes, average=None, zero_division=0)
        confusion = pd.crosstab(chips["LabelText"], chips["predicted_class"]).reindex(index=classes, columns=classes, fill_value=0)
        confusion.index.name = "true"
        mlflow.log_text(pd.DataFrame({"class": classes, "f1": f1}).to_csv(index=False), names.PER_CLASS_CSV)
        mlflow.log_text(calibration_table(chips["confidence"], chips["top1_correct"], n_bins).to_csv(index=False),
                        names.CALIBRATION_CSV)
        mlflow.log_text(confusion.to_csv(), names.CONFUSION_CSV)
        mlflow.log_table(chips, names.CHIPS_TABLE)
    return run.info.run_id
