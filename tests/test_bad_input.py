"""Bad input, end to end: every one ends in a clear error or in a counted reject.

The input is a generated Open Images-format sample (no built-in faults) copied and then
tampered with: image bytes replaced, files deleted, CSV rows appended or rewritten. The
image faults share one ``preprocess.run``; each file or config fault gets its own run,
which stops before any image is read. Assertions are on what a user sees: the reject
reason and detail per box, the reconciled counts, or the exception's message naming
the file, row or value and what to do.
"""
from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Tuple

import numpy as np
import pandas as pd
import pytest
from omegaconf import DictConfig
from PIL import Image, ImageOps

from helpers.runs import TINY_MODEL, cfg_for, runs

from bigcat_ml import evaluate, preprocess
from bigcat_ml.main import chain
from bigcat_ml.stepkit.preflight import MissingInputError, check_inputs
from bigcat_ml.stepkit.step import compose
from bigcat_ml.chips.crop import crop_image_boxes, decode_rgb, pixel_edges
from bigcat_ml.chips.layout import CHIPS_DIR, REJECTS_DIR
from bigcat_ml.chips.manifest import read_summary
from bigcat_ml.chips.schema import decode_chip
from bigcat_ml.synthetic.catalogue import CLASS_DESCRIPTIONS_FILE, class_descriptions
from bigcat_ml.synthetic.ground_truth import read_ground_truth
from bigcat_ml.synthetic.write import BOXES_FILE, IMAGE_LABELS_FILE, generate_sample
from bigcat_ml.oid.schemas import BOX_COLUMNS
from bigcat_ml.oid.rejects import BAD_BOX, DECODE_ERROR, MISSING_IMAGE, TOO_LARGE, TOO_SMALL

PROJECT = Path(__file__).resolve().parents[1]
MAX_PIXELS = 1_000_000  # every sample image is at most 480 x 480 pixels
BOMB_SIDE = 4000  # pixels: 16 M pixels in a few kilobytes of PNG
# Boxes appended to one image (fractions); the reason each must get.
BAD_BOXES = {
    "outside": ((0.2, 1.2, 0.1, 0.5), BAD_BOX, "got XMin=0.2 XMax=1.2"),
    "inverted": ((0.6, 0.2, 0.1, 0.5), BAD_BOX, "got XMin=0.6 XMax=0.2"),
    "zero_area": ((0.2, 0.6, 0.5, 0.5), BAD_BOX, "got YMin=0.5 YMax=0.5"),
    "tiny": ((0.5, 0.51, 0.5, 0.51), TOO_SMALL, "below preprocess.min_chip_side=16"),
}
# Image faults, given in order to the images that are neither grayscale, CMYK nor the
# EXIF-rotated one kept as it is.
FAULT_ROLES = ("corrupt", "truncated", "png", "bomb", "missing", "bad_boxes")

pytestmark = pytest.mark.spark








@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> Path:
    """The generated sample's root folder (never modified: tests tamper with copies)."""
    cfg = cfg_for(tmp_path_factory.mktemp("pristine"))
    generate_sample(Path(cfg.data.root), cfg.data.sample)
    return Path(cfg.data.root)


@pytest.fixture
def sample(pristine, tmp_path) -> Path:
    """A copy of the sample where ``cfg_for(tmp_path / "outputs")`` reads it."""
    root = Path(cfg_for(tmp_path / "outputs").data.root)
    shutil.copytree(pristine, root)
    return root


# ------------------------------------------------------------------------------ helpers


def big_cat_mids(cfg) -> Dict[str, str]:
    mids = class_descriptions()
    return {mids[name]: name for name in cfg.classes.names}


def selected_boxes(root: Path, cfg) -> pd.DataFrame:
    """Every big-cat box row of the box CSVs, with its subset (all are on positive images)."""
    frames = [
        pd.read_csv(root / BOXES_FILE.format(subset=s), dtype={"ImageID": str}).assign(Subset=s)
        for s in cfg.data.subsets
    ]
    boxes = pd.concat(frames, ignore_index=True)
    return boxes[boxes["LabelName"].isin(big_cat_mids(cfg))].reset_index(drop=True)


def image_path(root: Path, subset: str, image_id: str) -> Path:
    return root / "images" / subset / f"{image_id}.jpg"


def displayed(path: Path) -> Image.Image:
    """The image as a viewer shows it: EXIF orientation applied, RGB."""
    with Image.open(path) as image:
        return ImageOps.exif_transpose(image).convert("RGB")


def expected_chip(image: Image.Image, row, jpeg_quality: int) -> np.ndarray:
    """The box's region of ``image`` (fractions -> pixel edges), as a JPEG chip decodes."""
    left, right = pixel_edges(row.XMin, row.XMax, 0.0, image.width)
    top, bottom = pixel_edges(row.YMin, row.YMax, 0.0, image.height)
    buffer = io.BytesIO()
    image.crop((left, top, right, bottom)).save(buffer, "JPEG", quality=jpeg_quality)
    return decode_chip(buffer.getvalue())


def png_of(jpeg: bytes) -> bytes:
    buffer = io.BytesIO()
    decode_rgb(jpeg, MAX_PIXELS).save(buffer, "PNG")
    return buffer.getvalue()


def bomb() -> bytes:
    buffer = io.BytesIO()
    Image.new("1", (BOMB_SIDE, BOMB_SIDE)).save(buffer, "PNG")
    return buffer.getvalue()


def garble_scan(jpeg: bytes) -> bytes:
    """Headers intact, the middle third of the entropy-coded data replaced by noise."""
    third = len(jpeg) // 3
    return jpeg[:third] + np.random.default_rng(0).bytes(third) + jpeg[2 * third :]


def append_box_rows(root: Path, subset: str, rows: List[list]) -> None:
    path = root / BOXES_FILE.format(subset=subset)
    path.write_text(path.read_text() + "".join(",".join(map(str, r)) + "\n" for r in rows))





def assert_failed_without_output(cfg) -> None:
    """The step's MLflow run says FAILED and nothing was written at (or beside) the output."""
    assert list(runs(cfg, "preprocess")["status"]) == ["FAILED"]
    output = Path(cfg.preprocess.output)
    assert not output.parent.exists() or not [p for p in output.parent.iterdir() if p.name.startswith(output.name)]


# ---------------------------------------------------------------- image and box faults


@dataclass
class Tampered:
    cfg: DictConfig
    boxes: pd.DataFrame  # the selected boxes after tampering, with their Subset
    roles: Dict[str, str]  # role -> ImageID
    originals: Dict[str, bytes]  # ImageID -> the JPEG bytes before tampering
    summary: dict
    chips: pd.DataFrame
    rejects: pd.DataFrame
    cached_rdds: Tuple[int, int]  # in the Spark session before and after the run

    def boxes_of(self, role: str) -> pd.DataFrame:
        return self.boxes[self.boxes["ImageID"] == self.roles[role]]

    def chips_of(self, role: str) -> pd.DataFrame:
        return self.chips[self.chips["ImageID"] == self.roles[role]].sort_values(["XMin", "YMin"])

    def rejects_of(self, role: str) -> pd.DataFrame:
        return self.rejects[self.rejects["ImageID"] == self.roles[role]]


@pytest.fixture(scope="module")
def tampered(pristine, spark, tmp_path_factory) -> Tampered:
    """One preprocess run over a sample holding every image and box fault at once."""
    out = tmp_path_factory.mktemp("tampered") / "outputs"
    cfg = cfg_for(out, f"preprocess.max_image_pixels={MAX_PIXELS}")
    root = Path(cfg.data.root)
    shutil.copytree(pristine, root)
    truth = read_ground_truth(root)
    boxes = selected_boxes(root, cfg)
    subset_of = dict(zip(boxes["ImageID"], boxes["Subset"]))
    with_boxes = sorted(subset_of)
    keep = {
        "grayscale": next(i for i in truth["grayscale"] if i in subset_of),
        "cmyk": next(i for i in truth["cmyk"] if i in subset_of),
        "exif": next(i for i in sorted(truth["exif_orientation"]) if i in subset_of),
    }
    others = [i for i in with_boxes if i not in keep.values()]
    roles = {**keep, **dict(zip(FAULT_ROLES, others))}
    assert len(roles) == len(keep) + len(FAULT_ROLES), "the sample has too few images for every fault"
    path = {role: image_path(root, subset_of[i], i) for role, i in roles.items()}
    originals = {i: path[role].read_bytes() for role, i in roles.items()}

    path["corrupt"].write_bytes(garble_scan(originals[roles["corrupt"]]))
    path["truncated"].write_bytes(originals[roles["truncated"]][: len(originals[roles["truncated"]]) // 2])
    path["png"].write_bytes(png_of(originals[roles["png"]]))
    path["bomb"].write_bytes(bomb())
    path["missing"].unlink()
    host = boxes[boxes["ImageID"] == roles["bad_boxes"]].iloc[0]
    appended = [[host.ImageID, "xclick", host.LabelName, 1, *coords, 0, 0, 0, 0, 0] for coords, _, _ in BAD_BOXES.values()]
    append_box_rows(root, host.Subset, appended)

    cached_before = cached_rdds(spark)
    summary = preprocess.run(cfg)["summary"]
    output = Path(cfg.preprocess.output)
    return Tampered(
        cfg=cfg,
        boxes=selected_boxes(root, cfg),
        roles=roles,
        originals=originals,
        summary=summary,
        chips=pd.read_parquet(output / CHIPS_DIR),
        rejects=pd.read_parquet(output / REJECTS_DIR),
        cached_rdds=(cached_before, cached_rdds(spark)),
    )


def cached_rdds(spark) -> int:
    return int(spark.sparkContext._jsc.getPersistentRDDs().size())


def test_every_selected_box_is_a_chip_or_a_reject_and_the_counts_reconcile(tampered):
    t = tampered
    boxes_on = {role: len(t.boxes_of(role)) for role in t.roles}
    expected = Counter(reason for _, reason, _ in BAD_BOXES.values())
    expected.update({
        DECODE_ERROR: boxes_on["corrupt"] + boxes_on["truncated"],
        TOO_LARGE: boxes_on["bomb"],
        MISSING_IMAGE: boxes_on["missing"],
    })
    assert t.summary["selected_boxes"] == len(t.boxes)
    assert t.summary["rejects_by_reason"] == dict(sorted(expected.items()))
    assert t.summary["rejects"] == len(t.rejects) == sum(expected.values())
    assert t.summary["chips"] == len(t.chips) == len(t.boxes) - sum(expected.values())
    assert t.summary["selected_boxes"] == t.summary["chips"] + t.summary["rejects"]
    assert t.rejects["detail"].notna().all()


def test_preprocess_releases_every_frame_it_cached(tampered):
    before, after = tampered.cached_rdds
    assert after == before


def test_a_jpeg_with_garbled_scan_data_is_a_decode_error_with_pillows_reason(tampered):
    rejects = tampered.rejects_of("corrupt")
    assert len(rejects) == len(tampered.boxes_of("corrupt")) >= 1
    assert set(rejects["reason"]) == {DECODE_ERROR}
    assert rejects["detail"].str.startswith("OSError: broken data stream").all()


def test_a_truncated_jpeg_is_a_decode_error_saying_truncated(tampered):
    rejects = tampered.rejects_of("truncated")
    assert len(rejects) == len(tampered.boxes_of("truncated")) >= 1
    assert set(rejects["reason"]) == {DECODE_ERROR}
    assert rejects["detail"].str.contains("truncated").all()


def test_png_bytes_under_a_jpg_name_give_the_chips_of_the_jpeg_they_were_made_from(tampered):
    boxes = tampered.boxes_of("png").sort_values(["XMin", "YMin"])
    original = tampered.originals[tampered.roles["png"]]
    expected = crop_image_boxes(original, boxes.to_dict("records"), 0.0, 16, 90, MAX_PIXELS)
    chips = tampered.chips_of("png")
    assert tampered.rejects_of("png").empty
    assert len(chips) == len(expected) >= 1
    for chip, want in zip(chips["chip"], expected):
        np.testing.assert_array_equal(decode_chip(chip), decode_chip(want.chip))


@pytest.mark.parametrize("role", ["grayscale", "cmyk"])
def test_grayscale_and_cmyk_images_give_rgb_chips_of_their_boxes(tampered, pristine, role):
    image_id = tampered.roles[role]
    boxes = tampered.boxes_of(role).sort_values(["XMin", "YMin"])
    source = displayed(image_path(pristine, boxes["Subset"].iloc[0], image_id))
    chips = tampered.chips_of(role)
    assert tampered.rejects_of(role).empty and len(chips) == len(boxes) >= 1
    for chip, box in zip(chips["chip"], boxes.itertuples()):
        pixels = decode_chip(chip)
        assert pixels.ndim == 3 and pixels.shape[2] == 3
        np.testing.assert_array_equal(pixels, expected_chip(source, box, tampered.cfg.preprocess.jpeg_quality))
        if role == "grayscale":
            assert (pixels.max(axis=2) - pixels.min(axis=2)).max() <= 1


def test_an_exif_rotated_image_is_cropped_as_displayed(tampered, pristine):
    image_id = tampered.roles["exif"]
    boxes = tampered.boxes_of("exif").sort_values(["XMin", "YMin"])
    path = image_path(pristine, boxes["Subset"].iloc[0], image_id)
    with Image.open(path) as stored:
        stored_size = stored.size
    upright = displayed(path)
    assert upright.size == stored_size[::-1]  # rotated by 90 degrees: the sizes swap
    chips = tampered.chips_of("exif")
    assert len(chips) == len(boxes) >= 1
    for chip in chips.itertuples():
        assert (chip.image_width, chip.image_height) == upright.size
    for chip, box in zip(chips["chip"], boxes.itertuples()):
        expected = expected_chip(upright, box, tampered.cfg.preprocess.jpeg_quality)
        np.testing.assert_array_equal(decode_chip(chip), expected)


def test_an_image_over_max_image_pixels_is_too_large_naming_its_size(tampered):
    rejects = tampered.rejects_of("bomb")
    assert len(rejects) == len(tampered.boxes_of("bomb")) >= 1
    assert set(rejects["reason"]) == {TOO_LARGE}
    assert (
        rejects["detail"]
        == f"image is {BOMB_SIDE}x{BOMB_SIDE} = {BOMB_SIDE**2} pixels, over preprocess.max_image_pixels={MAX_PIXELS}"
    ).all()


def test_a_missing_image_file_is_a_missing_image_reject_naming_the_file(tampered):
    rejects = tampered.rejects_of("missing")
    subset = tampered.boxes_of("missing")["Subset"].iloc[0]
    name = f"{tampered.roles['missing']}.jpg"
    assert len(rejects) == len(tampered.boxes_of("missing")) >= 1
    assert set(rejects["reason"]) == {MISSING_IMAGE}
    assert rejects["detail"].str.startswith(f"no image file {name} (any case) in data.images_dirs").all()
    assert rejects["detail"].str.endswith(f"for subset {subset}").all()


@pytest.mark.parametrize("kind", list(BAD_BOXES))
def test_invalid_boxes_are_rejected_naming_their_values_while_the_good_box_is_a_chip(tampered, kind):
    (xmin, xmax, ymin, ymax), reason, named = BAD_BOXES[kind]
    rejects = tampered.rejects_of("bad_boxes")
    mine = rejects[(rejects["XMin"] == xmin) & (rejects["XMax"] == xmax) & (rejects["YMin"] == ymin) & (rejects["YMax"] == ymax)]
    assert list(mine["reason"]) == [reason]
    assert named in mine["detail"].iloc[0]
    assert len(tampered.chips_of("bad_boxes")) == len(tampered.boxes_of("bad_boxes")) - len(BAD_BOXES)


# ------------------------------------------------------------------ file and config faults


def test_a_malformed_csv_row_fails_naming_the_file_and_the_row(sample, tmp_path, spark):
    cfg = cfg_for(tmp_path / "outputs")
    labels = sample / IMAGE_LABELS_FILE.format(subset="validation")
    tiger = next(mid for mid, name in big_cat_mids(cfg).items() if name == "Tiger")
    labels.write_text(labels.read_text() + f"0123abcd,verification,{tiger},yes\n")
    with pytest.raises(ValueError) as error:
        preprocess.run(cfg)
    message = str(error.value)
    assert message.startswith(f"1 malformed row(s) in {labels}: ")
    assert f"{labels}: '0123abcd,verification,{tiger},yes'" in message
    assert "fix or remove them" in message
    assert_failed_without_output(cfg)


def test_a_csv_with_a_wrong_header_fails_naming_the_missing_column_and_the_header(sample, tmp_path, spark):
    cfg = cfg_for(tmp_path / "outputs")
    boxes = sample / BOXES_FILE.format(subset="test")
    lines = boxes.read_text().splitlines(keepends=True)
    header = ["Xmin" if c == "XMin" else c for c in BOX_COLUMNS]
    boxes.write_text(",".join(header) + "\n" + "".join(lines[1:]))
    with pytest.raises(ValueError) as error:
        preprocess.run(cfg)
    assert str(error.value).startswith(f"{boxes}: missing column(s) ['XMin']; header found: {header}")
    assert_failed_without_output(cfg)


@pytest.mark.parametrize(
    "typed, suggested",
    [
        ("Cheeta", "Cheetah"),
        ("Jagur", "Jaguar (Animal)"),
    ],
)
def test_an_unknown_class_name_fails_suggesting_the_closest_name(sample, tmp_path, spark, typed, suggested):
    cfg = cfg_for(tmp_path / "outputs", f"classes.names=[Tiger,{typed}]")
    with pytest.raises(ValueError) as error:
        preprocess.run(cfg)
    read = f"{cfg.data.root}/{CLASS_DESCRIPTIONS_FILE}"  # the first candidate that exists
    assert str(error.value) == f"class '{typed}' not found in {read}; did you mean '{suggested}'?"
    assert_failed_without_output(cfg)


def run_entry_point(step: str, out: Path, *overrides: str) -> subprocess.CompletedProcess:
    """``python -m bigcat_ml.<step>`` writing under ``out``, with neither a tracking store nor OID_ROOT exported."""
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "OID_ROOT")}
    return subprocess.run(
        [sys.executable, "-m", f"bigcat_ml.{step}", f"paths.output_dir={out}", *overrides],
        cwd=PROJECT, env=env, capture_output=True, text=True, timeout=300,
    )


def test_a_config_value_of_the_wrong_type_fails_before_spark_or_mlflow_start(tmp_path):
    out = tmp_path / "outputs"
    done = run_entry_point("preprocess", out, "preprocess.min_chip_side=big")
    assert done.returncode == 1
    assert "Value 'big' of type 'str' could not be converted to Integer" in done.stderr
    assert "full_key: preprocess.min_chip_side" in done.stderr
    assert "SparkContext" not in done.stderr
    assert not out.exists()  # no MLflow store, no dataset: the step never began


def test_a_misspelt_plus_key_and_a_zero_batch_size_stop_main_before_spark_or_mlflow_start(tmp_path):
    out = tmp_path / "outputs"
    done = run_entry_point("main", out, "+model.wieghts=null", "evaluate.batch_size=0")
    assert done.returncode == 1
    assert "2 bad config value(s)" in done.stderr
    assert "model.wieghts: not a setting of this project; did you mean model.weights?" in done.stderr
    assert "evaluate.batch_size=0: must be >= 1" in done.stderr
    assert "SparkContext" not in done.stderr
    assert not (out / "mlflow").exists() and not (out / "data").exists()  # no run, no sample: nothing began


def test_data_oid_without_oid_root_stops_main_listing_every_missing_input_and_how_to_set_oid_root(tmp_path):
    out = tmp_path / "outputs"
    done = run_entry_point("main", out, "data=oid", "model.weights=/nonexistent.h5")
    assert done.returncode == 1
    for key in ("data.class_descriptions", *(f"data.{kind}.{s}" for kind in ("image_labels", "boxes") for s in ("train", "validation", "test"))):
        assert f"\n  {key}: no file at /data/open-images-v6/" in done.stderr
    assert "data.root is /data/open-images-v6, the default used when OID_ROOT is not set: `export OID_ROOT=" in done.stderr
    assert "model.weights=/nonexistent.h5: no such file (model 'mobilenet')" in done.stderr
    assert "sample_data" not in done.stderr
    assert "SparkContext" not in done.stderr and not (out / "mlflow").exists()


def test_an_empty_oid_folder_is_reported_with_every_missing_file_its_key_and_the_names_tried(tmp_path):
    root = tmp_path / "oid"
    root.mkdir()
    cfg = compose([f"paths.output_dir={tmp_path}/outputs", "data=oid", f"data.root={root}", "data.subsets=[train,test]"])
    with pytest.raises(MissingInputError) as error:
        check_inputs(cfg, "preprocess")
    message = str(error.value)
    assert f"\n  data.boxes.train: no file at {root}/oidv6-train-annotations-bbox.csv nor {root}/train-annotations-bbox.csv" in message
    assert message.count(": no file at ") == 5  # descriptions, and labels and boxes of both subsets
    assert f"for the 5 missing OID file(s): check data.root={root} and the data.* file settings" in message
    assert "sample_data" not in message


def test_main_does_not_ask_for_inputs_an_earlier_step_of_the_chain_writes(tmp_path):
    cfg = cfg_for(tmp_path / "outputs", "model.weights=null", "train.in_main=true")
    check_inputs(cfg, "main", [step.name for step in chain(cfg)])  # sample_data writes the OID files, preprocess the chips train and evaluate read
    with pytest.raises(MissingInputError, match=f"evaluate.dataset={cfg.evaluate.dataset}: no chip dataset there"):
        check_inputs(cfg, "evaluate")


def test_a_missing_weights_file_is_found_before_sample_data_and_preprocess_run(tmp_path):
    cfg = cfg_for(tmp_path / "outputs", "model.weights=/nonexistent.h5")
    with pytest.raises(MissingInputError) as error:
        check_inputs(cfg, "main", [step.name for step in chain(cfg)])
    assert str(error.value) == (
        "main: inputs missing or wrong, nothing was started:\n  model.weights=/nonexistent.h5: no such file "
        "(model 'mobilenet'); set model.weights to an existing path or URI, to 'imagenet', or to null for random initialisation"
    )


def test_an_unknown_class_name_is_found_before_spark_starts_with_the_closest_name(sample, tmp_path):
    cfg = cfg_for(tmp_path / "outputs", "classes.names=[Tiger,Jagur]", "classes.descendants_of=[Carnivor]")
    with pytest.raises(MissingInputError) as error:
        check_inputs(cfg, "preprocess")
    read = f"{cfg.data.root}/{CLASS_DESCRIPTIONS_FILE}"
    assert f"\n  classes.names: class 'Jagur' not found in {read}; did you mean 'Jaguar (Animal)'?" in str(error.value)
    assert f"\n  classes.descendants_of: class 'Carnivor' not found in {read}; did you mean 'Carnivore'?" in str(error.value)


def test_an_output_under_a_regular_file_is_refused_naming_it(sample, tmp_path, spark):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    cfg = cfg_for(tmp_path / "outputs", f"preprocess.output={blocker}/chips")
    with pytest.raises(PermissionError) as error:
        preprocess.run(cfg)
    message = str(error.value)
    assert message.startswith(f"cannot write next to {blocker}/chips")
    assert message.endswith("choose a writable preprocess.output")
    assert list(runs(cfg, "preprocess")["status"]) == ["FAILED"]
    assert blocker.read_text() == "not a folder"


def test_an_existing_output_is_refused_without_overwrite_and_kept(tampered):
    output = tampered.cfg.preprocess.output
    with pytest.raises(FileExistsError) as error:
        preprocess.run(tampered.cfg)
    assert str(error.value) == (
        f"chip dataset {output} already exists; set preprocess.overwrite=true to replace it "
        "or choose another preprocess.output"
    )
    assert read_summary(output) == tampered.summary
    assert list(runs(tampered.cfg, "preprocess")["status"]).count("FAILED") == 1


# -------------------------------------------------------------------------- evaluate faults


def test_a_missing_weights_file_fails_naming_the_file_and_the_model(tampered, tmp_path, spark):
    missing = tmp_path / "gone.weights.h5"
    cfg = cfg_for(tmp_path / "outputs", *TINY_MODEL, f"model.weights='{missing}'", f"evaluate.dataset={tampered.cfg.preprocess.output}")
    with pytest.raises(FileNotFoundError) as error:
        evaluate.run(cfg)
    assert str(error.value).startswith(f"model 'tiny_mobilenet': weights file {missing} does not exist; set model.weights")
    assert list(runs(cfg, "evaluate")["status"]) == ["FAILED"]


@pytest.mark.filterwarnings("ignore:Skipping nested container")
def test_weights_of_another_model_fail_naming_the_file_and_the_model(tampered, tmp_path, spark):
    import keras

    other = tmp_path / "mobilenet_v2.weights.h5"
    keras.applications.MobileNetV2(weights=None, input_shape=(32, 32, 3)).save_weights(str(other))
    cfg = cfg_for(tmp_path / "outputs", *TINY_MODEL, f"model.weights='{other}'", f"evaluate.dataset={tampered.cfg.preprocess.output}")
    with pytest.raises(ValueError) as error:
        evaluate.run(cfg)
    assert str(error.value).startswith(
        f"weights file {other} does not fit model 'tiny_mobilenet' (MobileNet): was it saved from another architecture?"
    )
    assert list(runs(cfg, "evaluate")["status"]) == ["FAILED"]


def test_evaluating_a_folder_that_is_not_a_chip_dataset_fails_naming_it(tmp_path):
    folder = tmp_path / "not_a_dataset"
    folder.mkdir()
    cfg = cfg_for(tmp_path / "outputs", *TINY_MODEL, f"evaluate.dataset={folder}")
    with pytest.raises(FileNotFoundError, match=rf"evaluate.dataset={folder}: no chip dataset there \(no summary.json\)"):
        evaluate.run(cfg)
