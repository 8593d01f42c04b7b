"""How big each benchmark run is: the full ``make bench``, ``--quick``, and the test's tiny one.

Sizes are chosen for a 2-core machine (a full run's wall time heads the results in docs/benchmarks.md);
ResNet50 scores about a quarter as many chips per second as MobileNet, so it gets fewer chips.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Optional, Tuple


@dataclass(frozen=True)
class InferencePlan:
    """One model's inference measurements (chip counts are upper bounds)."""

    model: str  # config group option
    small: int  # a few hundred chips, from the 1x dataset
    large: int  # >= 2,000 chips in full, from the largest growth dataset
    repeats: int  # interleaved repeats at the small size
    large_repeats: int
    fit_only: Tuple[int, ...]  # extra Spark-only sizes for the fixed-cost line
    precision_chips: int  # float32 vs bfloat16: half train the model, half judge agreement
    precision_epochs: int
    precision_repeats: int
    # Seconds without a Python task before the after-idle call; None: past Spark's idle
    # limit for Python workers (bench_inference). The tiny test's short pause keeps them.
    idle_s: Optional[float] = None


@dataclass(frozen=True)
class Profile:
    """One benchmark size. Chip counts are upper bounds: a model gets at most that many."""

    name: str
    # Generated sample: images per subset (image sides stay at the sample defaults).
    images_per_subset: Dict[str, int]
    # Inference measurements per model, in the order they run.
    models: Tuple[InferencePlan, ...]
    # Timed preprocessing repeats after the first (cold) run.
    warm_repeats: int
    # Annotation-row multiples for the growth measurement (rows are replicated).
    growth: Tuple[int, ...]
    # A second sample with Open Images-sized pictures (sides in pixels), extraction only.
    large_images_per_subset: Optional[Dict[str, int]] = None
    large_image_side: Tuple[int, int] = (768, 1024)
    # Copies of that sample's rows (hard-linked images), so fixed costs do not dominate.
    large_replicas: int = 1
    # Before each timed run, wait at most this long for other programs to go quiet.
    quiet_wait_s: float = 0.0
    # Only the test's tiny profile shrinks the model input (pixels); None = the model's own.
    input_size: Optional[int] = None


PROFILES: Dict[str, Profile] = {
    "full": Profile(
        name="full",
        images_per_subset={"train": 240, "validation": 80, "test": 80},
        models=(InferencePlan("mobilenet", 600, 2400, 3, 2, (150,), 256, 8, 2),
                InferencePlan("resnet50", 300, 2000, 2, 2, (100,), 128, 8, 2)),
        warm_repeats=2,
        growth=(1, 4, 16),
        large_images_per_subset={"train": 60, "validation": 20, "test": 20},
        large_replicas=8,
        quiet_wait_s=5.0,
    ),
    "quick": Profile(
        name="quick",
        images_per_subset={"train": 60, "validation": 20, "test": 20},
        models=(InferencePlan("mobilenet", 150, 600, 1, 1, (50,), 64, 2, 1),
                InferencePlan("resnet50", 64, 200, 1, 1, (32,), 32, 2, 1)),
        warm_repeats=1,
        growth=(1, 4),
        large_images_per_subset={"train": 12, "validation": 4, "test": 4},
        large_replicas=4,
        quiet_wait_s=3.0,
    ),
    "tiny": Profile(
        name="tiny",
        images_per_subset={"train": 6, "validation": 3, "test": 3},
        models=(InferencePlan("mobilenet", 8, 16, 1, 1, (4,), 8, 1, 1, idle_s=1.0),),
        warm_repeats=0,
        growth=(1, 2),
        large_images_per_subset={"train": 2, "validation": 1, "test": 1},
        large_image_side=(256, 320),
        input_size=32,
    ),
}
