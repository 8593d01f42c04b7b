"""Names of what the evaluate step logs, shared with ``compare`` which reads them back."""

# Tags on every evaluation run.
MODEL_TAG = "bigcat.model"
WEIGHTS_TAG = "bigcat.weights"
DATASET_DIGEST_TAG = "bigcat.dataset_digest"

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
