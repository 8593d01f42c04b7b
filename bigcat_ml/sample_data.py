"""``sample_data``: write the generated Open Images V6-format sample and log its ground truth.

    python -m bigcat_ml.sample_data data.sample.seed=3

Only for the generated data groups (``data=sample``, ``data=sample_parquet``); the real
Open Images files are downloaded, not generated.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Dict, Optional

import mlflow
from omegaconf import DictConfig

from bigcat_ml.oid import files
from bigcat_ml.stepkit.step import Step, hydra_entry_point
from bigcat_ml.synthetic import catalogue, ground_truth, write
from bigcat_ml.tracking import names
from bigcat_ml.tracking.names import metric_name
from bigcat_ml.tracking.redact import redact_text
from bigcat_ml.tracking.runs import step_run

log = logging.getLogger(__name__)


def _check_layout(cfg: DictConfig) -> Optional[Path]:
    """The images folder to write, after checking that the data group's file settings
    name the files the generator writes (else later steps would read other files)."""
    if cfg.data.sample is None:
        raise ValueError(
            f"sample_data only generates the sample data group (data=sample or data=sample_parquet); "
            f"data={cfg.data.name} has no data.sample section. Real Open Images files are downloaded: "
            "point data.root at them and run preprocess."
        )
    root = Path(cfg.data.root)
    if "://" in cfg.data.root:
        raise ValueError(f"data.root={cfg.data.root}: sample_data writes to a local folder, not a URI")
    expected = {
        "data.class_descriptions": (cfg.data.class_descriptions, root / catalogue.CLASS_DESCRIPTIONS_FILE),
        "data.hierarchy": (cfg.data.hierarchy, root / catalogue.HIERARCHY_FILE),
        **{
            f"data.{key}.{subset}": (getattr(cfg.data, key)[subset], root / name.format(subset=subset))
            for key, name in (("boxes", write.BOXES_FILE), ("image_labels", write.IMAGE_LABELS_FILE))
            for subset in cfg.data.subsets
        },
    }
    if cfg.data.images_format == "parquet":
        expected["data.images_path"] = (cfg.data.images_path, root / write.IMAGES_PARQUET)
    for key, (configured, written) in expected.items():
        if written not in [Path(c) for c in files.as_candidates(configured)]:
            raise ValueError(f"{key}={configured}, but sample_data writes {written}; leave it at its default")
    return Path(cfg.data.images_path) if cfg.data.images_format == "dir" else None


def _metrics(summary: Dict[str, Any]) -> Dict[str, float]:
    """Counts worth charting: images, boxes and labels per subset, faults, boxes per class."""
    metrics: Dict[str, float] = {
        "corrupt_images": len(summary["corrupt_images"]),
        "missing_images": len(summary["missing_images"]),
    }
    for subset, n in summary["images"].items():
        metrics[f"images.{subset}"] = n
        metrics[f"boxes.{subset}"] = sum(summary["boxes"][subset].values())
        for kind, counts in summary["image_labels"][subset].items():
            metrics[f"image_labels.{kind}.{subset}"] = sum(counts.values())
    for mid, name in summary["class_names"].items():
        metrics[f"boxes_by_class.{metric_name(name)}"] = sum(c.get(mid, 0) for c in summary["boxes"].values())
    return metrics


def run(cfg: DictConfig, key: Optional[str] = None) -> Dict[str, Any]:
    """Generate (or keep, when up to date) the sample in ``data.root``; one MLflow run
    (``key``: its reuse key, if computed already).

    Returns ``{"run_id": ..., "summary": <ground truth>}``.
    """
    images_path = _check_layout(cfg)
    with step_run(cfg, STEP.name, key=key or STEP.key(cfg)) as active:
        summary = write.generate_sample(Path(cfg.data.root), cfg.data.sample, images_path, force=cfg.force)
        mlflow.set_tag(names.SAMPLE_FINGERPRINT_TAG, summary["fingerprint"])
        mlflow.log_dict(summary, names.GROUND_TRUTH)
        mlflow.log_metrics(_metrics(summary))
    print(f"sample_data: {summary['images']} images in {redact_text(cfg.data.root)} (run {active.info.run_id})")
    return {"run_id": active.info.run_id, "summary": summary}


def _output_exists(cfg: DictConfig, run_id: str) -> bool:
    """A finished run is reused only while ``data.root`` holds the sample it wrote: a
    complete sample whose fingerprint is the one the run logged and this config's. Another
    seed's sample written there since means regenerate (the generator's own files,
    remade from their config), not a run whose record contradicts the files."""
    logged = mlflow.MlflowClient().get_run(run_id).data.tags.get(names.SAMPLE_FINGERPRINT_TAG)
    present = write.sample_in_place(Path(cfg.data.root), _check_layout(cfg))
    on_disk = present.get("fingerprint") if present else None
    if logged == on_disk == write.config_fingerprint(cfg.data.sample):
        return True
    seed = present["config"].get("seed") if present else None
    log.info(
        "sample_data: not reusing run %s: %s holds %s", run_id, redact_text(cfg.data.root),
        f"the sample of seed {seed} ({str(on_disk)[:12]})" if present else "no complete sample",
    )
    return False


STEP = Step(
    name=names.SAMPLE_DATA_STEP,
    run=run,
    sections=("data",),
    in_chain=lambda cfg: cfg.data.sample is not None,
    output_exists=_output_exists,
)
main = hydra_entry_point(STEP)

if __name__ == "__main__":
    main()
