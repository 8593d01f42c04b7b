"""Peak memory of the Spark process tree, and how busy the rest of the machine was.

A background thread samples every process under this one (psutil): this Python driver,
the JVM it started, and the Python workers the JVM forks (``pyspark.daemon`` and its
children). RSS is summed per group at each sample and the peak kept. Forked workers
share pages with the daemon, so the workers' sum is an upper bound; the whole tree's PSS
(proportional set size: a shared page counted once, split among its sharers) is summed too,
which is what the tree takes from RAM.

The same thread tracks the CPU time of the tree; the machine's busy time minus it is
what other programs took ("foreign" cores), the main source of noise on a shared box.
"""
from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Dict, FrozenSet, Iterator, List, Optional, Tuple

import psutil

MB = 1024 * 1024
DRIVER, JVM, WORKERS, OTHER = "driver_python", "jvm", "python_workers", "other"


@dataclass
class Usage:
    """Peaks in MiB of RSS; ``foreign_cpu_cores``: average cores used outside our tree."""

    seconds: float = 0.0
    peak_mb: Dict[str, float] = field(default_factory=lambda: {g: 0.0 for g in (DRIVER, JVM, WORKERS, OTHER)})
    peak_total_mb: float = 0.0
    peak_total_pss_mb: Optional[float] = None  # the same peak with shared pages counted once (pss=True only)
    python_worker_max_mb: float = 0.0  # the largest single Python worker
    python_workers_max_count: int = 0
    own_cpu_cores: float = 0.0
    own_cpu_s: float = 0.0  # CPU seconds of the whole tree (driver, JVM, workers)
    foreign_cpu_cores: float = 0.0
    samples: int = 0

    def as_dict(self) -> Dict:
        out = asdict(self)
        out["peak_mb"] = {k: round(v, 1) for k, v in self.peak_mb.items()}
        for key in ("seconds", "peak_total_mb", "peak_total_pss_mb", "python_worker_max_mb", "own_cpu_cores", "own_cpu_s", "foreign_cpu_cores"):
            if out[key] is not None:
                out[key] = round(out[key], 1 if key.endswith("_mb") else 3)
        return out


def _pss_mb(pid: int) -> float:
    """The process's PSS from ``/proc/<pid>/smaps_rollup`` (Linux 4.14+); 0 where unreadable."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as rollup:
            for line in rollup:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _busy_seconds() -> float:
    times = psutil.cpu_times()
    return sum(times) - times.idle - getattr(times, "iowait", 0.0)


def _tree(root: psutil.Process) -> Iterator[Tuple[str, psutil.Process]]:
    """(group, process) for the root and every descendant."""
    yield DRIVER, root
    try:
        children = root.children(recursive=True)
    except psutil.Error:
        return
    by_pid = {p.pid: p for p in children}
    for proc in children:
        yield _group(proc, by_pid, root.pid), proc


def _group(proc: psutil.Process, by_pid: Dict[int, psutil.Process], root_pid: int) -> str:
    """JVM: the java process this driver started. Python workers: python processes under
    it. Anything else (e.g. a short-lived fork of the JVM running a shell command, which
    briefly shows the JVM's RSS) is "other"."""
    try:
        if proc.name() == "java" and proc.ppid() == root_pid:
            return JVM
        if not proc.name().startswith("python"):
            return OTHER
        parent = proc.ppid()
        while parent in by_pid:
            if by_pid[parent].name() == "java":
                return WORKERS
            parent = by_pid[parent].ppid()
    except psutil.Error:
        pass
    return OTHER


def python_worker_pids() -> FrozenSet[int]:
    """The Python processes of the JVM this process started (``pyspark.daemon`` and the
    workers it forked): a set that changes when Spark replaces its workers."""
    return frozenset(proc.pid for group, proc in _tree(psutil.Process()) if group == WORKERS)


class ResourceMonitor:
    """``with ResourceMonitor() as m: ...`` then read ``m.usage`` (peaks during the block).

    ``pss``: also sum each process's PSS. Reading ``smaps_rollup`` walks the page tables of
    every process under the mapping lock; sampled five times a second over a JVM and two
    Python workers holding ResNet50, it cost the monitor a fifth of a core and the warm
    Spark call a tenth of its speed (docs/decisions.md), so only the memory benchmark
    asks for it.
    """

    def __init__(self, interval_s: float = 0.2, pss: bool = False) -> None:
        self.interval_s = interval_s
        self.pss = pss
        self.usage = Usage()
        self._root = psutil.Process()
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._cpu_first: Dict[int, float] = {}
        self._cpu_last: Dict[int, float] = {}

    def __enter__(self) -> "ResourceMonitor":
        self._start = time.perf_counter()
        self._busy_start = _busy_seconds()
        self._sample()
        self._thread = threading.Thread(target=self._run, name="resource-monitor", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._sample()
        wall = time.perf_counter() - self._start
        own = sum(self._cpu_last[pid] - self._cpu_first[pid] for pid in self._cpu_last)
        self.usage.seconds = wall
        self.usage.own_cpu_s = own
        self.usage.own_cpu_cores = own / wall if wall else 0.0
        self.usage.foreign_cpu_cores = max(0.0, (_busy_seconds() - self._busy_start - own) / wall) if wall else 0.0

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._sample()

    def _sample(self) -> None:
        totals = {group: 0.0 for group in self.usage.peak_mb}
        pss = 0.0
        workers: List[float] = []
        for group, proc in _tree(self._root):
            try:
                with proc.oneshot():
                    rss = proc.memory_info().rss / MB
                    cpu = proc.cpu_times()
            except psutil.Error:
                continue
            totals[group] += rss
            if self.pss:
                pss += _pss_mb(proc.pid)
            if group == WORKERS:
                workers.append(rss)
            self._cpu_first.setdefault(proc.pid, cpu.user + cpu.system)
            self._cpu_last[proc.pid] = cpu.user + cpu.system
        usage = self.usage
        usage.samples += 1
        for group, mb in totals.items():
            usage.peak_mb[group] = max(usage.peak_mb[group], mb)
        usage.peak_total_mb = max(usage.peak_total_mb, sum(totals.values()))
        if self.pss:
            usage.peak_total_pss_mb = max(usage.peak_total_pss_mb or 0.0, pss)
        usage.python_worker_max_mb = max([usage.python_worker_max_mb, *workers])
        usage.python_workers_max_count = max(usage.python_workers_max_count, len(workers))


def wait_for_quiet(max_wait_s: float, max_foreign_cores: float = 0.5, window_s: float = 0.5) -> Dict[str, float]:
    """Wait up to ``max_wait_s`` for a ``window_s`` window in which other programs use
    fewer than ``max_foreign_cores`` cores; the seconds waited and that window's load.

    On a shared machine other jobs come in bursts; starting a timed run in a quiet
    moment makes the Spark and plain runs more comparable. The wait is bounded, and the
    load during every run is recorded anyway.
    """
    start = time.perf_counter()
    while True:
        with ResourceMonitor(interval_s=window_s) as monitor:
            time.sleep(window_s)
        foreign = monitor.usage.foreign_cpu_cores
        waited = time.perf_counter() - start
        if foreign < max_foreign_cores or waited >= max_wait_s:
            return {"waited_s": round(waited, 1), "foreign_cpu_cores": round(foreign, 2)}
