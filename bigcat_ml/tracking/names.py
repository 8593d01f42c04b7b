"""Every ``bigcat.*`` tag, artifact path and metric-name rule the steps log, defined once.

Writers (the steps) and readers (``main``'s reuse, ``compare``, the tests) import them
from here, so a renamed tag cannot leave one side behind.
"""
import re

# Tags on every step run, and the reuse key main looks for.
STEP_TAG = "bigcat.step"
STEP_KEY_TAG = "bigcat.step_key"
# On main's parent run: the run each step ran as, or the finished run it reused.
STEP_RUN_TAG_PREFIX = "bigcat.run."
REUSED_TAG_PREFIX = "bigcat.reused."

# Tags on every evaluation run.
MODEL_TAG = "bigcat.model"
WEIGHTS_TAG = "bigcat.weights"
DATASET_DIGEST_TAG = "bigcat.dataset_digest"
# On preprocess runs: the sha256 of the dataset's manifest.json, and where it was written.
DATASET_MANIFEST_TAG = "bigcat.dataset_manifest"
DATASET_TAG = "bigcat.dataset"

# Artifacts (paths inside the run's artifact root).
PREDICTIONS = "predictions/predictions.parquet"
REJECTS = "predictions/rejects.parquet"
PER_CLASS_CSV = "tables/per_class.csv"
CONFUSION_CSV = "tables/confusion.csv"
CALIBRATION_CSV = "tables/calibration.csv"
SLICES_CSV = "tables/slices.csv"

# Headline metrics, in the order tables and bar charts show them.
HEADLINE_METRICS = ("top1_accuracy", "top5_accuracy", "family_accuracy", "f1_macro", "ece")
THROUGHPUT_METRIC = "chips_per_second"


def metric_name(*parts: str) -> str:
    """Join parts with ``.`` into a name MLflow accepts on every platform.

    ``<`` and ``>=`` (chip-size bucket labels) become ``lt``/``ge`` to stay readable;
    any other character outside letters, digits, ``_ - .`` and space becomes ``_``, so
    ``Jaguar (Animal)`` -> ``Jaguar _Animal_`` (params too: ``:`` and
    ``/``, which MLflow rejects on Windows or as paths, go the same way).
    """
    cleaned = []
    for part in parts:
        text = str(part).replace(">=", "ge").replace("<", "lt")
        cleaned.append(re.sub(r"[^A-Za-z0-9_\-. ]", "_", text))
    return ".".join(cleaned)
