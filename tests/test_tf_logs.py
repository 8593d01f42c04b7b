"""TensorFlow's start-up noise is dropped from stderr; everything else written meanwhile is kept."""
from __future__ import annotations

import subprocess
import sys

from bigcat_ml.runtime.tf_logs import is_start_up_noise

ABSL_PRE_INIT = "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
ONEDNN = "I0000 00:00:1796051566.187380   11961 port.cc:153] oneDNN custom operations are on.\n"
CPU_FEATURES = (
    "I0000 00:00:1796051566.584648   20227 cpu_feature_guard.cc:227] This TensorFlow binary is optimized…\n"
    "To enable the following instructions: AVX2 FMA, in other operations, rebuild TensorFlow with the appropriate compiler flags.\n"
)
ERROR = "E0000 00:00:1796051566.187380   11961 loader.cc:10] could not load a kernel library\n"


def test_start_up_info_and_warning_lines_are_noise_and_errors_are_not():
    assert all(is_start_up_noise(line) for line in (ABSL_PRE_INIT, ONEDNN, *CPU_FEATURES.splitlines()))
    assert not is_start_up_noise(ERROR)
    assert not is_start_up_noise("W tensorflow said something without Abseil's prefix\n")


def test_lines_that_are_not_start_up_noise_still_reach_stderr_in_order():
    """In a process of its own: C++ writes to file descriptor 2, Python's to ``sys.stderr``."""
    code = (
        "import os, sys\n"
        "from bigcat_ml.runtime.tf_logs import start_up_noise_dropped\n"
        "with start_up_noise_dropped():\n"
        f"    os.write(2, {(ABSL_PRE_INIT + ONEDNN + CPU_FEATURES + ERROR).encode()!r})\n"
        "    print('a Python warning', file=sys.stderr)\n"
        "print('after', file=sys.stderr)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stderr == ERROR + "a Python warning\nafter\n"
