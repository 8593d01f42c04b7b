"""Nothing listens where it should not: local Spark on loopback, the MLflow UI on 127.0.0.1."""
from __future__ import annotations

import ipaddress
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[1]

# Starts the project's own local session, then lists the TCP ports the JVM listens on
# (from /proc: the JVM's socket inodes matched against /proc/net/tcp{,6} LISTEN rows).
_LISTENING = r"""
import ipaddress, json, os, sys
from bigcat_ml.config.schema import compose
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

def address(hex_addr):
    raw = bytes.fromhex(hex_addr)  # 32-bit words in host (little-endian) order
    if len(raw) == 4:
        return str(ipaddress.IPv4Address(raw[::-1]))
    ip = ipaddress.IPv6Address(b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4)))
    return str(ip.ipv4_mapped or ip)

listening = []
for table in ("/proc/net/tcp", "/proc/net/tcp6"):
    for line in open(table).read().splitlines()[1:]:
        fields = line.split()
        if fields[3] == "0A" and fields[9] in inodes:  # 0A = LISTEN
            host, port = fields[1].split(":")
            listening.append([address(host), int(port, 16)])
ui = spark.sparkContext.uiWebUrl
spark.stop()
print(json.dumps({"listening": listening, "ui": ui}))
"""



def _all_loopback(listening: list) -> bool:
    return all(ipaddress.ip_address(host).is_loopback for host, _ in listening)


def _jvm_listening(*overrides: str) -> dict:
    env = {**os.environ, "PYTHONPATH": str(PROJECT)}
    env.pop("SPARK_LOCAL_IP", None)
    done = subprocess.run([sys.executable, "-c", _LISTENING, *overrides], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.spark
def test_local_spark_listens_on_loopback_only_and_has_no_ui_by_default():
    found = _jvm_listening()

    assert found["ui"] is None
    assert found["listening"], "the driver should listen somewhere (block manager, RPC)"
    assert _all_loopback(found["listening"]), found["listening"]


@pytest.mark.spark
def test_a_requested_spark_ui_is_served_on_loopback():
    found = _jvm_listening("spark.conf.spark.ui.enabled=true")

    assert found["ui"] is not None
    ui_port = int(found["ui"].rsplit(":", 1)[1])
    assert ui_port in {port for _, port in found["listening"]}
    assert _all_loopback(found["listening"]), found["listening"]


def test_make_mlflow_ui_binds_to_127_0_0_1():
    done = subprocess.run(["make", "-n", "-W", "pyproject.toml", "mlflow-ui"], cwd=PROJECT, capture_output=True, text=True)
    command = [line for line in done.stdout.splitlines() if "mlflow ui" in line]

    assert command and "--host 127.0.0.1" in command[0]
