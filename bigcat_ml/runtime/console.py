"""What an entry point shows on the console; library modules only call ``logging.getLogger``.

By default the console is a report: stdout holds the steps' summaries (the lines entry
points print), progress (:mod:`bigcat_ml.runtime.progress`), the compare table and where the
MLflow UI shows it all; warnings and errors go to stderr. Every other log record still
reaches Hydra's log file of the job, and ``verbose`` (config key, or the
``BIGCAT_VERBOSE=1`` environment variable, which Spark's Python workers receive through
``spark.executorEnv``) puts them all back on the console, together with what the
libraries say without being asked: Spark's log4j start-up notices (``WARN
NativeCodeLoader``), TensorFlow's C++ INFO/WARNING logs (oneDNN banner, CPU-feature lines;
:mod:`bigcat_ml.runtime.tf_logs`), MLflow's artifact download bars and INFO logs, and the
known harmless warnings listed in :data:`KNOWN_HARMLESS_WARNINGS`.
"""
import logging
import os
import sys
import warnings
from typing import Dict, Tuple

from bigcat_ml.tracking.redact import RedactingFilter

VERBOSE_ENV = "BIGCAT_VERBOSE"
TF_LOG_LEVEL_ENV = "TF_CPP_MIN_LOG_LEVEL"
# MLflow's tqdm bars for every artifact download (mlflow.environment_variables).
MLFLOW_PROGRESS_BAR_ENV = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"
PYTHON_WARNINGS_ENV = "PYTHONWARNINGS"
PROGRESS_LOGGER = "bigcat_ml.runtime.progress"

# (message start, category, why it is harmless): Python warnings the libraries raise on
# every run of the chain, where nothing is wrong and the user can do nothing about them.
KNOWN_HARMLESS_WARNINGS: Tuple[Tuple[str, type, str], ...] = (
    ("pyarrow.localfs is deprecated", FutureWarning,
     "petastorm 0.13.1 uses pyarrow's legacy filesystem (pinned, see pyproject.toml); also in Spark's workers"),
    ("Your input ran out of data", UserWarning,
     "Keras 3 says so at the end of every epoch over a dataset of unknown length, though nothing ran out "
     "(keras-team/keras#23360): one epoch is one pass over the Subset, without steps_per_epoch"),
    ("The specified dataset source can be interpreted in multiple ways", UserWarning,
     "MLflow registers its local-artifact dataset source for both '' and 'file' URIs: the same class twice"),
    ("Tensorflow will convert all unicode strings back to bytes type", UnicodeWarning,
     "petastorm's tf.data bridge; the chips' string columns are decoded where they are read"),
)
# TensorFlow's advice on retracing: each loaded Keras model traces its predict function
# once per batch shape (a model's last, smaller batch; a fine-tuned model loaded by train's
# checks and again by evaluate), which TensorFlow counts as "frequent retracing".
_TF_RETRACING = "triggered tf.function retracing"


def verbose() -> bool:
    """Whether the user asked for the libraries' full logs (``BIGCAT_VERBOSE``)."""
    return os.environ.get(VERBOSE_ENV, "").lower() in ("1", "true", "yes")


def set_verbose(on: bool) -> None:
    """Export the choice for the processes this one starts (the JVM, Python workers) and
    set TensorFlow's C++ log level before TensorFlow is imported (the rest of TensorFlow's
    start-up noise: :mod:`bigcat_ml.runtime.tf_logs`) and MLflow's download bars."""
    os.environ[VERBOSE_ENV] = "1" if on else "0"
    os.environ[TF_LOG_LEVEL_ENV] = "0" if on else "2"
    os.environ[MLFLOW_PROGRESS_BAR_ENV] = "true" if on else "false"


def worker_env() -> Dict[str, str]:
    """The verbosity settings Spark's Python workers need on any cluster (``spark.executorEnv``);
    without verbose, also the known harmless warnings as ``PYTHONWARNINGS`` filters."""
    env = {name: os.environ[name] for name in (VERBOSE_ENV, TF_LOG_LEVEL_ENV) if name in os.environ}
    if not verbose():
        filters = [f"ignore:{message}:{category.__name__}" for message, category, _ in KNOWN_HARMLESS_WARNINGS]
        env[PYTHON_WARNINGS_ENV] = ",".join(filter(None, [os.environ.get(PYTHON_WARNINGS_ENV, ""), *filters]))
    return env


def configure_logging(level: int = logging.INFO) -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    root = logging.getLogger()
    # No URI credentials on the console, whichever library logs them.
    for handler in root.handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
    for noisy in ("py4j", "alembic", "urllib3", "matplotlib", "PIL"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if not verbose():
        _report_only(root)
        _quiet_libraries()


def _report_only(root: logging.Logger) -> None:
    """Console handlers pass only progress; warnings and errors go to one stderr handler.

    Hydra's console handler writes every level to stdout, and a sweep configures logging
    again for each job, so this runs per job (and once only per set of handlers)."""
    if any(isinstance(h, _WarningsToStderr) for h in root.handlers):
        return
    for handler in root.handlers:
        if type(handler) is logging.StreamHandler and not any(isinstance(f, _ProgressOnly) for f in handler.filters):
            handler.addFilter(_ProgressOnly())
    warnings_handler = _WarningsToStderr(sys.stderr)
    warnings_handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    warnings_handler.addFilter(RedactingFilter())
    root.addHandler(warnings_handler)


class _ProgressOnly(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.name == PROGRESS_LOGGER


class _WarningsToStderr(logging.StreamHandler):
    """Warnings and errors of every logger but progress (which the console handlers show)."""

    def __init__(self, stream) -> None:
        super().__init__(stream)
        self.setLevel(logging.WARNING)

    def filter(self, record: logging.LogRecord) -> bool:
        return record.name != PROGRESS_LOGGER and super().filter(record)


class _NotRetracing(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return _TF_RETRACING not in record.getMessage()


def _quiet_libraries() -> None:
    """The known harmless warnings, TensorFlow's retracing advice and MLflow's INFO logs
    (its own handler, "Creating initial MLflow database tables...") stay off the console."""
    # petastorm 0.13.1 uses pyarrow's legacy dataset API (pinned, see pyproject.toml).
    warnings.filterwarnings("ignore", category=FutureWarning, module="petastorm")
    for message, category, _ in KNOWN_HARMLESS_WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=category)
    tensorflow = logging.getLogger("tensorflow")
    if not any(isinstance(f, _NotRetracing) for f in tensorflow.filters):
        tensorflow.addFilter(_NotRetracing())
    logging.getLogger("mlflow").setLevel(logging.WARNING)
