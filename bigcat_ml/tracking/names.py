"""Every ``bigcat.*`` tag, artifact path and metric-name rule the steps log, defined once.

Writers (the steps) and readers (``main``'s reuse, ``compare``, the tests) import them
from here, so a renamed tag cannot leave one side behind.
"""
import re

# Step names: each step's key in the registry, the value of STEP_TAG on its runs, the
# suffix of main's per-step tags and the name of its module (``python -m bigcat_ml.<name>``).
SAMPLE_DATA_STEP = "sample_data"
PREPROCESS_STEP = "preprocess"
TRAIN_STEP = "train"
EVALUATE_STEP = "evaluate"
MAIN_STEP = "main"
COMPARE_STEP = "compare"

# Tags on every step run, and the reuse key main looks for.
STEP_TAG = "bigcat.step"
STEP_KEY_TAG = "bigcat.step_key"
# On main's parent run: the run each step ran as, or the finished run it reused.
STEP_RUN_TAG_PREFIX = "bigcat.run."
REUSED_TAG_PREFIX = "bigcat.reused."

# On a FAILED run: the error's first line; MLflow's description (the note) says it too.
ERROR_TAG = "bigcat.error"
NOTE_TAG = "mlflow.note.content"

# Tag on every run: the commit plus a hash of uncommitted changes to bigcat_ml/ and conf/.
CODE_VERSION_TAG = "bigcat.code_version"

# Tags on every evaluation run.
MODEL_TAG = "bigcat.model"
WEIGHTS_TAG = "bigcat.weights"
DATASET_DIGEST_TAG = "bigcat.dataset_digest"
# Which inference path ran (spark or local; evaluate.path=auto resolves to one of them)
# and the model.precision it ran in (float32 or bfloat16).
INFERENCE_PATH_TAG = "bigcat.inference_path"
PRECISION_TAG = "bigcat.precision"
# On preprocess runs: the sha256 of the dataset's manifest.json, and where it was written.
DATASET_MANIFEST_TAG = "bigcat.dataset_manifest"
DATASET_TAG = "bigcat.dataset"
# On sample_data runs: the fingerprint of the sample it wrote (its config and generator version).
SAMPLE_FINGERPRINT_TAG = "bigcat.sample_fingerprint"

# On an evaluate run of random-init weights: why its numbers mean nothing.
CAVEAT_TAG = "bigcat.note"
# On a compare run: the evaluate runs it put side by side, comma-separated.
COMPARED_RUNS_TAG = "bigcat.compared_runs"

# Artifacts (paths inside the run's artifact root).
CONFIG_ARTIFACT = "config.yaml"  # every step's resolved config, secrets redacted
# sample_data: the generated sample's ground truth (the same name as in data.root).
GROUND_TRUTH = "ground_truth.json"
# preprocess: the chip dataset's summary.json (the same name as in the dataset folder) and its tables.
CHIP_SUMMARY = "summary.json"
SELECTED_CLASSES_TABLE = "tables/selected_classes.json"
CHIPS_BY_CLASS_TABLE = "tables/chips_by_class.json"
IMAGE_LABELS_BY_CLASS_TABLE = "tables/image_labels_by_class.json"
BOXES_BY_CLASS_SUBSET_TABLE = "tables/boxes_by_class_subset.json"
# train: the classes the model predicts, in output order.
CLASS_NAMES_ARTIFACT = "class_names.json"
# Every step's figures are figures/<name>; evaluate's by name.
FIGURES_DIR = "figures"
CONFUSION_FIGURE = "figures/confusion_matrix.png"
CONFIDENCE_FIGURE = "figures/confidence_histograms.png"
RELIABILITY_FIGURE = "figures/reliability_diagram.png"
ROC_PR_FIGURE = "figures/roc_pr_curves.png"
MISTAKES_FIGURE = "figures/most_confident_mistakes.png"
# compare: the table three ways, and its figures beside them (comparison/<name>).
COMPARISON_DIR = "comparison"
COMPARISON_MD = "comparison/comparison.md"
COMPARISON_CSV = "comparison/comparison.csv"
COMPARISON_HTML = "comparison/comparison.html"
# evaluate:
PREDICTIONS = "predictions/predictions.parquet"
REJECTS = "predictions/rejects.parquet"
PER_CLASS_CSV = "tables/per_class.csv"
CONFUSION_CSV = "tables/confusion.csv"
CALIBRATION_CSV = "tables/calibration.csv"
SLICES_CSV = "tables/slices.csv"
OTHER_PREDICTIONS_CSV = "tables/other_predictions.csv"
# The same tables as MLflow tables, which the UI's artifact view shows as tables.
PER_CLASS_TABLE = "tables/per_class.json"
CONFUSION_TABLE = "tables/confusion.json"
CALIBRATION_TABLE = "tables/calibration.json"
SLICES_TABLE = "tables/slices.json"
# One row per scored chip (ImageID, box, class, top-k, outcomes): the UI filters it, compare re-scores it.
CHIPS_TABLE = "tables/chips.json"

# The chip dataset logged as a run input (the UI's Datasets column): the context of each
# step and the input tag naming the OID subsets the chips come from.
PREPROCESS_DATASET_CONTEXT = "preprocess-output"
EVALUATE_DATASET_CONTEXT = "evaluation"
DATASET_SUBSET_INPUT_TAG = "subset"

# Headline metrics, in the order tables and bar charts show them.
HEADLINE_METRICS = ("top1_accuracy", "top5_accuracy", "family_accuracy", "f1_macro", "ece")
THROUGHPUT_METRIC = "chips_per_second"
# Counts: preprocess logs the dataset's (boxes selected = chips + rejects), evaluate what it
# read; rejects by reason are metric_name(REJECTS_METRIC, reason), stage times
# metric_name(SECONDS_METRIC, stage).
SELECTED_BOXES_METRIC = "selected_boxes"
SELECTED_CLASSES_METRIC = "selected_classes"
CHIPS_METRIC = "chips"
REJECTS_METRIC = "rejects"
SECONDS_METRIC = "seconds"
CHIPS_READ_METRIC = "chips_read"
UNMAPPED_CHIPS_METRIC = "unmapped_chips"
UNMAPPED_CLASSES_METRIC = "unmapped_classes"


def metric_name(*parts: str) -> str:
    """Join parts with ``.`` into a name MLflow accepts on every platform.

    MLflow's names allow letters, digits, ``_ - . / space`` (and ``:`` off Windows), no
    parentheses: a parenthesised qualifier (Open Images' ``Jaguar (Animal)``) becomes
    ``Jaguar - Animal``, which reads as the name it is; ``<`` and ``>=`` (chip-size
    bucket labels) become ``lt``/``ge``; any other character outside the allowed ones
    becomes ``_`` (params too: ``:`` and ``/``, which MLflow rejects on Windows or as
    paths, go that way).
    """
    cleaned = []
    for part in parts:
        text = str(part).replace(">=", "ge").replace("<", "lt")
        text = re.sub(r"\s*\(\s*([^()]*?)\s*\)", r" - \1", text).strip()
        cleaned.append(re.sub(r"[^A-Za-z0-9_\-. ]", "_", text))
    return ".".join(cleaned)


# Fine-tuned models (train step) beside the zero-shot ImageNet ones.
KIND_TAG = "bigcat.kind"
ZERO_SHOT = "zero-shot"
FINE_TUNED = "fine-tuned"
TRAINING_TAG = "bigcat.training"  # the training config in one line, on train and evaluate runs
SUBSET_TAG = "bigcat.subset"  # the Subset an evaluation scored ("all": every chip)
ALL_SUBSETS = "all"
MODEL_URI_TAG = "bigcat.model_uri"  # the registered model version a train run produced
CLASSES_TAG = "bigcat.classes"  # on a registered version: the classes it predicts, in output order
# Subset-level metrics: <subset>/<metric>; compare puts every run side by side on this Subset.
COMPARISON_SUBSET = "test"
# Dataset inputs of a train run (mlflow.log_input contexts).
TRAINING_CONTEXT = "training"
VALIDATION_CONTEXT = "validation"


def subset_metric(subset: str, metric: str) -> str:
    """``test/top1_accuracy``: MLflow's UI groups metrics by the part before the slash."""
    return f"{subset}/{metric}"
