"""``make bench-scale``: preprocessing on Open Images V6-sized metadata, against DuckDB.

Generates (once, into ``--data-dir``, reused while the sizes match) the V6 file layout:
``oidv6-train-annotations-bbox.csv`` with XClick columns, ``validation-``/``test-`` box
files, the V6 image-level label files, the class descriptions and the hierarchy; a train
image folder of ``--listing-files`` empty files beside real JPEGs for every image that
carries a big-cat box. Then it measures, each with the peak RSS of driver, JVM and workers:

1. the listing the pipeline no longer does (Spark's binaryFile listing of the train folder);
2. a first preprocess run (CSV parse + conversion to the Parquet cache + selection + chips),
   then its parts apart: the CSV parse alone, and the same run again from the cache;
3. a second selection of other classes from the Parquet cache: the whole step, and the
   selection alone (the boxes kept, what DuckDB counts);
4. DuckDB (``pip install .[bench]``; 2 threads) on the same second selection from the CSVs,
   the single-machine anchor a user would otherwise pick.

Full size (15.9 M box rows, 11.2 M image-label rows, 1,743,042 files) is the default;
``--scale`` shrinks everything for a run that fits a shorter time.
"""
from __future__ import annotations

import argparse
import json
import logging
import shutil
import time
from pathlib import Path
from typing import Any, Dict, List

import numpy as np
import pandas as pd

from benchmarks.checkpoint import Checkpoint
from benchmarks.environment import machine, versions
from benchmarks.monitor import ResourceMonitor
from bigcat_ml.oid import files
from bigcat_ml.oid.schemas import BOX_FLAGS, IMAGE_LABEL_COLUMNS
from bigcat_ml.synthetic import catalogue, render

log = logging.getLogger(__name__)

RESULTS = Path(__file__).resolve().parent / "results"
FULL = {"box_rows": 15_900_000, "label_rows": 11_200_000, "listing_files": 1_743_042, "bigcat_boxes": 6_156, "bigcat_images": 3_939}
XCLICK = ("XClick1X", "XClick2X", "XClick3X", "XClick4X", "XClick1Y", "XClick2Y", "XClick3Y", "XClick4Y")
SUBSET_SHARE = {"train": 0.92, "validation": 0.02, "test": 0.06}
FIRST_CLASSES = ["Tiger", "Lion", "Cheetah", "Leopard", "Jaguar (Animal)", "Lynx"]
# Every other class's generated rows are filler (millions of boxes each, on empty image
# files), so a realistic second selection (a few thousand boxes, as a real class has) is
# another set among the big cats' boxes, read from the Parquet cache the first run made.
SECOND_CLASSES = ["Lion", "Cheetah"]
# The stages that run the pipeline (the listing and DuckDB are references).
PREPROCESS_STAGES = ("first_run", "csv_parse", "first_from_cache", "second_selection", "second_selection_only")
# Bumped when the generated files change, so that an older generation is not reused.
GENERATOR = 2


def _sizes(scale: float) -> Dict[str, int]:
    return {k: max(1, int(v * scale)) for k, v in FULL.items()}


def _ids(rng: np.random.Generator, n: int) -> np.ndarray:
    return np.array([f"{v:016x}" for v in rng.integers(0, 2**63, n)])


def _box_rows(rng: np.random.Generator, image_ids: np.ndarray, labels: np.ndarray, xclick: bool) -> pd.DataFrame:
    """Box rows with their own random coordinates (repeated ones would be duplicate boxes)."""
    n = len(image_ids)
    x_min, y_min = rng.uniform(0, 0.7, n).round(6), rng.uniform(0, 0.7, n).round(6)
    rows = pd.DataFrame({
        "ImageID": image_ids, "Source": "xclick", "LabelName": labels, "Confidence": 1,
        "XMin": x_min, "XMax": (x_min + rng.uniform(0.05, 0.3, n)).round(6),
        "YMin": y_min, "YMax": (y_min + rng.uniform(0.05, 0.3, n)).round(6),
        **{flag: 0 for flag in BOX_FLAGS},
    })
    for column in XCLICK if xclick else ():
        rows[column] = (rows["XMin"] if column.endswith("X") else rows["YMin"]).to_numpy()
    return rows


def generate(root: Path, sizes: Dict[str, int], seed: int = 0) -> None:
    """The V6 files at ``sizes``; a marker with the sizes and :data:`GENERATOR` marks a
    complete generation for reuse.

    Every big-cat box lies on a big-cat image with its own coordinates and one of the six
    classes, and every (image, class) of those boxes has a positive human-verified label,
    as in the real files: so any subset of the big cats is a real selection.
    """
    marker = root / "sizes.json"
    wanted = {**sizes, "generator": GENERATOR}
    previous = json.loads(marker.read_text()) if marker.exists() else {}
    if previous == wanted:
        log.info("reusing %s", root)
        return
    marker.unlink(missing_ok=True)
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    mids = catalogue.class_descriptions()
    (root / files.HIERARCHY).write_bytes(catalogue.sample_hierarchy_bytes())
    (root / catalogue.CLASS_DESCRIPTIONS_FILE).write_bytes(catalogue.resource_bytes(catalogue.CLASS_DESCRIPTIONS_FILE))
    bigcats = np.array([mids[n] for n in FIRST_CLASSES])
    common = np.array([m for n, m in mids.items() if n not in FIRST_CLASSES])
    cat_images = _ids(rng, sizes["bigcat_images"])
    pool = _ids(rng, max(sizes["listing_files"], 1))
    for subset, share in SUBSET_SHARE.items():
        n_boxes, n_labels = int(sizes["box_rows"] * share), int(sizes["label_rows"] * share)
        if subset == "train":  # every big-cat image carries at least one box
            cat_ids = np.concatenate([cat_images, rng.choice(cat_images, max(sizes["bigcat_boxes"] - len(cat_images), 0))])
        else:
            cat_ids = cat_images[:0]
        cat_boxes = _box_rows(rng, cat_ids, rng.choice(bigcats, len(cat_ids)), subset == "train")
        filler = _box_rows(rng, rng.choice(pool, n_boxes - len(cat_ids)), rng.choice(common, n_boxes - len(cat_ids)), subset == "train")
        name = "oidv6-train-annotations-bbox.csv" if subset == "train" else f"{subset}-annotations-bbox.csv"
        pd.concat([cat_boxes, filler]).to_csv(root / name, index=False)
        positives = cat_boxes[["ImageID", "LabelName"]].drop_duplicates()
        labels = pd.concat([
            positives,
            pd.DataFrame({"ImageID": rng.choice(pool, n_labels - len(positives)), "LabelName": rng.choice(common, n_labels - len(positives))}),
        ])
        labels.insert(1, "Source", "verification")
        labels["Confidence"] = 1
        name = "oidv6-train-annotations-human-imagelabels.csv" if subset == "train" else f"{subset}-annotations-human-imagelabels.csv"
        labels[list(IMAGE_LABEL_COLUMNS)].to_csv(root / name, index=False)
    # The folder's file names depend on the sizes and the seed only: a folder of the same
    # sizes is rewritten in place rather than removed (1.7 M files take minutes either way).
    train = root / "train"
    if train.exists() and {k: previous.get(k) for k in sizes} != sizes:
        shutil.rmtree(train)
    train.mkdir(exist_ok=True)
    # OID's size (1024 px on the long side), so that boxes of 5-30 % make real chips
    picture = render.encode_jpeg(np.full((768, 1024, 3), 120, np.uint8), "RGB", 1, 85)
    for image_id in cat_images:
        (train / f"{image_id}.jpg").write_bytes(picture)
    for image_id in pool[: sizes["listing_files"] - len(cat_images)]:
        (train / f"{image_id}.jpg").touch()
    marker.write_text(json.dumps(wanted))


def _timed(label: str, run) -> Dict[str, Any]:
    with ResourceMonitor(pss=True) as monitor:
        start = time.perf_counter()
        value = run()
        seconds = time.perf_counter() - start
    usage = monitor.usage.as_dict()
    log.info("%s: %.1f s, peak %.0f MiB (PSS %.0f MiB)", label, seconds, usage["peak_total_mb"], usage["peak_total_pss_mb"])
    return {"seconds": round(seconds, 2), "memory": usage, "value": value}


def _cfg(root: Path, out: Path, classes: List[str], cache: Path):
    from bigcat_ml.stepkit.step import compose

    return compose([
        "data=oid", f"data.root={root}", f"data.csv_cache={cache}", f"paths.output_dir={out}",
        "classes.names=[" + ",".join(f"'{c}'" for c in classes) + "]", "classes.descendants_of=[]",
        f"preprocess.output={out}/chips-{len(classes)}", "preprocess.overwrite=true",
    ])


def _preprocess(spark, root: Path, out: Path, classes: List[str], cache: Path) -> Dict[str, Any]:
    """The whole step, as ``python -m bigcat_ml.preprocess`` runs it."""
    from bigcat_ml.chips.build import build_chip_dataset
    from bigcat_ml.chips.summary import ChipSummary

    cfg = _cfg(root, out, classes, cache)
    summary = ChipSummary.from_dict(build_chip_dataset(spark, cfg.data, cfg.classes, cfg.preprocess, reuse_check=cfg.reuse_check).summary)
    return {"selected_boxes": summary.selected_boxes, "chips": summary.chips, "rejects": summary.rejects,
            "rejects_by_reason": summary.rejects_by_reason}


def _parse_csvs(spark, root: Path, out: Path, cache: Path) -> int:
    """The first run's CSV parse alone: every box and label file converted to a fresh cache."""
    from bigcat_ml.oid import csv_cache
    from bigcat_ml.oid.readers import subset_files
    from bigcat_ml.oid.schemas import BOXES_SCHEMA, IMAGE_LABELS_SCHEMA

    data = _cfg(root, out, FIRST_CLASSES, cache).data
    sources = [(subset_files(data.boxes, data.subsets, "boxes"), BOXES_SCHEMA),
               (subset_files(data.image_labels, data.subsets, "image_labels"), IMAGE_LABELS_SCHEMA)]
    try:
        return sum(csv_cache.read_subsets_cached(spark, files, schema, str(cache)).count() for files, schema in sources)
    finally:
        shutil.rmtree(cache, ignore_errors=True)


def _select(spark, root: Path, out: Path, classes: List[str], cache: Path) -> int:
    """The selection alone, from the Parquet cache: the boxes kept, what DuckDB counts."""
    from bigcat_ml.oid.classes import load_selected_classes
    from bigcat_ml.oid.selection import load_selected_boxes, read_selected_labels

    cfg = _cfg(root, out, classes, cache)
    selected = load_selected_classes(spark, cfg.data, cfg.classes)
    labels = read_selected_labels(spark, cfg.data, selected)
    chosen = load_selected_boxes(spark, cfg.data, cfg.preprocess, selected, labels)
    try:
        return chosen.boxes.count()
    finally:
        for frame in (labels, chosen.boxes, chosen.dropped):
            frame.unpersist()


def _listing(spark, folder: Path) -> int:
    return spark.read.format("binaryFile").option("pathGlobFilter", "*.jpg").load(str(folder)).select("path").count()


def _duckdb(root: Path, classes: List[str]) -> int:
    import duckdb

    mids = catalogue.class_descriptions()
    wanted = ", ".join(f"'{mids[c]}'" for c in classes)
    con = duckdb.connect()
    con.execute("SET threads TO 2")
    labels = " UNION ALL ".join(f"SELECT ImageID, LabelName FROM read_csv_auto('{p}') WHERE LabelName IN ({wanted}) AND Confidence >= 1"
                                for p in sorted(root.glob("*annotations-human-imagelabels.csv")))
    boxes = " UNION ALL ".join(f"SELECT ImageID, LabelName FROM read_csv_auto('{p}') WHERE LabelName IN ({wanted})"
                               for p in sorted(root.glob("*annotations-bbox.csv")))
    # a box is kept when its own class is positive on its image, as the pipeline's filter does
    return con.execute(
        f"SELECT count(*) FROM ({boxes}) b SEMI JOIN ({labels}) l ON b.ImageID = l.ImageID AND b.LabelName = l.LabelName"
    ).fetchone()[0]


def _ratios(result: Dict[str, Any]) -> Dict[str, float]:
    """The targets' ratios, from the stages that ran."""
    seconds = {name: result[name]["seconds"] for name in (*PREPROCESS_STAGES, "duckdb_second_selection") if name in result}
    ratios: Dict[str, float] = {}
    if {"first_run", "csv_parse", "first_from_cache"} <= set(seconds):
        ratios["first_over_parse_plus_chip_work"] = round(seconds["first_run"] / (seconds["csv_parse"] + seconds["first_from_cache"]), 2)
    for name in ("second_selection", "second_selection_only"):
        if {name, "duckdb_second_selection"} <= set(seconds):
            ratios[f"{name}_over_duckdb"] = round(seconds[name] / seconds["duckdb_second_selection"], 2)
    ran = [result[name]["memory"] for name in PREPROCESS_STAGES if name in result]
    if ran:
        ratios["peak_total_mb_max"] = max(m["peak_total_mb"] for m in ran)
        ratios["peak_total_pss_mb_max"] = max(m["peak_total_pss_mb"] for m in ran)
    return ratios


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the V6 sizes (1.0 = full size)")
    parser.add_argument("--data-dir", type=Path, default=Path("outputs/bench_scale"), help="generated once, reused")
    parser.add_argument("--resume", action="store_true", help="keep the stages an interrupted run of the same sizes finished")
    parser.add_argument("--results-dir", type=Path, default=RESULTS, help="where scale-<scale>.json goes")
    parser.add_argument("--stages", nargs="*", default=[], metavar="STAGE",
                        help="run only these stages, in this order (default: all), e.g. first_run")
    parser.add_argument("--spark", nargs="*", default=[], metavar="OVERRIDE",
                        help="Hydra overrides of the spark config, e.g. spark.conf.spark.driver.memory=2g")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    sizes = _sizes(args.scale)
    root, out = args.data_dir.resolve() / "oid", args.data_dir.resolve() / "runs"
    generated = _timed("generate", lambda: generate(root, sizes))
    from bigcat_ml.stepkit.step import compose
    from bigcat_ml.runtime.spark import get_spark

    spark = get_spark(compose(args.spark).spark)
    cache = out / "csv_cache"
    checkpoint = Checkpoint(args.data_dir.resolve() / "partial.json", {"sizes": sizes, "generator": GENERATOR}, args.resume)
    if "first_run" not in checkpoint.stages and cache.exists():
        shutil.rmtree(cache)

    stages = {
        "listing_not_done": lambda: _listing(spark, root / "train"),
        "first_run": lambda: _preprocess(spark, root, out, FIRST_CLASSES, cache),
        # the first run's two parts, timed apart: its CSV parse and its selection + chip work
        "csv_parse": lambda: _parse_csvs(spark, root, out, out / "csv_parse_only"),
        "first_from_cache": lambda: _preprocess(spark, root, out, FIRST_CLASSES, cache),
        "second_selection": lambda: _preprocess(spark, root, out, SECOND_CLASSES, cache),
        "second_selection_only": lambda: _select(spark, root, out, SECOND_CLASSES, cache),
        "duckdb_second_selection": lambda: _duckdb(root, SECOND_CLASSES),
    }
    unknown = sorted(set(args.stages) - set(stages))
    if unknown:
        raise SystemExit(f"--stages: no stage named {unknown}; the stages are: {', '.join(stages)}")
    for name in args.stages or stages:
        checkpoint.stage(name, lambda: _timed(name, stages[name]))
    result: Dict[str, Any] = {**checkpoint.identity, **checkpoint.stages, "scale": args.scale, "spark_overrides": args.spark, "machine": machine(), "versions": versions(),
                              "generate_s": generated["seconds"]}
    spark.stop()
    result["ratios"] = _ratios(result)
    args.results_dir.mkdir(parents=True, exist_ok=True)
    path = args.results_dir / f"scale-{args.scale:g}.json"
    path.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(json.dumps({k: result[k] for k in ("sizes", "ratios")}, indent=1))
    print(" | ".join(f"{name} {result[name]['seconds']} s" for name in stages if name in result), "->", path)


if __name__ == "__main__":
    main()
