"""Metrics on a six-chip case worked out by hand.

Chips (true class -> top-1 prediction, confidence; * = true class elsewhere in the top 5):
  1 Tiger -> Tiger 0.9        4 Lion -> Lion 0.7
  2 Tiger -> Lion 0.8 *       5 Lion -> tabby cat (281) 0.3 *
  3 Tiger -> tiger cat (282) 0.6 (true class not in the top 5)
  6 Lynx -> Lynx 0.4
Family = big cats 286..293, so tabby cat and tiger cat are outside it.
"""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score
from mlflow.utils.validation import _validate_metric_name

from bigcat_ml.scoring.imagenet import ClassTruth
from bigcat_ml.tracking.names import metric_name
from bigcat_ml.scoring.metrics import (
    CHIP_RESULT_COLUMNS,
    attribute_rates,
    calibration_table,
    chip_outcomes,
    chip_results,
    class_scores,
    one_vs_rest,
    outcome_scores,
    evaluate_predictions,
    expected_calibration_error,
    most_confident_mistakes,
    size_bucket_labels,
    size_buckets_of,
)

TIGER, LION, LYNX, TABBY, TIGER_CAT = 292, 291, 287, 281, 282
CLASS_NAMES = {TIGER: "Tiger", LION: "Lion", LYNX: "Lynx"}
FAMILY = tuple(range(286, 294))
TRUTH = {name: ClassTruth((index,), FAMILY, "config") for index, name in CLASS_NAMES.items()}
IMAGENET = {292: "tiger", 291: "lion", 287: "lynx", 281: "tabby", 282: "tiger_cat", 290: "jaguar",
            288: "leopard", 293: "cheetah", 283: "persian_cat", 284: "siamese_cat", 285: "egyptian_cat"}


def _chip(image_id, label, true, top, top1_prob, occluded=0, size=(100, 100)):
    probs = [top1_prob, *[(1 - top1_prob) / 8] * 4]
    return {
        "ImageID": image_id, "Subset": "test", "LabelName": f"/m/{label.lower()}", "LabelText": label,
        "XMin": 0.1, "XMax": 0.5, "YMin": 0.1, "YMax": 0.5,
        "IsOccluded": occluded, "IsTruncated": 0, "IsGroupOf": 0, "IsDepiction": 0, "IsInside": -1,
        "chip_width": size[0], "chip_height": size[1], "true_index": true,
        "top_k_indices": list(top), "top_k_labels": [IMAGENET[i] for i in top], "top_k_probs": probs,
    }


@pytest.fixture
def pred() -> pd.DataFrame:
    return pd.DataFrame(
        [
            _chip("i1", "Tiger", TIGER, [292, 291, 290, 288, 293], 0.9, occluded=1, size=(31, 40)),
            _chip("i2", "Tiger", TIGER, [291, 292, 290, 288, 293], 0.8, occluded=1, size=(32, 32)),
            _chip("i3", "Tiger", TIGER, [282, 281, 285, 283, 284], 0.6, occluded=0, size=(80, 63)),
            _chip("i4", "Lion", LION, [291, 292, 290, 288, 293], 0.7, occluded=-1, size=(64, 64)),
            _chip("i5", "Lion", LION, [281, 291, 282, 283, 284], 0.3, occluded=0, size=(100, 20)),
            _chip("i6", "Lynx", LYNX, [287, 281, 282, 283, 284], 0.4, occluded=1, size=(500, 300)),
        ]
    )


@pytest.fixture
def report(pred):
    return evaluate_predictions(pred, TRUTH, n_bins=4, size_buckets=[32, 64])


def test_accuracies_count_top1_top5_and_family_hits(report):
    assert report.n_chips == 6
    assert report.top1_accuracy == pytest.approx(3 / 6)  # chips 1, 4, 6
    assert report.top5_accuracy == pytest.approx(5 / 6)  # all but chip 3
    assert report.family_accuracy == pytest.approx(4 / 6)  # chips 1, 2, 4, 6


def test_per_class_precision_recall_f1_treat_outside_predictions_as_misses_only(report):
    # Tiger TP1 FP0 FN2; Lion TP1 FP1 (chip 2) FN1; Lynx TP1 FP0 FN0. The tabby/tiger-cat
    # predictions are misses for Tiger and Lion and false positives for nobody.
    table = report.per_class.set_index("class")
    assert list(table.index) == ["Tiger", "Lion", "Lynx"]
    assert table["support"].tolist() == [3, 2, 1]
    assert table["precision"].tolist() == pytest.approx([1.0, 0.5, 1.0])
    assert table["recall"].tolist() == pytest.approx([1 / 3, 0.5, 1.0])
    assert table["f1"].tolist() == pytest.approx([0.5, 0.5, 1.0])
    assert table["top1_accuracy"].tolist() == pytest.approx([1 / 3, 0.5, 1.0])
    assert table["top5_accuracy"].tolist() == pytest.approx([2 / 3, 1.0, 1.0])
    assert table["family_accuracy"].tolist() == pytest.approx([2 / 3, 0.5, 1.0])


def test_macro_and_weighted_averages(report):
    assert report.precision_macro == pytest.approx(5 / 6)  # (1 + .5 + 1) / 3
    assert report.recall_macro == pytest.approx(11 / 18)  # (1/3 + 1/2 + 1) / 3
    assert report.f1_macro == pytest.approx(2 / 3)  # (.5 + .5 + 1) / 3
    assert report.precision_weighted == pytest.approx(5 / 6)  # (3*1 + 2*.5 + 1*1) / 6
    assert report.recall_weighted == pytest.approx(0.5)  # equals top-1 accuracy
    assert report.f1_weighted == pytest.approx(7 / 12)  # (3*.5 + 2*.5 + 1*1) / 6


def test_mean_confidence_of_right_and_wrong_top1(report):
    assert report.mean_confidence_correct == pytest.approx((0.9 + 0.7 + 0.4) / 3)
    assert report.mean_confidence_wrong == pytest.approx((0.8 + 0.6 + 0.3) / 3)


def test_confusion_puts_outside_predictions_in_other(report):
    expected = pd.DataFrame(
        [[1, 1, 0, 1], [0, 1, 0, 1], [0, 0, 1, 0]],
        index=pd.Index(["Tiger", "Lion", "Lynx"], name="true"),
        columns=pd.Index(["Tiger", "Lion", "Lynx", "other"], name="predicted"),
    )
    pd.testing.assert_frame_equal(report.confusion, expected, check_dtype=False)


def test_other_predictions_names_the_imagenet_classes_behind_other(report):
    rows = report.other_predictions[["class", "predicted_index", "predicted_label", "count"]].values.tolist()
    assert rows == [["Lion", TABBY, "tabby", 1], ["Tiger", TIGER_CAT, "tiger_cat", 1]]


def test_calibration_table_with_an_empty_bin_and_ece(report):
    # Bins of width .25: [0,.25] empty; (.25,.5]: .3 wrong, .4 right; (.5,.75]: .6 wrong,
    # .7 right; (.75,1]: .9 right, .8 wrong.
    table = report.calibration
    assert table["count"].tolist() == [0, 2, 2, 2]
    assert table["lower"].tolist() == pytest.approx([0, 0.25, 0.5, 0.75])
    assert table["upper"].tolist() == pytest.approx([0.25, 0.5, 0.75, 1.0])
    assert np.isnan(table.loc[0, "confidence"]) and np.isnan(table.loc[0, "accuracy"])
    assert table["confidence"].iloc[1:].tolist() == pytest.approx([0.35, 0.65, 0.85])
    assert table["accuracy"].iloc[1:].tolist() == pytest.approx([0.5, 0.5, 0.5])
    # (2*|.5-.35| + 2*|.5-.65| + 2*|.5-.85|) / 6
    assert report.ece == pytest.approx(1.3 / 6)


def test_ece_with_three_bins():
    confidence = pd.Series([0.9, 0.8, 0.6, 0.7, 0.3, 0.4])
    correct = pd.Series([True, False, False, True, False, True])
    table = calibration_table(confidence, correct, n_bins=3)
    assert table["count"].tolist() == [1, 2, 3]
    # (1*|0-.3| + 2*|.5-.5| + 3*|2/3-.8|) / 6
    assert expected_calibration_error(table) == pytest.approx(0.7 / 6)


def test_calibration_bins_are_right_closed_and_hold_zero():
    table = calibration_table(pd.Series([0.0, 0.5, 0.5000001, 1.0]), pd.Series([True] * 4), n_bins=2)
    assert table["count"].tolist() == [2, 2]


def test_calibration_rejects_confidence_outside_zero_one():
    with pytest.raises(ValueError, match=r"row 1 has 1.2"):
        calibration_table(pd.Series([0.5, 1.2]), pd.Series([True, True]), n_bins=2)


def test_attribute_slices_count_unknown_separately(report):
    occluded = report.slices[report.slices["slice"] == "IsOccluded"].set_index("value")
    assert list(occluded.index) == ["1", "0", "unknown"]
    assert occluded["count"].tolist() == [3, 2, 1]  # chips 1,2,6 / 3,5 / 4
    assert occluded["top1_accuracy"].tolist() == pytest.approx([2 / 3, 0.0, 1.0])
    assert occluded["family_accuracy"].tolist() == pytest.approx([1.0, 0.0, 1.0])


def test_slices_keep_empty_values_with_nan_accuracy(report):
    inside = report.slices[report.slices["slice"] == "IsInside"].set_index("value")
    assert inside["count"].tolist() == [0, 0, 6]
    assert inside["top1_accuracy"].isna().tolist() == [True, True, False]


def test_size_slices_bucket_the_shorter_side_with_edges_opening_the_next_bucket(report):
    size = report.slices[report.slices["slice"] == "chip_size"].set_index("value")
    assert list(size.index) == ["<32", "32-63", ">=64"]
    # shorter sides: 31, 32, 63, 64, 20, 300
    assert size["count"].tolist() == [2, 2, 2]
    assert size["top1_accuracy"].tolist() == pytest.approx([0.5, 0.0, 1.0])
    assert size["family_accuracy"].tolist() == pytest.approx([0.5, 0.5, 1.0])


def test_size_bucket_labels_and_edge_values():
    assert size_bucket_labels([32, 64, 128, 256]) == ["<32", "32-63", "64-127", "128-255", ">=256"]
    assert size_bucket_labels([]) == ["all"]
    chips = pd.DataFrame({"chip_width": [255, 256, 1000], "chip_height": [900, 256, 31]})
    assert size_buckets_of(chips, [32, 64, 128, 256]).tolist() == ["128-255", ">=256", "<32"]
    with pytest.raises(ValueError, match="increasing"):
        size_bucket_labels([64, 32])


def test_scalar_metrics_are_flat_mlflow_legal_and_skip_nan(report):
    metrics = report.scalar_metrics()
    assert metrics["top1_accuracy"] == pytest.approx(0.5)
    assert metrics["f1_macro"] == pytest.approx(2 / 3)
    assert metrics["ece"] == pytest.approx(1.3 / 6)
    assert metrics["f1.Tiger"] == pytest.approx(0.5)
    assert metrics["support.Lion"] == 2
    assert metrics["top1_accuracy.IsOccluded.unknown"] == pytest.approx(1.0)
    assert metrics["top1_accuracy.chip_size.lt32"] == pytest.approx(0.5)
    assert metrics["family_accuracy.chip_size.ge64"] == pytest.approx(1.0)
    assert "top1_accuracy.IsInside.1" not in metrics  # empty slice: NaN, left out
    assert all(isinstance(v, float) and not np.isnan(v) for v in metrics.values())
    for name in metrics:
        _validate_metric_name(name)


def test_metric_name_turns_a_parenthesised_qualifier_into_a_dash_mlflow_accepts():
    assert metric_name("f1", "Jaguar (Animal)") == "f1.Jaguar - Animal"
    assert metric_name("rejects", "too small: <16 px") == "rejects.too small_ lt16 px"
    _validate_metric_name(metric_name("f1", "Jaguar (Animal)"))


def test_unmapped_true_class_is_an_error_naming_the_row(pred):
    pred.loc[4, ["LabelText", "true_index"]] = ["Cougar", 286]
    with pytest.raises(ValueError, match=r"classes \['Cougar'\] with no ImageNet classes .*row 4"):
        evaluate_predictions(pred, TRUTH)


def test_a_class_with_a_set_of_imagenet_classes_is_right_on_any_of_them(pred):
    """Tiger chips are also right when the model says lion (a 'Dog' with its 118 breeds)."""
    truth = {**TRUTH, "Tiger": ClassTruth((TIGER, LION), FAMILY, "config")}
    outcomes = chip_outcomes(pred, truth)
    assert outcomes["top1_correct"].tolist() == [True, True, False, True, False, True]
    # a Lion chip predicted tiger is attributed to Tiger, whose set lists it first
    report = evaluate_predictions(pred, truth, n_bins=4)
    assert report.confusion.loc["Tiger"].tolist() == [2, 0, 0, 1]


def test_family_accuracy_uses_each_class_groups_family(pred):
    truth = {**TRUTH, "Lynx": ClassTruth((LYNX,), (281, 282), "wordnet")}
    report = evaluate_predictions(pred, truth, n_bins=4)
    assert report.per_class.set_index("class").loc["Lynx", "family_accuracy"] == 0.0  # lynx (287) not in (281, 282)


def test_missing_columns_are_listed(pred):
    with pytest.raises(ValueError, match=r"lacks columns \['IsInside'\]"):
        evaluate_predictions(pred.drop(columns="IsInside"), TRUTH)


def test_empty_predictions_are_an_error(pred):
    with pytest.raises(ValueError, match="empty"):
        evaluate_predictions(pred.iloc[:0], TRUTH)


def test_bad_flag_value_is_an_error(pred):
    pred.loc[2, "IsGroupOf"] = 7
    with pytest.raises(ValueError, match="IsGroupOf row 2 has 7"):
        evaluate_predictions(pred, TRUTH)


def test_ragged_top_k_is_an_error(pred):
    pred.at[3, "top_k_probs"] = [0.7]
    with pytest.raises(ValueError, match="row 3 has 1"):
        chip_outcomes(pred, TRUTH)


def test_top5_uses_all_predictions_when_fewer_are_kept(pred):
    short = pred.assign(
        top_k_indices=pred["top_k_indices"].map(lambda top: top[:2]),
        top_k_probs=pred["top_k_probs"].map(lambda top: top[:2]),
        top_k_labels=pred["top_k_labels"].map(lambda top: top[:2]),
    )
    assert chip_outcomes(short, TRUTH)["top5_correct"].tolist() == [True, True, False, True, True, True]


def test_single_class_and_no_mistakes(pred):
    tigers = pred.iloc[:1]
    report = evaluate_predictions(tigers, TRUTH, n_bins=10)
    assert report.top1_accuracy == 1.0
    assert report.confusion.to_numpy().tolist() == [[1, 0]]
    assert np.isnan(report.mean_confidence_wrong)
    assert "mean_confidence_wrong" not in report.scalar_metrics()
    # one chip at .9 in (.8, .9]: |1 - .9|
    assert report.ece == pytest.approx(0.1)


def test_most_confident_mistakes_sorted_by_confidence(pred):
    mistakes = most_confident_mistakes(pred, TRUTH, 2)
    assert mistakes["ImageID"].tolist() == ["i2", "i3"]
    assert mistakes["confidence"].tolist() == pytest.approx([0.8, 0.6])
    assert mistakes["predicted_label"].tolist() == ["lion", "tiger_cat"]
    assert mistakes["LabelText"].tolist() == ["Tiger", "Tiger"]
    assert most_confident_mistakes(pred.iloc[[0]], TRUTH, 5).empty


def test_attribute_rates_exclude_unknown_from_the_denominator():
    boxes = pd.DataFrame(
        {
            "LabelText": ["Tiger", "Tiger", "Tiger", "Lion"],
            "IsOccluded": [1, 0, -1, -1],
            "IsTruncated": [1, 1, 0, 0],
            "IsGroupOf": [0, 0, 0, 1],
            "IsDepiction": [0, 0, 0, 0],
            "IsInside": [-1, -1, -1, 0],
        }
    )
    rates = attribute_rates(boxes)
    assert rates.loc["Tiger", "IsOccluded"] == pytest.approx(0.5)  # 1 of 2 known
    assert np.isnan(rates.loc["Lion", "IsOccluded"])  # nothing known
    assert rates.loc["Tiger", "IsTruncated"] == pytest.approx(2 / 3)
    assert rates.loc["Lion", "IsGroupOf"] == 1.0


def test_chip_results_are_one_json_ready_row_per_chip_naming_its_box_top_k_and_outcomes(pred):
    results = chip_results(pred, TRUTH)
    assert list(results.columns) == list(CHIP_RESULT_COLUMNS) and len(results) == 6
    third = results.iloc[2]
    assert (third["ImageID"], third["XMin"], third["YMax"], third["Subset"]) == ("i3", 0.1, 0.5, "test")
    assert third["top_k_labels"] == ["tiger_cat", "tabby", "egyptian_cat", "persian_cat", "siamese_cat"]
    assert third["top_k_probs"][0] == 0.6 and third["predicted_class"] == "other"
    assert list(results["top1_correct"]) == [True, False, False, True, False, True]
    assert json.loads(json.dumps(results.to_dict(orient="split")))["data"][0][0] == "i1"


def test_re_scoring_the_chip_results_gives_the_report_s_numbers(pred, report):
    results = chip_results(pred, TRUTH)
    scores = outcome_scores(results["LabelText"].to_numpy(), results, ["Tiger", "Lion", "Lynx"], n_bins=4)
    assert scores.headline == {"top1_accuracy": report.top1_accuracy, "top5_accuracy": report.top5_accuracy,
                               "family_accuracy": report.family_accuracy, "f1_macro": report.f1_macro,
                               "ece": report.ece}
    pd.testing.assert_frame_equal(scores.confusion, report.confusion)


def test_a_class_s_probability_is_the_sum_of_its_imagenet_classes_in_the_top_k(pred):
    truth = {**TRUTH, "Lion": ClassTruth((LION, TABBY), FAMILY, "config")}
    scores = class_scores(pred, truth)
    assert scores.loc[4, "Lion"] == pytest.approx(0.3 + 0.7 / 8)  # i5: tabby first, lion second
    assert scores.loc[2, "Tiger"] == 0.0  # i3: no tiger in its top 5


def test_one_vs_rest_roc_auc_equals_sklearn_s_on_the_class_probabilities(pred):
    ranking = one_vs_rest(pred, TRUTH)
    auc = ranking.auc.set_index("class")
    # Tiger's probability: chips i1-i3 (Tiger) 0.9, 0.025, 0; i4-i6 0.0375, 0, 0: 6 of 9 pairs ranked right
    tiger_scores = [0.9, 0.025, 0.0, 0.0375, 0.0, 0.0]
    assert auc.loc["Tiger", "roc_auc"] == pytest.approx(6 / 9)
    assert auc.loc["Tiger", "roc_auc"] == pytest.approx(roc_auc_score([1, 1, 1, 0, 0, 0], tiger_scores))
    assert auc.loc["Lynx", "positives"] == 1 and auc.loc["Lynx", "roc_auc"] == 1.0
    fpr, tpr = ranking.roc["Tiger"]
    assert (fpr[-1], tpr[-1]) == (1.0, 1.0)
    metrics = ranking.scalar_metrics()
    assert metrics["roc_auc.Tiger"] == pytest.approx(6 / 9)
    assert metrics["roc_auc_macro"] == pytest.approx(auc["roc_auc"].mean())


def test_a_class_every_chip_belongs_to_has_no_auc_and_logs_none(pred):
    tigers = pred[pred["LabelText"] == "Tiger"]
    ranking = one_vs_rest(tigers, {"Tiger": TRUTH["Tiger"]})
    assert np.isnan(ranking.auc.loc[0, "roc_auc"]) and ranking.roc == {}
    assert ranking.scalar_metrics() == {}
