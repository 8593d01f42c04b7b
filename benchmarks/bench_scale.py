"""``make bench-scale``: preprocessing on Open Images V6-sized metadata, against DuckDB.

Generates (once, into ``--data-dir``, reused while the sizes match) the V6 file layout:
``oidv6-train-annotations-bbox.csv`` with XClick columns, ``validation-``/``test-`` box
files, the V6 image-level label files, the class descriptions and the hierarchy; a train
image folder of ``--listing-files`` empty files beside real JPEGs for every image that
carries a big-cat box. Then it measures, each with the peak RSS of driver, JVM and workers:

1. the listing the pipeline no longer does (Spark's binaryFile listing of the train folder);
2. a first preprocess run (CSV parse + conversion to the Parquet cache + chip work);
3. a second selection of other classes (reads the Parquet cache);
4. DuckDB (``pip install .[bench]``; 2 threads) on the same second selection from the CSVs,
   the single-machine anchor a user would otherwise pick.

Full size (15.9 M box rows, 11.2 M image-label rows, 1,743,042 files) is the default;
``--scale`` shrinks everything for a run that fits a shorter time.
"""
from __future__ import annotations

import argparse
import csv
import json
import logging
import os
import time
from pathlib import Path
from typing import Any, Dict, List

import numpy as np

from benchmarks.environment import machine, versions
from benchmarks.monitor import ResourceMonitor
from bigcat_ml.oid import files
from bigcat_ml.oid.schemas import BOX_COLUMNS, IMAGE_LABEL_COLUMNS
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


def _sizes(scale: float) -> Dict[str, int]:
    return {k: max(1, int(v * scale)) for k, v in FULL.items()}


def _ids(rng: np.random.Generator, n: int) -> np.ndarray:
    return np.array([f"{v:016x}" for v in rng.integers(0, 2**63, n)])


def generate(root: Path, sizes: Dict[str, int], seed: int = 0) -> None:
    """The V6 files at ``sizes``; a ``sizes.json`` marks a complete generation for reuse."""
    marker = root / "sizes.json"
    if marker.exists() and json.loads(marker.read_text()) == sizes:
        log.info("reusing %s", root)
        return
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    mids = catalogue.class_descriptions()
    (root / files.HIERARCHY).write_bytes(catalogue.resource_bytes(files.HIERARCHY))
    (root / catalogue.CLASS_DESCRIPTIONS_FILE).write_bytes(catalogue.resource_bytes(catalogue.CLASS_DESCRIPTIONS_FILE))
    bigcats = [mids[n] for n in FIRST_CLASSES]
    common = [m for n, m in mids.items() if n not in FIRST_CLASSES]
    cat_images = _ids(rng, sizes["bigcat_images"])
    pool = _ids(rng, max(sizes["listing_files"], 1))
    for subset, share in SUBSET_SHARE.items():
        n_boxes, n_labels = int(sizes["box_rows"] * share), int(sizes["label_rows"] * share)
        cats = cat_images if subset == "train" else cat_images[:0]
        n_cat_boxes = sizes["bigcat_boxes"] if subset == "train" else 0
        box_ids = np.concatenate([rng.choice(cats, n_cat_boxes) if len(cats) else cats, rng.choice(pool, n_boxes - n_cat_boxes)])
        box_labels = np.concatenate([rng.choice(bigcats, n_cat_boxes), rng.choice(common, n_boxes - n_cat_boxes)])
        name = "oidv6-train-annotations-bbox.csv" if subset == "train" else f"{subset}-annotations-bbox.csv"
        extra = XCLICK if subset == "train" else ()
        with (root / name).open("w", newline="") as out:
            writer = csv.writer(out)
            writer.writerow(BOX_COLUMNS + extra)
            for image_id, label in zip(box_ids, box_labels):
                writer.writerow([image_id, "xclick", label, 1, 0.1, 0.6, 0.2, 0.7, 0, 0, 0, 0, 0, *(["0.3"] * len(extra))])
        label_ids = np.concatenate([cats, rng.choice(pool, n_labels - len(cats))])
        labels = np.concatenate([np.full(len(cats), bigcats[0]), rng.choice(common, n_labels - len(cats))])
        name = "oidv6-train-annotations-human-imagelabels.csv" if subset == "train" else f"{subset}-annotations-human-imagelabels.csv"
        with (root / name).open("w", newline="") as out:
            writer = csv.writer(out)
            writer.writerow(IMAGE_LABEL_COLUMNS)
            for image_id, label in zip(label_ids, labels):
                writer.writerow([image_id, "verification", label, 1])
    train = root / "train"
    train.mkdir(exist_ok=True)
    picture = render.encode_jpeg(np.full((96, 128, 3), 120, np.uint8), "RGB", 1, 85)
    for image_id in cat_images:
        (train / f"{image_id}.jpg").write_bytes(picture)
    for image_id in pool[: sizes["listing_files"] - len(cat_images)]:
        (train / f"{image_id}.jpg").touch()
    marker.write_text(json.dumps(sizes))


def _timed(label: str, run) -> Dict[str, Any]:
    with ResourceMonitor() as monitor:
        start = time.perf_counter()
        value = run()
        seconds = time.perf_counter() - start
    usage = monitor.usage.as_dict()
    log.info("%s: %.1f s, peak %.0f MiB", label, seconds, usage["peak_total_mb"])
    return {"seconds": round(seconds, 2), "memory": usage, "value": value}


def _preprocess(spark, root: Path, out: Path, classes: List[str], cache: Path) -> Dict[str, Any]:
    from bigcat_ml.chips.build import build_chip_dataset
    from bigcat_ml.config.compose import compose

    cfg = compose([
        "data=oid", f"data.root={root}", f"data.csv_cache={cache}", f"paths.output_dir={out}",
        "classes.names=[" + ",".join(f"'{c}'" for c in classes) + "]", "classes.descendants_of=[]", f"preprocess.output={out}/chips-{len(classes)}",
        "preprocess.overwrite=true",
    ])
    summary = build_chip_dataset(spark, cfg).summary
    return {k: summary[k] for k in ("selected_boxes", "chips", "rejects", "rejects_by_reason")}


def _listing(spark, folder: Path) -> int:
    return spark.read.format("binaryFile").option("pathGlobFilter", "*.jpg").load(str(folder)).select("path").count()


def _duckdb(root: Path, classes: List[str]) -> int:
    import duckdb

    mids = catalogue.class_descriptions()
    wanted = ", ".join(f"'{mids[c]}'" for c in classes)
    con = duckdb.connect()
    con.execute("SET threads TO 2")
    labels = " UNION ALL ".join(f"SELECT ImageID FROM read_csv_auto('{p}') WHERE LabelName IN ({wanted}) AND Confidence >= 1"
                                for p in sorted(root.glob("*annotations-human-imagelabels.csv")))
    boxes = " UNION ALL ".join(f"SELECT ImageID, LabelName FROM read_csv_auto('{p}') WHERE LabelName IN ({wanted})"
                               for p in sorted(root.glob("*annotations-bbox.csv")))
    return con.execute(f"SELECT count(*) FROM ({boxes}) b WHERE b.ImageID IN ({labels})").fetchone()[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the V6 sizes (1.0 = full size)")
    parser.add_argument("--data-dir", type=Path, default=Path("outputs/bench_scale"), help="generated once, reused")
    parser.add_argument("--resume", action="store_true", help="keep the stages an interrupted run of the same sizes finished")
    parser.add_argument("--results-dir", type=Path, default=RESULTS, help="where scale-<scale>.json goes")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    sizes = _sizes(args.scale)
    root, out = args.data_dir.resolve() / "oid", args.data_dir.resolve() / "runs"
    generated = _timed("generate", lambda: generate(root, sizes))
    from bigcat_ml.config.compose import compose
    from bigcat_ml.runtime.spark import get_spark

    spark = get_spark(compose([]).spark)
    cache = out / "csv_cache"
    partial = args.data_dir.resolve() / "partial.json"
    done: Dict[str, Any] = json.loads(partial.read_text()) if args.resume and partial.exists() else {}
    if done.get("sizes") != sizes:
        done = {"sizes": sizes}
    if "first_run" not in done and cache.exists():
        import shutil
        shutil.rmtree(cache)

    def stage(name: str, run) -> None:
        if name not in done:
            done[name] = _timed(name, run)
            partial.write_text(json.dumps(done, default=str))

    stage("listing_not_done", lambda: _listing(spark, root / "train"))
    stage("first_run", lambda: _preprocess(spark, root, out, FIRST_CLASSES, cache))
    stage("second_selection", lambda: _preprocess(spark, root, out, SECOND_CLASSES, cache))
    stage("duckdb_second_selection", lambda: _duckdb(root, SECOND_CLASSES))
    result: Dict[str, Any] = {**done, "scale": args.scale, "machine": machine(), "versions": versions(),
                              "generate_s": generated["seconds"]}
    spark.stop()
    first, second, duck = result["first_run"], result["second_selection"], result["duckdb_second_selection"]
    result["ratios"] = {
        "second_over_duckdb": round(second["seconds"] / duck["seconds"], 2),
        "peak_total_mb_max": max(r["memory"]["peak_total_mb"] for r in (first, second)),
    }
    args.results_dir.mkdir(parents=True, exist_ok=True)
    path = args.results_dir / f"scale-{args.scale:g}.json"
    path.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(json.dumps({k: result[k] for k in ("sizes", "ratios")}, indent=1))
    print(f"listing {result['listing_not_done']['seconds']} s | first run {first['seconds']} s | "
          f"second {second['seconds']} s | duckdb {duck['seconds']} s -> {path}")


if __name__ == "__main__":
    main()
