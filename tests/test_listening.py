"""Nothing listens where it should not: local Spark on loopback (the MLflow UI: test_mlflow_project)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.sockets import all_loopback

PROJECT = Path(__file__).resolve().parents[1]

# Starts the project's own local session, then lists the TCP ports the JVM listens on
# (from /proc: the JVM's socket inodes matched against /proc/net/tcp{,6} LISTEN rows).
_LISTENING = r"""
import json, os, sys
from helpers.sockets import listening
from bigcat_ml.stepkit.step import compose
from bigcat_ml.runtime.spark import get_spark

spark = get_spark(compose(["spark.master='local[1]'", *sys.argv[1:]]).spark)
pid = spark._jvm.java.lang.ProcessHandle.current().pid()
inodes = set()
for fd in os.listdir(f"/proc/{pid}/fd"):
    try:
        target = os.readlink(f"/proc/{pid}/fd/{fd}")
    except OSError:
        continue
    if target.startswith("socket:["):
        inodes.add(target[8:-1])
ui = spark.sparkContext.uiWebUrl
found = listening(inodes=inodes)
spark.stop()
print(json.dumps({"listening": found, "ui": ui}))
"""


def _jvm_listening(*overrides: str) -> dict:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(PROJECT), str(PROJECT / "tests")])}  # helpers.sockets
    env.pop("SPARK_LOCAL_IP", None)
    done = subprocess.run([sys.executable, "-c", _LISTENING, *overrides], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.spark
def test_local_spark_listens_on_loopback_only_and_has_no_ui_by_default():
    found = _jvm_listening()

    assert found["ui"] is None
    assert found["listening"], "the driver should listen somewhere (block manager, RPC)"
    assert all_loopback(found["listening"]), found["listening"]


@pytest.mark.spark
def test_a_requested_spark_ui_is_served_on_loopback():
    found = _jvm_listening("spark.conf.spark.ui.enabled=true")

    assert found["ui"] is not None
    ui_port = int(found["ui"].rsplit(":", 1)[1])
    assert ui_port in {port for _, port in found["listening"]}
    assert all_loopback(found["listening"]), found["listening"]
