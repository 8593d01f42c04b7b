"""Names of what the evaluate step logs, shared with ``compare`` which reads them back."""

# Tag on every run: the commit plus a hash of uncommitted changes to bigcat_ml/ and conf/.
CODE_VERSION_TAG = "bigcat.code_version"

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
# The same tables as MLflow tables, which the UI's artifact view shows as tables.
PER_CLASS_TABLE = "tables/per_class.json"
CONFUSION_TABLE = "tables/confusion.json"
CALIBRATION_TABLE = "tables/calibration.json"
SLICES_TABLE = "tables/slices.json"

# The chip dataset logged as a run input (the UI's Datasets column): the context of each
# step and the input tag naming the OID subsets the chips come from.
PREPROCESS_DATASET_CONTEXT = "preprocess-output"
EVALUATE_DATASET_CONTEXT = "evaluation"
DATASET_SUBSET_INPUT_TAG = "subset"

# Headline metrics, in the order tables and bar charts show them.
HEADLINE_METRICS = ("top1_accuracy", "top5_accuracy", "family_accuracy", "f1_macro", "ece")
THROUGHPUT_METRIC = "chips_per_second"
