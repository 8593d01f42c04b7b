"""Figures: each test reads back the drawn artists (bar heights, image data, labels)."""
from __future__ import annotations

import io

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.container import BarContainer
from matplotlib.figure import Figure

from bigcat_ml import evaluate
from bigcat_ml.scoring.evaluation import mistake_caption
from bigcat_ml.scoring.metrics import attribute_rates, calibration_table, one_vs_rest
from bigcat_ml.scoring.imagenet import ClassTruth
from bigcat_ml.reporting.figures.compare import confusions_side_by_side, metric_bars, per_class_f1_grouped, reliability_overlay
from bigcat_ml.reporting.figures.evaluate import (
    confidence_histograms,
    confusion_matrix_figure,
    mistakes_gallery,
    reliability_diagram,
    roc_pr_curves,
)
from bigcat_ml.reporting.figures.preprocess import (
    attribute_rates_figure,
    boxes_per_class_subset_figure,
    chip_size_figure,
    contact_sheet,
    positives_negatives_figure,
)


def _truth(pred):
    """Each class's ImageNet class from the rows' true index."""
    return {name: ClassTruth((int(index),), (), "config") for name, index in zip(pred["LabelText"], pred["true_index"])}


def _pred(rows):
    """rows of (LabelText, true_index, top-1 index, confidence)."""
    return pd.DataFrame(
        {
            "LabelText": [r[0] for r in rows],
            "true_index": [r[1] for r in rows],
            "top_k_indices": [[r[2], 0] for r in rows],
            "top_k_probs": [[r[3], 1 - r[3]] for r in rows],
        }
    )


def _heights(container: BarContainer):
    return [bar.get_height() for bar in container]


def _text(fig: Figure):
    return [t.get_text() for ax in fig.axes for t in ax.texts]


def _png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


CONFUSION = pd.DataFrame(
    [[1, 1, 0, 2], [0, 3, 0, 1], [0, 0, 0, 0]],
    index=pd.Index(["Tiger", "Lion", "Lynx"], name="true"),
    columns=pd.Index(["Tiger", "Lion", "Lynx", "other"], name="predicted"),
)


def test_confusion_matrix_image_is_the_row_normalised_table():
    fig = confusion_matrix_figure(CONFUSION)
    heatmap = fig.axes[0]
    expected = [[0.25, 0.25, 0, 0.5], [0, 0.75, 0, 0.25], [0, 0, 0, 0]]  # empty row stays 0
    np.testing.assert_allclose(heatmap.images[0].get_array(), expected)
    assert [t.get_text() for t in heatmap.get_xticklabels()] == ["Tiger", "Lion", "Lynx", "other"]
    assert [t.get_text() for t in heatmap.get_yticklabels()] == ["Tiger", "Lion", "Lynx"]
    assert "0.50\n(2)" in _text(fig)
    assert len(fig.axes) == 2  # heat map + colour bar
    assert fig.axes[1].get_ylabel() == "fraction of the true class's chips"


def test_confusion_matrix_counts_when_not_normalised():
    fig = confusion_matrix_figure(CONFUSION, normalize=False)
    np.testing.assert_array_equal(fig.axes[0].images[0].get_array(), CONFUSION.to_numpy())
    assert fig.axes[0].images[0].get_clim() == (0, 3)


def test_confusion_matrix_of_one_class_and_of_many_classes():
    one = pd.DataFrame([[5, 0]], index=["Tiger"], columns=["Tiger", "other"])
    np.testing.assert_allclose(confusion_matrix_figure(one).axes[0].images[0].get_array(), [[1, 0]])
    names = [f"class {i}" for i in range(30)]
    many = pd.DataFrame(np.eye(30, 31, dtype=int), index=names, columns=[*names, "other"])
    fig = confusion_matrix_figure(many)
    assert fig.axes[0].images[0].get_array().shape == (30, 31)
    assert _text(fig) == []  # too many cells to write numbers in
    assert _png(fig).startswith(b"\x89PNG")


def test_confidence_histograms_split_right_and_wrong_overall_and_per_class():
    pred = _pred([("Tiger", 292, 292, 0.95), ("Tiger", 292, 291, 0.85), ("Lion", 291, 291, 0.15),
                  ("Lynx", 287, 281, 0.35)])
    fig = confidence_histograms(pred, _truth(pred), bins=10)
    panels = [ax for ax in fig.axes if ax.axison]
    assert [ax.get_title() for ax in panels] == ["all classes (4 chips)", "Lion (1 chips)", "Lynx (1 chips)",
                                                 "Tiger (2 chips)"]
    right, wrong = panels[0].containers
    assert _heights(right) == [0, 1, 0, 0, 0, 0, 0, 0, 0, 1]  # .15 and .95
    assert _heights(wrong) == [0, 0, 0, 1, 0, 0, 0, 0, 1, 0]  # .35 and .85
    lynx_right, lynx_wrong = panels[2].containers
    assert sum(_heights(lynx_right)) == 0 and sum(_heights(lynx_wrong)) == 1
    assert len(fig.axes) == 6  # 2 rows of 3, two switched off
    assert [t.get_text() for t in panels[0].get_legend().get_texts()] == ["right", "wrong"]
    assert panels[0].get_xlabel() == "top-1 confidence (probability)"


def test_confidence_histograms_with_no_mistakes():
    pred = _pred([("Tiger", 292, 292, 0.95)])
    fig = confidence_histograms(pred, _truth(pred))
    right, wrong = fig.axes[0].containers
    assert sum(_heights(right)) == 1 and sum(_heights(wrong)) == 0


def test_reliability_diagram_bars_are_bin_accuracy_and_counts():
    table = calibration_table(pd.Series([0.3, 0.4, 0.6, 0.7, 0.9, 0.8]),
                              pd.Series([False, True, False, True, True, False]), n_bins=4)
    fig = reliability_diagram(table, title="MobileNet")
    top, bottom = fig.axes
    assert _heights(top.containers[0]) == pytest.approx([0.5, 0.5, 0.5])  # the empty first bin has no bar
    assert [bar.get_x() for bar in top.containers[0]] == pytest.approx([0.25, 0.5, 0.75])
    assert _heights(bottom.containers[0]) == [0, 2, 2, 2]
    assert top.get_title() == "MobileNet (ECE 0.217)"
    assert bottom.get_xlabel() == "top-1 confidence (probability)"


def test_mistakes_gallery_shows_each_image_with_its_caption():
    images = [np.full((8, 6, 3), i * 40, dtype=np.uint8) for i in range(5)]
    captions = [f"Lynx -> tabby 0.9{i}" for i in range(5)]
    fig = mistakes_gallery(images, captions)
    shown = [ax for ax in fig.axes if ax.images]
    assert len(fig.axes) == 8 and len(shown) == 5  # 2 rows of 4
    assert all(not ax.get_frame_on() and not ax.get_xticks().size for ax in fig.axes[5:])  # blank cells
    assert [ax.get_title() for ax in shown] == captions
    np.testing.assert_array_equal(shown[3].images[0].get_array(), images[3])


def test_mistakes_gallery_without_mistakes_says_so():
    fig = mistakes_gallery([], [])
    assert "no mistakes" in _text(fig)
    assert _png(fig).startswith(b"\x89PNG")


def test_mistakes_gallery_needs_one_caption_per_image():
    with pytest.raises(ValueError, match="2 images, 1 captions"):
        mistakes_gallery([np.zeros((2, 2, 3), np.uint8)] * 2, ["a"])


def test_positives_negatives_bars_are_the_counts():
    counts = pd.DataFrame({"LabelText": ["Tiger", "Lion"], "positive": [10, 7], "negative": [3, 0]})
    ax = positives_negatives_figure(counts).axes[0]
    positive, negative = ax.containers
    assert _heights(positive) == [10, 7] and _heights(negative) == [3, 0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["Tiger", "Lion"]
    assert ax.get_ylabel() == "images"


def test_boxes_per_class_subset_bars_are_the_crosstab():
    boxes = pd.DataFrame({"LabelText": ["Tiger", "Tiger", "Lion", "Tiger"],
                          "Subset": ["train", "test", "train", "train"]})
    ax = boxes_per_class_subset_figure(pd.crosstab(boxes["LabelText"], boxes["Subset"])).axes[0]
    test_bars, train_bars = ax.containers  # crosstab sorts columns
    assert _heights(train_bars) == [1, 2] and _heights(test_bars) == [0, 1]  # Lion, Tiger
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["test", "train"]


def test_chip_size_figure_plots_sizes_and_bucket_edges():
    chips = pd.DataFrame({"chip_width": [20, 100, 300], "chip_height": [40, 50, 400]})
    scatter, hist = chip_size_figure(chips, size_buckets=[32, 64]).axes
    np.testing.assert_array_equal(scatter.collections[0].get_offsets(), [[20, 40], [100, 50], [300, 400]])
    assert sum(bar.get_height() for bar in hist.patches) == 3
    assert [line.get_xdata()[0] for line in hist.lines] == [32, 64]
    assert hist.get_xlabel().startswith("shorter side (pixels)")
    assert "no chips" in _text(chip_size_figure(chips.iloc[:0]))


def test_attribute_rates_figure_draws_the_rates():
    boxes = pd.DataFrame({"LabelText": ["Lion", "Tiger", "Tiger"], "IsOccluded": [1, 0, 1],
                          "IsTruncated": [0, -1, 1], "IsGroupOf": [0, 0, 0], "IsDepiction": [0, 0, 0],
                          "IsInside": [0, 0, 0]})
    ax = attribute_rates_figure(attribute_rates(boxes)).axes[0]
    occluded, truncated = ax.containers[:2]
    assert _heights(occluded) == [1.0, 0.5] and _heights(truncated) == [0.0, 1.0]
    assert ax.get_ylim() == (0, 1)


def test_contact_sheet_has_a_row_per_class_and_blank_cells_when_short():
    chip = np.zeros((4, 4, 3), dtype=np.uint8)
    fig = contact_sheet({"Tiger": [chip] * 5, "Lynx": [chip]}, per_class=3)
    assert len(fig.axes) == 6
    assert [len(ax.images) for ax in fig.axes] == [1, 1, 1, 1, 0, 0]
    assert [fig.axes[0].get_ylabel(), fig.axes[3].get_ylabel()] == ["Tiger", "Lynx"]
    assert "no chips" in _text(contact_sheet({}, per_class=3))


def test_metric_bars_group_runs_per_metric():
    metrics = pd.DataFrame({"top1_accuracy": [0.5, 0.7], "ece": [0.2, 0.1]}, index=["mobilenet", "resnet50"])
    ax = metric_bars(metrics).axes[0]
    mobilenet, resnet = ax.containers
    assert _heights(mobilenet) == [0.5, 0.2] and _heights(resnet) == [0.7, 0.1]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["top1_accuracy", "ece"]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["mobilenet", "resnet50"]


def test_per_class_f1_grouped_bars():
    f1 = pd.DataFrame({"mobilenet": [0.5, 1.0], "resnet50": [0.25, 0.75]}, index=["Tiger", "Lynx"])
    ax = per_class_f1_grouped(f1).axes[0]
    assert [_heights(c) for c in ax.containers] == [[0.5, 1.0], [0.25, 0.75]]
    assert ax.get_ylabel() == "F1"


def test_reliability_overlay_draws_a_line_per_run_through_filled_bins():
    run_a = calibration_table(pd.Series([0.3, 0.4, 0.9]), pd.Series([False, True, True]), n_bins=4)
    run_b = calibration_table(pd.Series([0.6, 0.7]), pd.Series([True, True]), n_bins=4)
    ax = reliability_overlay({"a": run_a, "b": run_b}).axes[0]
    diagonal, line_a, line_b = ax.lines
    assert list(line_a.get_xdata()) == pytest.approx([0.35, 0.9])
    assert list(line_a.get_ydata()) == pytest.approx([0.5, 1.0])
    assert list(line_b.get_xdata()) == pytest.approx([0.65])
    # a: (2*|.5-.35| + 1*|1-.9|) / 3 = .133; b: |1-.65| = .35
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        "perfect calibration", "a (ECE 0.133)", "b (ECE 0.350)"]


def test_confusions_side_by_side_share_one_scale():
    other = CONFUSION.copy()
    other.iloc[0] = [4, 0, 0, 0]
    fig = confusions_side_by_side({"mobilenet": CONFUSION, "resnet50": other}, normalize=False)
    left, right = fig.axes[:2]
    assert [left.get_title(), right.get_title()] == ["mobilenet", "resnet50"]
    np.testing.assert_array_equal(right.images[0].get_array(), other.to_numpy())
    assert left.images[0].get_clim() == right.images[0].get_clim() == (0, 4)
    assert len(fig.axes) == 3  # two heat maps + one shared colour bar


@pytest.mark.parametrize("draw", [
    lambda: metric_bars(pd.DataFrame(columns=["ece"])),
    lambda: reliability_overlay({}),
    lambda: confusions_side_by_side({}),
])
def test_comparisons_without_runs_are_an_error(draw):
    with pytest.raises(ValueError, match="no runs to compare"):
        draw()


def test_figures_do_not_touch_pyplot_state_and_render_to_png():
    plt.close("all")
    figures = [
        confusion_matrix_figure(CONFUSION),
        confidence_histograms(_pred([("Tiger", 292, 291, 0.5)]), {"Tiger": ClassTruth((292,), (), "config")}),
        reliability_diagram(calibration_table(pd.Series([0.5]), pd.Series([True]), n_bins=10)),
        mistakes_gallery([np.zeros((4, 4, 3), np.uint8)], ["x"]),
        confusions_side_by_side({"a": CONFUSION}),
    ]
    assert plt.get_fignums() == []
    assert all(_png(fig).startswith(b"\x89PNG") for fig in figures)


def test_reliability_bins_of_fewer_than_five_chips_are_hollow_and_small():
    confidence = pd.Series([0.3, *[0.9] * 6])
    table = calibration_table(confidence, pd.Series([True, *[True, False] * 3]), n_bins=2)
    bars = reliability_diagram(table).axes[0].containers[0]
    assert [bar.get_facecolor()[3] for bar in bars] == [0.0, 1.0]  # the 1-chip bin: no fill
    assert [bar.get_hatch() for bar in bars] == ["//", None]
    overlay = reliability_overlay({"a": table}).axes[0]
    (markers,) = overlay.collections
    assert list(markers.get_sizes()) == pytest.approx([12 + 100 / 6, 112])
    assert [face[3] for face in markers.get_facecolors()] == [0.0, 1.0]


def test_roc_pr_curves_draw_each_class_s_curve_with_its_auc_in_the_legend():
    pred = _pred([("Tiger", 292, 292, 0.9), ("Tiger", 292, 291, 0.6), ("Lion", 291, 291, 0.8), ("Lion", 291, 292, 0.7)])
    ranking = one_vs_rest(pred, _truth(pred))
    roc_ax, pr_ax = roc_pr_curves(ranking).axes
    fpr, tpr = ranking.roc["Tiger"]
    np.testing.assert_array_equal(roc_ax.lines[0].get_xdata(), fpr)
    np.testing.assert_array_equal(roc_ax.lines[0].get_ydata(), tpr)
    auc = ranking.auc.set_index("class").loc["Tiger", "roc_auc"]
    assert roc_ax.get_legend().get_texts()[0].get_text() == f"Tiger (AUC {auc:.3f}, 2 chips)"
    assert pr_ax.get_xlabel() == "recall"


def test_mistakes_gallery_tiles_name_the_chip_s_image_id_and_box():
    chip = pd.DataFrame([{"ImageID": "0a1b2c", "XMin": 0.1, "XMax": 0.55, "YMin": 0.2, "YMax": 0.9,
                          "LabelText": "Lynx", "predicted_label": "tabby", "confidence": 0.93}])
    (caption,) = [mistake_caption(row) for row in chip.itertuples()]
    fig = mistakes_gallery([np.zeros((4, 4, 3), np.uint8)], [caption])
    assert fig.axes[0].get_title() == "0a1b2c\nbox (0.10, 0.20)–(0.55, 0.90)\nLynx → tabby (0.93)"


def test_a_random_init_run_logs_no_gallery_tiles_but_says_there_is_nothing_to_learn(make_cfg):
    fig = evaluate.mistakes_figure(None, make_cfg(["model.weights=null"]))
    assert not any(ax.images for ax in fig.axes)
    assert any("nothing to learn" in text for text in _text(fig))
