"""Model registry, weights sources, preprocessing, ImageNet labels and the ground-truth map."""
from __future__ import annotations

import hashlib
from importlib import resources

import keras
import numpy as np
import pytest

from helpers.models import TINY, calibrated_mobilenet, probe_batch

from bigcat_ml.stepkit.step import compose
from bigcat_ml.config.schema import ClassesConfig, ModelConfig, Precision
from bigcat_ml.scoring.imagenet import (
    class_index,
    class_names,
    ground_truth_map,
    top_k,
)
from bigcat_ml.scoring.models import (
    build_model,
    check_model,
    keras_application,
    local_weights_file,
    model_input,
    resize_chip,
    weights_source,
)

# The hash keras.applications.imagenet_utils.decode_predictions checks its download against.
KERAS_CLASS_INDEX_MD5 = "c2c37ea517e94d9795004a39431a14cb"


def tiny_cfg(weights=None, **overrides) -> ModelConfig:
    fields = dict(name="tiny_mobilenet", keras_module="mobilenet", keras_class="MobileNet", input_size=TINY,
                  precision=Precision.float32, source=None)
    return ModelConfig(**{**fields, **overrides}, weights=weights)





@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A model unlike the seeded random-init one, and its weights file."""
    model = calibrated_mobilenet()
    path = tmp_path_factory.mktemp("weights") / "tiny.weights.h5"
    model.save_weights(str(path))
    return model, path


# ------------------------------------------------------------------------- ImageNet labels


def test_shipped_class_index_is_the_file_keras_downloads():
    data = resources.files("bigcat_ml.scoring").joinpath("resources/imagenet_class_index.json").read_bytes()
    assert hashlib.md5(data).hexdigest() == KERAS_CLASS_INDEX_MD5


def test_class_index_has_the_1000_classes_with_the_big_cats_where_keras_puts_them():
    index = class_index()
    assert sorted(index) == list(range(1000))
    cats = {i: index[i][1] for i in range(286, 294)}
    assert cats == {
        286: "cougar", 287: "lynx", 288: "leopard", 289: "snow_leopard",
        290: "jaguar", 291: "lion", 292: "tiger", 293: "cheetah",
    }
    assert index[292][0] == "n02129604"
    wnids = [index[i][0] for i in range(1000)]
    assert wnids == sorted(wnids)  # Keras orders classes by WordNet id


def test_class_names_keeps_the_shape_of_the_index_array():
    assert class_names(np.array([[292, 0], [293, 999]])).tolist() == [["tiger", "tench"], ["cheetah", "toilet_tissue"]]


def test_top_k_sorts_by_probability_and_breaks_ties_by_lower_index():
    probs = np.array([[0.1, 0.3, 0.3, 0.2, 0.1], [0.5, 0.0, 0.0, 0.0, 0.5]], np.float32)
    indices, values = top_k(probs, 3)
    assert indices.tolist() == [[1, 2, 3], [0, 4, 1]]
    np.testing.assert_allclose(values, [[0.3, 0.3, 0.2], [0.5, 0.5, 0.0]])


@pytest.mark.parametrize("k", [0, 6])
def test_top_k_refuses_k_outside_the_class_count(k):
    with pytest.raises(ValueError, match="1 <= k"):
        top_k(np.full((1, 5), 0.2), k)


def test_model_outputs_are_a_full_softmax_and_top_5_takes_part_of_it():
    probs = calibrated_mobilenet().predict_on_batch(probe_batch())
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    _, top5 = top_k(probs, 5)
    assert (top5.sum(axis=1) <= 1.0 + 1e-6).all() and (np.diff(top5, axis=1) <= 0).all()


# ---------------------------------------------------------------------------- ground truth


def bigcats(**imagenet_map) -> ClassesConfig:
    return ClassesConfig(name="cats", names=list(imagenet_map), descendants_of=[], imagenet_map=imagenet_map, families={})


BIG_CATS = {"Tiger": 292, "Lion": 291, "Cheetah": 293, "Leopard": 288, "Jaguar (Animal)": 290, "Lynx": 287}
MIDS = {"Tiger": "/m/07dm6", "Lion": "/m/096mb", "Cheetah": "/m/0cd4d", "Leopard": "/m/0c29q",
        "Jaguar (Animal)": "/m/0449p", "Lynx": "/m/04g2r", "Dog": "/m/0bt9lr", "Cat": "/m/01yrx",
        "Raccoon": "/m/0dq75", "Puma": "/m/puma"}


def _selected(*names):
    return [(MIDS[name], name) for name in names]


def test_the_big_cats_map_to_their_imagenet_classes_and_the_big_cat_family():
    truth = ground_truth_map(compose(["classes=bigcats"]).classes, _selected(*BIG_CATS))
    assert {name: t.indices for name, t in truth.items()} == {name: (index,) for name, index in BIG_CATS.items()}
    assert {t.family for t in truth.values()} == {tuple(range(286, 294))}
    assert {t.source for t in truth.values()} == {"wordnet"}


def test_dog_is_right_on_any_of_the_118_breeds_and_cat_on_the_domestic_cats():
    truth = ground_truth_map(bigcats(), _selected("Dog", "Cat"))
    assert truth["Dog"].indices == tuple(range(151, 269))
    assert truth["Cat"].indices == (281, 282, 283, 284, 285)
    # no class group names them: the family is their OID parent's (Carnivore), big cats included
    assert set(range(286, 294)) <= set(truth["Dog"].family)


def test_ground_truth_matches_names_case_insensitively_and_keeps_the_chips_spelling():
    truth = ground_truth_map(bigcats(Tiger=[292, 291], **{"Jaguar (Animal)": 290}), [("/m/x", "tiger"), ("/m/y", "JAGUAR (animal)")])
    assert {name: (t.indices, t.source) for name, t in truth.items()} == {
        "tiger": ((291, 292), "config"), "JAGUAR (animal)": ((290,), "config")}


def test_classes_without_an_imagenet_counterpart_are_unmapped_not_an_error():
    truth = ground_truth_map(bigcats(), _selected("Tiger", "Raccoon", "Puma"))
    assert [name for name, t in truth.items() if not t.mapped] == ["Raccoon", "Puma"]


def test_strict_mode_lists_every_unmapped_class():
    with pytest.raises(ValueError, match=r"\['Raccoon', 'Puma'\].*evaluate.allow_unmapped"):
        ground_truth_map(bigcats(), _selected("Tiger", "Raccoon", "Puma"), allow_unmapped=False)


@pytest.mark.parametrize("index", [-1, 1000, "292", [292, 1000]])
def test_map_entries_outside_imagenet_are_refused_naming_the_class(index):
    with pytest.raises(ValueError, match=r"imagenet_map\['Tiger'\]"):
        ground_truth_map(bigcats(Tiger=index), [("/m/07dm6", "Tiger")])


# -------------------------------------------------------------------------------- registry


def test_weights_source_names_every_kind_of_weights():
    assert [weights_source(tiny_cfg(w)) for w in ("imagenet", None, "s3://m/w.weights.h5")] == [
        "imagenet", "random-init", "file:s3://m/w.weights.h5",
    ]


def test_any_keras_application_is_found_with_its_own_preprocessing():
    application = keras_application(tiny_cfg(keras_module="resnet50", keras_class="ResNet50"))
    assert application.constructor is keras.applications.ResNet50
    assert application.preprocess_input is keras.applications.resnet50.preprocess_input


@pytest.mark.parametrize(
    "module, cls, message",
    [("mobilenett", "MobileNet", r"no module keras.applications.mobilenett.*'mobilenet_v2'"),
     ("mobilenet", "MobileNetV2", r"has no class 'MobileNetV2' \(it has \['MobileNet'\]\)")],
)
def test_unknown_model_names_are_refused_with_the_choices(module, cls, message):
    with pytest.raises(ValueError, match=message):
        keras_application(tiny_cfg(keras_module=module, keras_class=cls))


def test_random_init_is_the_same_model_in_every_build():
    first, second = build_model(tiny_cfg()), build_model(tiny_cfg())
    for a, b in zip(first.get_weights(), second.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert not all(np.array_equal(a, b) for a, b in zip(first.get_weights(), calibrated_mobilenet().get_weights()))


def test_weights_file_gives_the_saved_model_not_random_init(saved):
    model, path = saved
    cfg = tiny_cfg(str(path))
    with local_weights_file(cfg) as local:
        loaded = build_model(cfg, local).predict_on_batch(probe_batch())
    np.testing.assert_allclose(loaded, model.predict_on_batch(probe_batch()), atol=1e-6)
    assert not np.allclose(loaded, build_model(tiny_cfg()).predict_on_batch(probe_batch()), atol=1e-6)


def test_weights_uri_is_fetched_to_a_local_file_removed_afterwards(saved):
    _, path = saved
    with local_weights_file(tiny_cfg(path.as_uri())) as local:
        assert local != path and local.name == path.name and local.read_bytes() == path.read_bytes()
    assert not local.exists() and path.exists()


@pytest.mark.parametrize("as_uri", [False, True])
def test_missing_weights_file_is_refused_naming_file_and_model(tmp_path, as_uri):
    missing = tmp_path / "nope.weights.h5"
    weights = missing.as_uri() if as_uri else str(missing)
    with pytest.raises(FileNotFoundError, match=rf"model 'tiny_mobilenet': weights file {weights} does not exist"):
        with local_weights_file(tiny_cfg(weights)):
            pass


@pytest.mark.parametrize(
    "saved_model",
    [lambda: keras.applications.MobileNetV2(weights=None, input_shape=(TINY, TINY, 3)),
     lambda: keras.applications.MobileNet(weights=None, include_top=False, input_shape=(TINY, TINY, 3))],
    ids=["other-architecture", "same-backbone-without-head"],
)
def test_weights_of_another_architecture_are_refused_naming_file_and_model(tmp_path, saved_model):
    other = tmp_path / "other.weights.h5"
    saved_model().save_weights(str(other))
    with pytest.raises(ValueError, match=rf"weights file {other} does not fit model 'tiny_mobilenet' \(MobileNet\)"):
        build_model(tiny_cfg(str(other)), other)


def test_a_model_that_does_not_output_imagenet_probabilities_is_refused():
    head = keras.Sequential([keras.Input((TINY, TINY, 3)), keras.layers.Flatten(), keras.layers.Dense(10)])
    with pytest.raises(ValueError, match=r"must output 1000 class probabilities.*shape \(10,\)"):
        check_model(head, tiny_cfg())


def test_imagenet_weights_at_an_unsupported_size_fail_with_the_model_named():
    # Keras checks the input size before downloading anything: no network is touched.
    with pytest.raises(ValueError, match=r"cannot build model 'tiny_mobilenet'.*weights imagenet.*needs internet"):
        build_model(tiny_cfg("imagenet"))


# ---------------------------------------------------------------------------- preprocessing


def test_chips_are_stretched_to_the_model_input_with_their_colour_kept():
    chip = np.zeros((10, 40, 3), np.uint8)
    chip[:, :20] = (255, 0, 0)
    chip[:, 20:] = (0, 0, 255)
    resized = resize_chip(chip, 32)
    assert resized.shape == (32, 32, 3) and resized.dtype == np.uint8
    assert resized[16, 2].tolist() == [255, 0, 0] and resized[16, 29].tolist() == [0, 0, 255]


def test_model_input_applies_the_modules_own_preprocessing():
    white = np.full((8, 12, 3), 255, np.uint8)
    mobilenet = model_input([white], keras_application(tiny_cfg()), TINY)  # scales to [-1, 1]
    resnet = model_input([white], keras_application(tiny_cfg(keras_module="resnet50", keras_class="ResNet50")), TINY)
    assert mobilenet.shape == (1, TINY, TINY, 3) and np.allclose(mobilenet, 1.0)
    np.testing.assert_allclose(resnet[0, 0, 0], [255 - 103.939, 255 - 116.779, 255 - 123.68], atol=1e-3)  # BGR means


def test_bfloat16_computes_in_bfloat16_from_the_same_weights_and_keeps_a_float32_softmax(saved):
    import keras

    from bigcat_ml.scoring.models import build_model, precision_policy

    _, path = saved
    fp32 = build_model(tiny_cfg(str(path)), path)
    bf16 = build_model(tiny_cfg(str(path), precision=Precision.bfloat16), path)
    assert keras.config.dtype_policy().name == "float32"  # the global policy is restored
    assert {layer.dtype_policy.compute_dtype for layer in bf16.layers if layer.weights} == {"bfloat16"}
    np.testing.assert_array_equal(bf16.get_layer("conv1").get_weights()[0], fp32.get_layer("conv1").get_weights()[0])
    probs = np.asarray(bf16.predict_on_batch(probe_batch()))
    assert probs.dtype == np.float32 and np.allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    with precision_policy("bfloat16") as policy:
        assert policy == "mixed_bfloat16" == keras.config.dtype_policy().name


def test_an_unknown_precision_is_refused_naming_the_choices():
    from bigcat_ml.scoring.models import as_precision

    with pytest.raises(ValueError, match=r"model.precision must be one of \['float32', 'bfloat16'\]; got 'fp8'"):
        as_precision("fp8")
