"""A real Spark standalone cluster on loopback, started from the pyspark installation.

The pip package ships no ``sbin/start-master.sh``, so the master and the workers are
started with ``bin/spark-class`` directly, exactly as those scripts would.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pyspark

SPARK_HOME = Path(pyspark.__file__).resolve().parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _alive_workers(ui_port: int) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{ui_port}/json/", timeout=2) as reply:
            state = json.load(reply)
    except OSError:
        return 0
    return sum(1 for worker in state.get("workers", []) if worker.get("state") == "ALIVE")


@contextmanager
def standalone_cluster(work_dir: Path, workers: int = 2, cores: int = 1, memory: str = "3g") -> Iterator[str]:
    """Start a master and ``workers`` workers on 127.0.0.1; yield the master URL."""
    port, ui_port = _free_port(), _free_port()
    env = {
        **os.environ,
        "SPARK_HOME": str(SPARK_HOME),
        "PYSPARK_PYTHON": sys.executable,
        "SPARK_LOCAL_IP": "127.0.0.1",
        "SPARK_WORKER_DIR": str(work_dir / "work"),
    }
    spark_class = str(SPARK_HOME / "bin" / "spark-class")
    logs = work_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    master_url = f"spark://127.0.0.1:{port}"
    commands = [
        [spark_class, "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1", "--port", str(port), "--webui-port", str(ui_port)],
        *[
            [spark_class, "org.apache.spark.deploy.worker.Worker", master_url, "--host", "127.0.0.1",
             "--cores", str(cores), "--memory", memory, "--webui-port", "0"]
            for _ in range(workers)
        ],
    ]
    processes = []
    try:
        for i, command in enumerate(commands):
            out = open(logs / f"process-{i}.log", "w")
            processes.append(subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT))
            if i == 0:
                _wait(lambda: _port_open(port), 60, "the master did not open its port", logs)
        _wait(lambda: _alive_workers(ui_port) == workers, 90, f"{workers} workers did not register", logs)
        yield master_url
    finally:
        for process in reversed(processes):
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _wait(condition, seconds: float, what: str, logs: Path) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.5)
    tails = "\n".join(p.read_text()[-2000:] for p in sorted(logs.glob("*.log")))
    raise RuntimeError(f"standalone cluster: {what} within {seconds}s; logs:\n{tails}")
