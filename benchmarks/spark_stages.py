"""Where a Spark call spent its time, read back from the session's own status REST API.

Jobs started inside :func:`job_group` are tagged; :func:`busiest_stage` later finds
the stage of that group with the most executor time (the one running the Python UDF)
and returns its wall time and its tasks' durations: it reads Spark's local UI server
(``spark.ui.enabled``) and returns ``None`` without one. :func:`group_counts` reads the
status tracker and needs no server.
"""
from __future__ import annotations

import json
import logging
import urllib.request
from contextlib import contextmanager
from datetime import datetime
from typing import Any, Dict, Iterator, List, Optional

from pyspark.sql import SparkSession

log = logging.getLogger(__name__)

_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%f%Z"


@contextmanager
def job_group(spark: SparkSession, group: str) -> Iterator[None]:
    """Tag every Spark job started in the block with ``group``."""
    context = spark.sparkContext
    context.setJobGroup(group, group)
    try:
        yield
    finally:
        context.setLocalProperty("spark.jobGroup.id", None)
        context.setLocalProperty("spark.job.description", None)


def _get(spark: SparkSession, path: str) -> Any:
    url = f"{spark.sparkContext.uiWebUrl}/api/v1/applications/{spark.sparkContext.applicationId}/{path}"
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.load(response)


def _seconds(stage: Dict[str, Any]) -> float:
    start = datetime.strptime(stage["submissionTime"], _TIME_FORMAT)
    end = datetime.strptime(stage["completionTime"], _TIME_FORMAT)
    return (end - start).total_seconds()


def busiest_stage(spark: SparkSession, group: str) -> Optional[Dict[str, Any]]:
    """The group's stage with the most executor run time: its wall seconds and per-task
    seconds in partition order. ``executor_cpu_s`` is JVM CPU only (the Python workers
    are separate processes)."""
    if not spark.sparkContext.uiWebUrl:
        return None
    try:
        stage_ids: List[int] = [s for job in _get(spark, "jobs") if job.get("jobGroup") == group for s in job["stageIds"]]
        stages = [s for s in _get(spark, "stages?status=complete") if s["stageId"] in stage_ids]
        if not stages:
            return None
        busiest = max(stages, key=lambda s: s["executorRunTime"])
        detail = _get(spark, f"stages/{busiest['stageId']}/{busiest['attemptId']}?details=true")
    except (OSError, ValueError, KeyError) as error:
        log.warning("no stage metrics from the Spark UI for %s: %s", group, error)
        return None
    tasks = sorted(detail["tasks"].values(), key=lambda t: t["index"])
    return {
        "wall_s": round(_seconds(busiest), 3),
        "tasks": len(tasks),
        "task_s": [round(t["duration"] / 1000, 3) for t in tasks],
        "executor_run_s": round(busiest["executorRunTime"] / 1000, 3),
        "executor_cpu_s": round(busiest["executorCpuTime"] / 1e9, 3),
    }


def group_counts(spark: SparkSession, group: str) -> Dict[str, int]:
    """How many Spark jobs, stages and tasks the group ran (each has a fixed cost).

    Read from the status tracker, which needs no UI server (the local config turns it
    off); stages skipped because their shuffle output was reused are not counted.
    """
    tracker = spark.sparkContext.statusTracker()
    jobs = [tracker.getJobInfo(job) for job in tracker.getJobIdsForGroup(group)]
    stages = [tracker.getStageInfo(stage) for job in jobs if job for stage in job.stageIds]
    ran = [stage for stage in stages if stage and stage.numCompletedTasks]
    return {"jobs": len(jobs), "stages": len(ran), "tasks": sum(stage.numCompletedTasks for stage in ran)}
