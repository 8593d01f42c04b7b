"""The SparkSession factory: conf pass-through, worker Python, Java check."""
from __future__ import annotations

import sys

import pytest

from bigcat_ml.runtime import spark as spark_module
from bigcat_ml.runtime.spark import JavaMissingError, check_java, spark_conf_keys


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
    with pytest.raises(JavaMissingError) as err:
        check_java()
    assert "\n" not in str(err.value) and "OpenJDK 17" in str(err.value)


def test_old_java_is_refused(monkeypatch, tmp_path):
    fake = tmp_path / "java"
    fake.write_text('#!/bin/sh\necho \'openjdk version "1.8.0_292"\' >&2\n')
    fake.chmod(0o755)
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setattr(spark_module.shutil, "which", lambda _: str(fake))
    with pytest.raises(JavaMissingError, match="found Java 8"):
        check_java()


def test_installed_java_is_accepted():
    assert check_java() >= 17
