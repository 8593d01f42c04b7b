"""What a function run inside a Spark Python worker does for the worker's sake."""
from __future__ import annotations

import gc


def spare_the_collector() -> None:
    """Move every object alive now out of the garbage collector's reach (``gc.freeze``).

    A reused Python worker runs a full ``gc.collect()`` after every task
    (``pyspark.daemon``), a walk over every object the worker holds: the imported
    libraries, and a loaded model. It cost ~50 ms per task with Pillow, pyarrow and
    petastorm loaded, and more than scoring a small partition took with TensorFlow and a
    model (docs/decisions.md). What is alive at the start of a task lives as long as the
    worker; objects the task makes are still collected after it.
    """
    gc.freeze()
