"""One timed run: optional wait for a quiet machine, Spark job group, resource monitor."""
from __future__ import annotations

import time
from contextlib import nullcontext
from typing import Any, Callable, Dict, Optional, Sequence, Tuple

from pyspark.sql import SparkSession

from benchmarks.monitor import ResourceMonitor, wait_for_quiet
from benchmarks.spark_stages import job_group


def timed(
    action: Callable[[], Any],
    quiet_wait_s: float = 0.0,
    spark: Optional[SparkSession] = None,
    group: Optional[str] = None,
) -> Tuple[Dict[str, Any], Any]:
    """Run ``action`` once; ``({"seconds", "resources", "quiet"[, "group"]}, its return value)``.

    ``quiet_wait_s`` > 0 first waits (at most that long) for other programs to go quiet;
    ``spark`` and ``group`` tag the Spark jobs so :func:`busiest_stage` can find them.
    """
    quiet = wait_for_quiet(quiet_wait_s) if quiet_wait_s > 0 else None
    tag = job_group(spark, group) if spark is not None and group else nullcontext()
    with tag, ResourceMonitor() as monitor:
        start = time.perf_counter()
        value = action()
        seconds = time.perf_counter() - start
    record: Dict[str, Any] = {"seconds": round(seconds, 3), "resources": monitor.usage.as_dict(), "quiet": quiet}
    if group:
        record["group"] = group
    return record, value


def fastest(runs: Sequence[Dict[str, Any]]) -> Dict[str, Any]:
    """The run of :func:`timed` with the fewest seconds: each kind of run reports its best."""
    return min(runs, key=lambda run: run["seconds"])


def per_second(n: int, seconds: float, digits: int) -> float:
    """``n`` items over ``seconds``, rounded; NaN when no time was measured."""
    return round(n / seconds, digits) if seconds > 0 else float("nan")
