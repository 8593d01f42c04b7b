"""``make bench``: measure the Spark paths against plain single-process loops, write the results.

    python -m benchmarks.run            # full profile -> benchmarks/results/latest.{json,md}
    python -m benchmarks.run --quick    # smaller, a few minutes -> outputs/bench/results/
    python -m benchmarks.run --resume   # keep the stages a stopped run finished
    python -m benchmarks.run --only preprocess   # preprocessing stages only -> <workdir>/results/preprocess.json

Everything runs in one process and one local[2] SparkSession, so the ratios between
the Spark and plain numbers are measured under the same conditions.
"""
from __future__ import annotations

import argparse
import logging
import os
import time
import warnings
from dataclasses import asdict
from pathlib import Path
from typing import Any, Dict, List, Optional

from pyspark.sql import SparkSession

from bigcat_ml.scoring.models import weights_source
from bigcat_ml.runtime.spark import spark_conf_keys, get_spark
from bigcat_ml.tracking.runs import code_version

from benchmarks import environment
from benchmarks.checkpoint import Checkpoint
from benchmarks.bench_inference import bench_inference
from benchmarks.bench_preprocess import TARGET_SPEEDUP, bench_extraction, bench_growth, bench_preprocess
from benchmarks.data import bench_config, ensure_sample, large_images_config, replica_config
from benchmarks.explain import notes
from benchmarks.profiles import PROFILES, Profile
from benchmarks.report import embed_in_doc, write_json, write_results

log = logging.getLogger("benchmarks")

REPO = Path(__file__).resolve().parent.parent
COMMITTED_RESULTS = REPO / "benchmarks" / "results"
RESULTS_DOC = REPO / "docs" / "benchmarks.md"  # shows the committed results (report.embed_in_doc)
DEFAULT_WORKDIR = REPO / "outputs" / "bench"
GROWTH_METHOD = "the bench sample's annotation rows replicated (new ImageIDs, image files hard-linked)"

# Runtime options whose session values (not the config's) the record shows.
SESSION_KEYS = (
    "spark.sql.execution.arrow.maxRecordsPerBatch",
    "spark.sql.files.openCostInBytes",
    "spark.sql.files.maxPartitionBytes",
    "spark.sql.shuffle.partitions",
    "spark.task.cpus",
    "spark.python.worker.reuse",
)


def _config_record(spark: SparkSession, cfg: Any, profile: Profile, model_cfgs: List[Any]) -> Dict[str, Any]:
    return {
        "profile": asdict(profile),
        "spark_master": spark.sparkContext.master,
        "spark_conf": spark_conf_keys(cfg.spark.conf),
        "spark_session": {key: spark.conf.get(key, None) for key in SESSION_KEYS},
        "classes": cfg.classes.name,
        "data_sample": {k: (dict(v) if k == "images_per_subset" else v) for k, v in cfg.data.sample.items()},
        "preprocess": {k: cfg.preprocess[k] for k in ("padding", "min_chip_side", "jpeg_quality", "max_image_pixels", "rows_per_partition")},
        "evaluate": {"batch_size": cfg.evaluate.batch_size, "top_k": cfg.evaluate.top_k},
        "models": [{"name": m.model.name, "input_size": m.model.input_size, "weights": weights_source(m.model)} for m in model_cfgs],
        "timing": "ratios compare runs within one run of make bench (same process, interleaved); runs are not nice'd",
        "growth_method": GROWTH_METHOD,
    }


# What ``--only`` can select: the preprocessing stages (build, extraction, growth, large pictures).
STAGE_FAMILIES = ("preprocess",)


def run_benchmarks(
    spark: SparkSession, profile: Profile, workdir: Path, resume: bool = False, only: Optional[str] = None
) -> Dict[str, Any]:
    """Every measurement of ``profile`` on ``spark``, data under ``workdir``; the results dict.

    ``only`` (one of :data:`STAGE_FAMILIES`) runs that family's stages and leaves the
    other sections None. Each finished stage is kept in ``<workdir>/<profile>/partial.json`` as it ends; with
    ``resume``, the stages a stopped run of the same profile and code finished are kept.
    """
    started = time.perf_counter()
    machine = environment.machine()
    quiet = profile.quiet_wait_s
    cfg = bench_config(workdir, profile)
    checkpoint = Checkpoint(Path(cfg.paths.output_dir) / "partial.json",
                            {"profile": asdict(profile), "code_version": code_version()}, resume)
    start = time.perf_counter()
    truth = ensure_sample(cfg)
    sample_s = time.perf_counter() - start
    preprocess = growth = large = inference = None
    if only in (None, "preprocess"):
        log.info("preprocessing benchmark")
        preprocess = checkpoint.stage("preprocess", lambda: bench_preprocess(spark, cfg, profile.warm_repeats, quiet))
        # Growth before inference: afterwards the Python workers hold TensorFlow and models.
        log.info("growth benchmark")
        base_rows = sum(sum(by_class.values()) for by_class in truth["boxes"].values())
        growth_cfgs = {f: replica_config(workdir, profile, cfg, f, "growth") for f in profile.growth}
        growth = checkpoint.stage("growth", lambda: bench_growth(spark, growth_cfgs, base_rows, quiet))
        if profile.large_images_per_subset:
            large = checkpoint.stage("large_images_extraction", lambda: _large_images(spark, workdir, profile))
    model_cfgs = [bench_config(workdir, profile, [f"model={plan.model}"]) for plan in profile.models]
    if only is None:
        log.info("inference benchmark")
        largest = replica_config(workdir, profile, cfg, max(profile.growth), "growth").preprocess.output
        inference = bench_inference(spark, model_cfgs, profile.models, cfg.preprocess.output, largest, quiet, checkpoint.stage)
    results: Dict[str, Any] = {
        "profile": profile.name,
        "machine": machine,
        "versions": environment.versions(),
        "config": _config_record(spark, cfg, profile, model_cfgs),
        "sample_generation_s": round(sample_s, 2),
        "preprocess": preprocess,
        "growth": growth,
        "large_images_extraction": large,
        "inference": inference,
        "stages_kept_from_a_stopped_run": checkpoint.kept,
    }
    results["targets"] = _targets(results)
    results["notes"] = notes(results)
    machine["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    results["wall_s"] = round(time.perf_counter() - started, 1)
    return results


def _large_images(spark: SparkSession, workdir: Path, profile: Profile) -> Dict[str, Any]:
    """Extraction on a sample with Open Images-sized pictures, against the Pillow loop."""
    log.info("extraction benchmark on Open Images-sized pictures")
    large_cfg = large_images_config(workdir, profile)
    ensure_sample(large_cfg)
    replicas = replica_config(workdir, profile, large_cfg, profile.large_replicas, "large")
    large = {"image_side_px": list(profile.large_image_side), "replicas": profile.large_replicas,
             **bench_extraction(spark, replicas, profile.warm_repeats, profile.quiet_wait_s, "large")}
    speedup = large["speedups"]["extract_chips_from_files_vs_pillow"]
    large["target"] = {"min": TARGET_SPEEDUP, "met": bool(speedup >= TARGET_SPEEDUP)}
    return large


def _targets(results: Dict[str, Any]) -> List[Dict[str, Any]]:
    """One line per target: what was compared, the value, the threshold, met or not."""
    targets = []
    for m in (results["inference"] or {}).get("models", []):
        targets += [
            {"name": f"{m['model']} inference, {size['chips']} chips: Spark / best plain ({size['best_plain']}) chips/s, warm",
             "value": size["spark_vs_best_plain"], **size["target"]}
            for size in m["sizes"]
        ]
        targets.append({"name": f"{m['model']} bfloat16 top-1 agreement with float32", "value": m["precision"]["top1_agreement"],
                        **m["precision"]["target"]})
    pre = results["preprocess"]
    for key, met in (("build_chip_dataset_vs_pillow", "build_chip_dataset_met"), ("extract_chips_from_files_vs_pillow", "extract_chips_from_files_met")) if pre else ():
        targets.append({"name": f"preprocess: {key.replace('_vs_', ' / ')} boxes/s", "value": pre["speedups"][key],
                        "min": pre["target"]["min"], "met": pre["target"][met]})
    large = results.get("large_images_extraction")
    if large:
        low, high = large["image_side_px"]
        targets.append({"name": f"preprocess: extract_chips_from_files / pillow boxes/s, {low}-{high} px images",
                        "value": large["speedups"]["extract_chips_from_files_vs_pillow"], **large["target"]})
    return targets


def _parse(argv: Optional[List[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_const", dest="profile", const="quick", help="the small profile (a few minutes)")
    parser.add_argument("--profile", choices=sorted(PROFILES), help="benchmark size (default: full)")
    parser.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR, help="generated data and datasets (default: outputs/bench)")
    parser.add_argument("--resume", action="store_true",
                        help="keep the stages a stopped run of the same profile and code finished (<workdir>/<profile>/partial.json)")
    parser.add_argument("--results", type=Path, default=None,
                        help="where latest.json/latest.md go (default: benchmarks/results for the full profile, <workdir>/results otherwise)")
    parser.add_argument("--only", choices=STAGE_FAMILIES,
                        help="run only these stages (minutes instead of the full profile's 25); the results go to "
                             "<workdir>/results/<stages>.json, never to the committed ones")
    parser.set_defaults(profile="full")
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> None:
    args = _parse(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    warnings.filterwarnings("ignore", category=FutureWarning)
    profile = PROFILES[args.profile]
    results_dir = args.results or (COMMITTED_RESULTS if profile.name == "full" and not args.only else args.workdir / "results")
    spark = get_spark(bench_config(args.workdir, profile).spark)
    try:
        results = run_benchmarks(spark, profile, args.workdir, args.resume, args.only)
    finally:
        spark.stop()
    if args.only:  # the Markdown page and docs/benchmarks.md show complete runs only
        paths = {"json": write_json(results, results_dir / f"{args.only}.json")}
    else:
        paths = write_results(results, results_dir)
        if results_dir.resolve() == COMMITTED_RESULTS.resolve():
            embed_in_doc(RESULTS_DOC, paths["markdown"].read_text(encoding="utf-8"))
    for target in results["targets"]:
        print(f"{'met    ' if target['met'] else 'MISSED '} {target['name']}: {target['value']} (target >= {target['min']})")
    print(f"{results['wall_s']} s; results in {' and '.join(str(path) for path in paths.values())}")


if __name__ == "__main__":
    main()
