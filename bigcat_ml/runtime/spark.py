"""The one SparkSession factory, driven by the ``spark`` config group."""
from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import sys
from contextlib import contextmanager
from typing import Any, Dict, Iterator, Mapping

from pyspark.sql import SparkSession

from bigcat_ml.config.schema import SparkConfig

log = logging.getLogger(__name__)

MIN_JAVA = 17


class JavaMissingError(RuntimeError):
    """Spark cannot start: no Java, or one older than Spark 3.5 supports well."""


def flatten_spark_conf(conf: Mapping[str, Any], prefix: str = "") -> Dict[str, str]:
    """Turn the nested YAML form (``spark: {driver: {memory: 4g}}``) into Spark keys.

    Nested keys keep ``spark.conf.spark.driver.memory=8g`` overridable from the command
    line; dotted keys are accepted too, for names that are both a leaf and a prefix.
    """
    flat: Dict[str, str] = {}
    for key, value in conf.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, Mapping):
            flat.update(flatten_spark_conf(value, name))
        elif isinstance(value, bool):
            flat[name] = str(value).lower()
        else:
            flat[name] = str(value)
    return flat


def check_java(min_version: int = MIN_JAVA) -> int:
    """Return the Java major version, or fail with one line saying what to install."""
    java = os.path.join(os.environ["JAVA_HOME"], "bin", "java") if os.environ.get("JAVA_HOME") else shutil.which("java")
    hint = f"Spark needs Java {min_version} or newer: install OpenJDK {min_version} (e.g. `apt-get install openjdk-17-jre-headless` or `conda install openjdk=17`) and put it on PATH or set JAVA_HOME."
    if not java or not os.path.exists(java):
        raise JavaMissingError(f"java not found. {hint}")
    out = subprocess.run([java, "-version"], capture_output=True, text=True).stderr
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out)
    if not match:
        raise JavaMissingError(f"cannot read the Java version from `{java} -version` ({out.strip()!r}). {hint}")
    major = int(match.group(1))
    if major == 1 and match.group(2):  # "1.8.0_292" style
        major = int(match.group(2))
    if major < min_version:
        raise JavaMissingError(f"found Java {major} at {java}. {hint}")
    return major


# Session options the project sets and reads in several places.
ARROW_BATCH_ROWS_KEY = "spark.sql.execution.arrow.maxRecordsPerBatch"
FILE_OPEN_COST_KEY = "spark.sql.files.openCostInBytes"
LOOPBACK = "127.0.0.1"


def get_spark(cfg: SparkConfig) -> SparkSession:
    """Build (or return the running) SparkSession for this config.

    Arrow is on because chips move between the JVM and Python as Arrow batches; in local
    mode the Python workers run ``sys.executable`` or they would import another Python's
    packages. Local mode listens on loopback only.
    """
    check_java()
    conf = {
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.sql.session.timeZone": "UTC",
        # Counts rows, and a row here can be a whole image: Spark's 10000 is far too many.
        ARROW_BATCH_ROWS_KEY: "64",
        # Spark packs files into read tasks as if each cost 4 MB more than its size; images
        # are small files, so at that price thousands of them made 186 tasks where 8 do
        # (16x sample: 15.5 s -> 5.4 s of reading, benchmarks/results).
        FILE_OPEN_COST_KEY: str(128 * 1024),
        **flatten_spark_conf(cfg.conf),
    }
    if cfg.master.startswith("local"):
        conf["spark.pyspark.python"] = sys.executable
        conf["spark.pyspark.driver.python"] = sys.executable
        # conf/spark/local.yaml binds the driver to loopback; the web UI binds to
        # SPARK_LOCAL_IP (0.0.0.0 when unset) instead, so pin that to loopback too.
        os.environ.setdefault("SPARK_LOCAL_IP", LOOPBACK)
    if "spark.pyspark.python" in conf:
        # A driver started as plain Python picks the executors' Python from this variable
        # (SparkContext.pythonExec), not from the conf key.
        os.environ["PYSPARK_PYTHON"] = conf["spark.pyspark.python"]
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    builder = SparkSession.builder.master(cfg.master).appName(cfg.app_name)
    for key, value in conf.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel(cfg.log_level)
    log.info("Spark %s on %s (%d cores)", spark.version, cfg.master, spark.sparkContext.defaultParallelism)
    return spark


@contextmanager
def session_conf(spark: SparkSession, key: str, value: str) -> Iterator[None]:
    """Set a runtime Spark SQL option for the block, then restore the session's value."""
    previous = spark.conf.get(key, None)
    spark.conf.set(key, value)
    try:
        yield
    finally:
        if previous is None:
            spark.conf.unset(key)
        else:
            spark.conf.set(key, previous)
