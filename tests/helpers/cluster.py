"""A real Spark standalone cluster on loopback, started from the pyspark installation.

The pip package ships no ``sbin/start-master.sh``, so the master and the workers are
started with ``bin/spark-class`` directly, exactly as those scripts would. Each runs in a
process group of its own, so stopping the cluster also stops the executors and Python
workers the workers launched, even when the test using it failed.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List

import pyspark

SPARK_HOME = Path(pyspark.__file__).resolve().parent
STOP_SECONDS = 30


@dataclass(frozen=True)
class Cluster:
    """A running cluster: its master URL, its master web UI port, its folders."""

    url: str
    ui_port: int
    work_dir: Path  # SPARK_WORKER_DIR: one folder per application and executor
    logs: Path

    def state(self) -> Dict[str, Any]:
        """The master's JSON status (workers, active and completed applications)."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.ui_port}/json/", timeout=5) as reply:
            return json.load(reply)

    def log_tails(self, chars: int = 2000) -> str:
        files = sorted(self.logs.glob("*.log")) + sorted(self.work_dir.glob("app-*/*/stderr"))
        return "\n".join(f"--- {p}\n{p.read_text(errors='replace')[-chars:]}" for p in files)


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
def standalone_cluster(work_dir: Path, workers: int = 2, cores: int = 1, memory: str = "3g") -> Iterator[Cluster]:
    """Start a master and ``workers`` workers (``cores`` and ``memory`` each) on 127.0.0.1.

    Yields the :class:`Cluster` once every worker has registered; on exit every process
    group started here is sent SIGTERM, then SIGKILL after :data:`STOP_SECONDS`.
    """
    port, ui_port = _free_port(), _free_port()
    cluster = Cluster(f"spark://127.0.0.1:{port}", ui_port, work_dir / "work", work_dir / "logs")
    env = {
        **os.environ,
        "SPARK_HOME": str(SPARK_HOME),
        "PYSPARK_PYTHON": sys.executable,
        "SPARK_LOCAL_IP": "127.0.0.1",
        "SPARK_WORKER_DIR": str(cluster.work_dir),
    }
    spark_class = str(SPARK_HOME / "bin" / "spark-class")
    cluster.logs.mkdir(parents=True, exist_ok=True)
    commands = [
        [spark_class, "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1", "--port", str(port), "--webui-port", str(ui_port)],
        *[
            [spark_class, "org.apache.spark.deploy.worker.Worker", cluster.url, "--host", "127.0.0.1",
             "--cores", str(cores), "--memory", memory, "--webui-port", "0"]
            for _ in range(workers)
        ],
    ]
    processes: List[subprocess.Popen] = []
    try:
        for i, command in enumerate(commands):
            with open(cluster.logs / f"process-{i}.log", "w") as out:
                processes.append(
                    subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
                )
            if i == 0:
                _wait(lambda: _port_open(port), 60, "the master did not open its port", cluster)
        _wait(lambda: _alive_workers(ui_port) == workers, 90, f"{workers} workers did not register", cluster)
        yield cluster
    finally:
        _stop(processes)


def _stop(processes: List[subprocess.Popen]) -> None:
    """Workers first (they stop their executors), then the master; the whole group each."""
    for process in reversed(processes):
        _signal_group(process, signal.SIGTERM)
    deadline = time.monotonic() + STOP_SECONDS
    for process in processes:
        try:
            process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
    for process in processes:  # stragglers, and executors a stopped worker left behind
        _signal_group(process, signal.SIGKILL)
        process.wait()


def _signal_group(process: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(process.pid, sig)  # the group id is the pid: start_new_session=True
    except ProcessLookupError:
        pass


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _wait(condition: Callable[[], bool], seconds: float, what: str, cluster: Cluster) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.5)
    raise RuntimeError(f"standalone cluster: {what} within {seconds}s; logs:\n{cluster.log_tails()}")
