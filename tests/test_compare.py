"""compare: the table and figures of finished evaluation runs, and the dataset guard."""
from __future__ import annotations

from typing import Dict, Optional

import mlflow
import pandas as pd
import pytest

from bigcat_ml import compare

from bigcat_ml.tracking import names
from bigcat_ml.tracking.comparison import MixedDatasetsError
from bigcat_ml.tracking.names import STEP_TAG
from bigcat_ml.tracking.runs import setup_tracking

CLASSES = ["Tiger", "Lion"]


def _fake_evaluation(model: str, digest: str, top1: float, f1_tiger: float, status: str = "FINISHED",
                     kind_tags: Optional[Dict[str, str]] = None, test_top1: Optional[float] = None) -> str:
    """An evaluation run as evaluate logs it: tags, headline metrics (over its chips and on the
    test Subset) and the three tables. ``kind_tags`` makes it a fine-tuned model's."""
    tags = {STEP_TAG: "evaluate", names.MODEL_TAG: model, names.WEIGHTS_TAG: "random-init",
            names.DATASET_DIGEST_TAG: digest, **(kind_tags or {})}
    with mlflow.start_run(tags=tags) as run:
        headline = {"top1_accuracy": top1, "top5_accuracy": 0.9, "family_accuracy": 0.8, "f1_macro": 0.5, "ece": 0.1}
        on_test = {**headline, "top1_accuracy": top1 if test_top1 is None else test_top1}
        mlflow.log_metrics({**headline, "chips_per_second": 42.0,
                            **{names.subset_metric("test", m): v for m, v in on_test.items()}})
        per_class = pd.DataFrame({"class": CLASSES, "f1": [f1_tiger, 0.25], "support": [3, 1]})
        calibration = pd.DataFrame({"bin": [0, 1], "lower": [0, 0.5], "upper": [0.5, 1.0], "count": [2, 2],
                                    "confidence": [0.3, 0.8], "accuracy": [0.5, top1]})
        confusion = pd.DataFrame([[2, 0, 1], [0, 1, 0]], index=pd.Index(CLASSES, name="true"),
                                 columns=[*CLASSES, "other"])
        mlflow.log_text(per_class.to_csv(index=False), names.PER_CLASS_CSV)
        mlflow.log_text(calibration.to_csv(index=False), names.CALIBRATION_CSV)
        mlflow.log_text(confusion.to_csv(), names.CONFUSION_CSV)
    if status != "FINISHED":
        mlflow.MlflowClient().set_terminated(run.info.run_id, status)
    return run.info.run_id


def test_compare_tables_the_finished_runs_with_their_values_and_logs_figures(make_cfg, capsys):
    cfg = make_cfg()
    setup_tracking(cfg.mlflow)
    mobilenet = _fake_evaluation("mobilenet", "d" * 64, top1=0.75, f1_tiger=0.6)
    resnet = _fake_evaluation("resnet50", "d" * 64, top1=0.5, f1_tiger=0.4)
    _fake_evaluation("mobilenet_v2", "d" * 64, top1=0.99, f1_tiger=0.9, status="FAILED")

    result = compare.run(cfg)

    table = result["table"].set_index("model")
    assert sorted(table.index) == ["mobilenet", "resnet50"]  # the failed run is left out
    assert table.loc["mobilenet", "top1_accuracy"] == 0.75
    assert table.loc["resnet50", "top1_accuracy"] == 0.5
    assert table.loc["mobilenet", "f1.Tiger"] == 0.6 and table.loc["resnet50", "f1.Lion"] == 0.25
    assert set(table["run_id"]) == {mobilenet, resnet}
    logged = {f.path for f in mlflow.MlflowClient().list_artifacts(result["run_id"], "comparison")}
    assert {
        "comparison/comparison.md", "comparison/comparison.csv", "comparison/comparison.html",
        "comparison/headline_metrics.png", "comparison/reliability_overlay.png",
        "comparison/per_class_f1.png", "comparison/confusions.png",
    } <= logged
    csv = pd.read_csv(mlflow.artifacts.download_artifacts(run_id=result["run_id"], artifact_path="comparison/comparison.csv"))
    assert csv.set_index("model").loc["resnet50", "f1.Tiger"] == 0.4
    printed = capsys.readouterr().out
    assert "mobilenet [random-init]" in printed and "0.75" in printed


def test_runs_on_different_chip_datasets_are_refused_unless_allowed(make_cfg):
    cfg = make_cfg()
    setup_tracking(cfg.mlflow)
    _fake_evaluation("mobilenet", "a" * 64, top1=0.75, f1_tiger=0.6)
    _fake_evaluation("resnet50", "b" * 64, top1=0.5, f1_tiger=0.4)
    with pytest.raises(MixedDatasetsError, match="allow_mixed_datasets"):
        compare.run(cfg)
    result = compare.run(make_cfg(["compare.allow_mixed_datasets=true"]))
    assert len(result["table"]) == 2


def test_filter_tag_selects_runs_and_nothing_found_is_a_clear_error(make_cfg):
    cfg = make_cfg(["compare.filter_tag='bigcat.model=resnet50'"])
    setup_tracking(cfg.mlflow)
    _fake_evaluation("mobilenet", "a" * 64, top1=0.75, f1_tiger=0.6)
    _fake_evaluation("resnet50", "b" * 64, top1=0.5, f1_tiger=0.4)
    assert list(compare.run(cfg)["table"]["model"]) == ["resnet50"]
    with pytest.raises(LookupError, match="no finished evaluation runs"):
        compare.run(make_cfg(["compare.filter_tag='bigcat.model=vgg16'"]))


def test_compare_shows_zero_shot_and_fine_tuned_runs_with_kind_training_and_test_metrics(make_cfg, capsys):
    cfg = make_cfg()
    setup_tracking(cfg.mlflow)
    _fake_evaluation("mobilenet", "d" * 64, top1=0.1, f1_tiger=0.1, test_top1=0.05)
    fine_tuned = {names.KIND_TAG: names.FINE_TUNED, names.TRAINING_TAG: "unfrozen backbone, <= 8 epochs",
                  names.SUBSET_TAG: "test", names.WEIGHTS_TAG: "fine-tuned:models:/bigcat_bigcats_mobilenet/1"}
    _fake_evaluation("mobilenet", "d" * 64, top1=0.9, f1_tiger=0.9, kind_tags=fine_tuned)

    table = compare.run(cfg)["table"].set_index("kind")

    assert table.loc[names.ZERO_SHOT, "test/top1_accuracy"] == 0.05 and table.loc[names.ZERO_SHOT, "top1_accuracy"] == 0.1
    assert table.loc[names.FINE_TUNED, "test/top1_accuracy"] == 0.9
    assert table.loc[names.FINE_TUNED, "training"] == "unfrozen backbone, <= 8 epochs"
    assert table.loc[names.FINE_TUNED, "evaluated"] == "test" and table.loc[names.ZERO_SHOT, "evaluated"] == "all"
    printed = capsys.readouterr().out
    assert "mobilenet [fine-tuned:models:/bigcat_bigcats_mobilenet/1]" in printed and "0.05" in printed


def test_the_printed_table_fits_120_columns_and_the_artifacts_keep_every_column(make_cfg, capsys):
    """The demo's fine-tuned run, whose training description alone is 100 characters."""
    cfg = make_cfg()
    setup_tracking(cfg.mlflow)
    training = "unfrozen backbone, <= 10 epochs, batch 16, lr 0.001, augment flip+crop 0.1+colour 0.1, seed 0, single"
    long_weights = "fine-tuned:models:/bigcat_carnivores_and_other_animals_mobilenet_v2/12"
    _fake_evaluation("mobilenet", "d" * 64, top1=0.9, f1_tiger=0.9, kind_tags={
        names.KIND_TAG: names.FINE_TUNED, names.TRAINING_TAG: training, names.SUBSET_TAG: "test",
        names.WEIGHTS_TAG: "fine-tuned:models:/bigcat_bigcats_mobilenet/1"})
    _fake_evaluation("mobilenet_v2", "d" * 64, top1=0.8, f1_tiger=0.8, kind_tags={
        names.KIND_TAG: names.FINE_TUNED, names.TRAINING_TAG: training, names.SUBSET_TAG: "test",
        names.WEIGHTS_TAG: long_weights})
    _fake_evaluation("resnet50", "d" * 64, top1=0.5, f1_tiger=0.4)

    result = compare.run(cfg)

    table = [line for line in capsys.readouterr().out.splitlines() if line.startswith("|")]
    assert len(table) == 2 + 3 and max(len(line) for line in table) <= 120
    assert any(line.startswith("| mobilenet [fine-tuned:models:/bigcat_bigcats_mobilenet/1] ") for line in table)
    # a label too long to fit keeps its start and its end
    assert any(line.startswith("| mobilenet_v2 [fine-tuned:") and "…" in line and "_v2/12] " in line for line in table)
    csv = pd.read_csv(mlflow.artifacts.download_artifacts(run_id=result["run_id"], artifact_path="comparison/comparison.csv"))
    assert list(csv.set_index("model").loc[["mobilenet", "mobilenet_v2"], "training"]) == [training, training]
    assert {"kind", "precision", "run_id", "f1.Tiger"} <= set(csv.columns)
