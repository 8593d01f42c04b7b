"""What the numbers were measured on: the machine and the library versions."""
from __future__ import annotations

import os
import platform
from importlib import metadata
from typing import Any, Dict

import psutil

from bigcat_ml.runtime.spark import check_java

# Distribution names (pip) of the packages whose speed the benchmark depends on.
PACKAGES = {
    "pyspark": "pyspark",
    "tensorflow": "tensorflow-cpu",
    "keras": "keras",
    "petastorm": "petastorm",
    "pyarrow": "pyarrow",
    "numpy": "numpy",
    "pandas": "pandas",
    "pillow": "pillow",
    "opencv": "opencv-python-headless",
    "psutil": "psutil",
}


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine() -> Dict[str, Any]:
    """CPU model, logical/physical cores, RAM (GiB), OS, and the load when the run started."""
    return {
        "cpu_model": _cpu_model(),
        "logical_cores": os.cpu_count(),
        "physical_cores": psutil.cpu_count(logical=False),
        "ram_gib": round(psutil.virtual_memory().total / 1024**3, 1),
        "os": platform.platform(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def versions() -> Dict[str, str]:
    """Python, Java major and the installed versions of :data:`PACKAGES`."""
    found = {"python": platform.python_version(), "java": str(check_java())}
    for name, distribution in PACKAGES.items():
        try:
            found[name] = metadata.version(distribution)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found
