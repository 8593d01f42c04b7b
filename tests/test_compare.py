"""compare: the table and figures of finished evaluation runs, and the dataset guard."""
from __future__ import annotations

from typing import Dict, Optional

import mlflow
import pandas as pd
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg

from bigcat_ml import compare

from bigcat_ml.reporting import comparison
from bigcat_ml.tracking import names
from bigcat_ml.reporting.comparison import MixedDatasetsError
from bigcat_ml.tracking.names import STEP_TAG
from bigcat_ml.tracking.runs import setup_tracking
from helpers.evaluations import fake_chip_results, log_fake_evaluation

CLASSES = ["Tiger", "Lion"]


# Chips of the test Subset: mobilenet gets 3 of 4 right, resnet50 2 of 4.
MOBILENET = [("test", "Tiger", "Tiger", 0.9), ("test", "Tiger", "Tiger", 0.8), ("test", "Tiger", "Lion", 0.6),
             ("test", "Lion", "Lion", 0.7)]
RESNET = [("test", "Tiger", "Tiger", 0.9), ("test", "Tiger", "Lion", 0.8), ("test", "Lion", "Lion", 0.7),
          ("test", "Lion", "Tiger", 0.6)]
# A zero-shot run over every chip (right on the train chips, half right on the test chips)
# and a fine-tuned run on the test chips only, as evaluate's defaults have it.
ZERO_SHOT = [("train", "Tiger", "Tiger", 0.9), ("train", "Tiger", "Tiger", 0.9), ("train", "Lion", "Lion", 0.9),
             ("test", "Tiger", "Lion", 0.9), ("test", "Lion", "Lion", 0.6)]
FINE_TUNED = [("test", "Tiger", "Tiger", 0.9), ("test", "Lion", "Lion", 0.8)]
FINE_TUNED_TAGS = {names.KIND_TAG: names.FINE_TUNED, names.TRAINING_TAG: "unfrozen backbone, <= 8 epochs",
                   names.SUBSET_TAG: "test", names.WEIGHTS_TAG: "fine-tuned:models:/bigcat_bigcats_mobilenet/1"}


def _fake_evaluation(model: str, digest: str, chips, status: str = "FINISHED",
                     kind_tags: Optional[Dict[str, str]] = None) -> str:
    """An evaluation run as evaluate logs it, of the chips (Subset, class, predicted, confidence).
    ``kind_tags`` makes it a fine-tuned model's."""
    tags = {STEP_TAG: "evaluate", names.MODEL_TAG: model, names.WEIGHTS_TAG: "random-init",
            names.DATASET_DIGEST_TAG: digest, **(kind_tags or {})}
    run_id = log_fake_evaluation(tags, fake_chip_results(chips), CLASSES)
    if status != "FINISHED":
        mlflow.MlflowClient().set_terminated(run_id, status)
    return run_id


def test_compare_tables_the_finished_runs_with_their_values_and_logs_figures(make_cfg, capsys):
    cfg = make_cfg()
    setup_tracking(cfg.mlflow)
    mobilenet = _fake_evaluation("mobilenet", "d" * 64, MOBILENET)
    resnet = _fake_evaluation("resnet50", "d" * 64, RESNET)
    _fake_evaluation("mobilenet_v2", "d" * 64, MOBILENET, status="FAILED")

    result = compare.run(cfg)

    table = result["table"].set_index("model")
    assert sorted(table.index) == ["mobilenet", "resnet50"]  # the failed run is left out
    assert table.loc["mobilenet", "test/top1_accuracy"] == 0.75
    assert table.loc["resnet50", "test/top1_accuracy"] == 0.5
    # mobilenet: Tiger precision 2/2, recall 2/3; resnet50: Lion precision 1/2, recall 1/2
    assert table.loc["mobilenet", "f1.Tiger"] == pytest.approx(0.8) and table.loc["resnet50", "f1.Lion"] == 0.5
    assert set(table["run_id"]) == {mobilenet, resnet}
    logged = {f.path for f in mlflow.MlflowClient().list_artifacts(result["run_id"], "comparison")}
    assert {
        "comparison/comparison.md", "comparison/comparison.csv", "comparison/comparison.html",
        "comparison/headline_metrics.png", "comparison/reliability_overlay.png",
        "comparison/per_class_f1.png", "comparison/confusions.png",
    } <= logged
    csv = pd.read_csv(mlflow.artifacts.download_artifacts(run_id=result["run_id"], artifact_path="comparison/comparison.csv"))
    assert csv.set_index("model").loc["resnet50", "f1.Tiger"] == 0.5
    assert set(csv["basis"]) == {"test subset, 4 chips each"}
    printed = capsys.readouterr().out
    assert "mobilenet [random-init]" in printed and "0.75" in printed and "test subset, 4 chips each" in printed


def test_runs_on_different_chip_datasets_are_refused_unless_allowed(make_cfg):
    cfg = make_cfg()
    setup_tracking(cfg.mlflow)
    _fake_evaluation("mobilenet", "a" * 64, MOBILENET)
    _fake_evaluation("resnet50", "b" * 64, RESNET)
    with pytest.raises(MixedDatasetsError, match="allow_mixed_datasets"):
        compare.run(cfg)
    result = compare.run(make_cfg(["compare.allow_mixed_datasets=true"]))
    assert len(result["table"]) == 2


def test_filter_tag_selects_runs_and_nothing_found_is_a_clear_error(make_cfg):
    cfg = make_cfg(["compare.filter_tag='bigcat.model=resnet50'"])
    setup_tracking(cfg.mlflow)
    _fake_evaluation("mobilenet", "a" * 64, MOBILENET)
    _fake_evaluation("resnet50", "b" * 64, RESNET)
    assert list(compare.run(cfg)["table"]["model"]) == ["resnet50"]
    with pytest.raises(LookupError, match="no finished evaluation runs"):
        compare.run(make_cfg(["compare.filter_tag='bigcat.model=vgg16'"]))


def test_compare_shows_zero_shot_and_fine_tuned_runs_with_kind_training_and_test_metrics(make_cfg, capsys):
    cfg = make_cfg()
    setup_tracking(cfg.mlflow)
    _fake_evaluation("mobilenet", "d" * 64, ZERO_SHOT)
    _fake_evaluation("mobilenet", "d" * 64, FINE_TUNED, kind_tags=FINE_TUNED_TAGS)

    table = compare.run(cfg)["table"].set_index("kind")

    assert table.loc[names.ZERO_SHOT, "test/top1_accuracy"] == 0.5  # its test chips, not its 4 of 5 overall
    assert table.loc[names.FINE_TUNED, "test/top1_accuracy"] == 1.0
    assert table.loc[names.FINE_TUNED, "training"] == "unfrozen backbone, <= 8 epochs"
    assert table.loc[names.FINE_TUNED, "evaluated"] == "test" and table.loc[names.ZERO_SHOT, "evaluated"] == "all"
    printed = capsys.readouterr().out
    assert "mobilenet [fine-tuned:models:/bigcat_bigcats_mobilenet/1]" in printed and "0.5" in printed


def _zero_shot_and_fine_tuned_comparison(make_cfg, tmp_path):
    setup_tracking(make_cfg().mlflow)
    _fake_evaluation("mobilenet", "d" * 64, ZERO_SHOT)
    _fake_evaluation("mobilenet", "d" * 64, FINE_TUNED, kind_tags=FINE_TUNED_TAGS)
    runs = comparison.find_evaluation_runs(mlflow.get_experiment_by_name(make_cfg().mlflow.experiment_name).experiment_id)
    return comparison.build_comparison(runs, tmp_path, "test")


def test_the_reliability_overlay_and_confusions_count_the_table_s_test_chips_and_say_so(make_cfg, tmp_path):
    result = _zero_shot_and_fine_tuned_comparison(make_cfg, tmp_path)
    drawn = comparison.comparison_figures(result)

    table = result.table.set_index("run")
    legend = [t.get_text() for t in drawn["reliability_overlay.png"].axes[0].get_legend().get_texts()][1:]
    # zero-shot on its test chips: a wrong 0.9 and a right 0.6, ECE (0.9 + 0.4) / 2 = 0.65, not its 0.2 overall
    assert table.loc["mobilenet [random-init]", "test/ece"] == pytest.approx(0.65)
    assert legend == [f"{run} (ECE {ece:.3f})" for run, ece in table["test/ece"].items()]
    assert [c.to_numpy().sum() for c in result.confusions.values()] == [2, 2]
    assert all("test subset, 2 chips each" in (fig.axes[0].get_title() + fig.get_suptitle()) for fig in drawn.values())


def test_every_compare_legend_sits_outside_the_plotted_area(make_cfg, tmp_path):
    for name, fig in comparison.comparison_figures(_zero_shot_and_fine_tuned_comparison(make_cfg, tmp_path)).items():
        renderer = FigureCanvasAgg(fig).get_renderer()
        fig.draw(renderer)  # lays the figure out as the PNG does
        for ax in fig.axes:
            if ax.get_legend() is not None:
                legend_box = ax.get_legend().get_window_extent(renderer)
                assert not legend_box.overlaps(ax.get_window_extent(renderer)), name


def test_a_run_without_chips_of_the_compared_subset_is_refused_naming_it(make_cfg):
    cfg = make_cfg(["compare.subset=validation"])
    setup_tracking(cfg.mlflow)
    _fake_evaluation("mobilenet", "d" * 64, ZERO_SHOT)
    with pytest.raises(comparison.ComparisonBasisError, match="mobilenet .random-init. .* no chips of Subset 'validation'"):
        compare.run(cfg)


def test_every_chip_basis_labels_each_run_s_own_chip_count(make_cfg):
    cfg = make_cfg(["compare.subset=null"])
    setup_tracking(cfg.mlflow)
    _fake_evaluation("mobilenet", "d" * 64, ZERO_SHOT)
    _fake_evaluation("mobilenet", "d" * 64, FINE_TUNED, kind_tags=FINE_TUNED_TAGS)
    table = compare.run(cfg)["table"].set_index("kind")
    assert table.loc[names.ZERO_SHOT, "top1_accuracy"] == 0.8 and table.loc[names.FINE_TUNED, "top1_accuracy"] == 1.0
    assert table.loc[names.ZERO_SHOT, "basis"] == (
        "every chip each run scored, mobilenet [fine-tuned:models:/bigcat_bigcats_mobilenet/1]: 2 chips, "
        "mobilenet [random-init]: 5 chips")  # newest run first


def test_a_run_logged_without_per_chip_results_is_refused_saying_to_evaluate_again(make_cfg):
    cfg = make_cfg()
    setup_tracking(cfg.mlflow)
    with mlflow.start_run(tags={STEP_TAG: "evaluate", names.MODEL_TAG: "vgg16", names.WEIGHTS_TAG: "imagenet",
                                names.DATASET_DIGEST_TAG: "d" * 64}):
        mlflow.log_metric("top1_accuracy", 0.5)
    with pytest.raises(comparison.ComparisonBasisError, match="vgg16 .imagenet. .* evaluate that model again"):
        compare.run(cfg)


def test_the_printed_table_fits_120_columns_and_the_artifacts_keep_every_column(make_cfg, capsys):
    """The demo's fine-tuned run, whose training description alone is 100 characters."""
    cfg = make_cfg()
    setup_tracking(cfg.mlflow)
    training = "unfrozen backbone, <= 10 epochs, batch 16, lr 0.001, augment flip+crop 0.1+colour 0.1, seed 0, single"
    long_weights = "fine-tuned:models:/bigcat_carnivores_and_other_animals_mobilenet_v2/12"
    _fake_evaluation("mobilenet", "d" * 64, FINE_TUNED, kind_tags={
        names.KIND_TAG: names.FINE_TUNED, names.TRAINING_TAG: training, names.SUBSET_TAG: "test",
        names.WEIGHTS_TAG: "fine-tuned:models:/bigcat_bigcats_mobilenet/1"})
    _fake_evaluation("mobilenet_v2", "d" * 64, MOBILENET, kind_tags={
        names.KIND_TAG: names.FINE_TUNED, names.TRAINING_TAG: training, names.SUBSET_TAG: "test",
        names.WEIGHTS_TAG: long_weights})
    _fake_evaluation("resnet50", "d" * 64, RESNET)

    result = compare.run(cfg)

    table = [line for line in capsys.readouterr().out.splitlines() if line.startswith("|")]
    assert len(table) == 2 + 3 and max(len(line) for line in table) <= 120
    assert any(line.startswith("| mobilenet [fine-tuned:models:/bigcat_bigcats_mobilenet/1] ") for line in table)
    # a label too long to fit keeps its start and its end
    assert any(line.startswith("| mobilenet_v2 [fine-tuned:") and "…" in line and "_v2/12] " in line for line in table)
    csv = pd.read_csv(mlflow.artifacts.download_artifacts(run_id=result["run_id"], artifact_path="comparison/comparison.csv"))
    assert list(csv.set_index("model").loc[["mobilenet", "mobilenet_v2"], "training"]) == [training, training]
    assert {"kind", "precision", "run_id", "f1.Tiger"} <= set(csv.columns)
