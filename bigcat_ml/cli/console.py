"""Console logging for entry points; library modules only call ``logging.getLogger``.

Start-up noise of Spark (log4j notices such as ``WARN NativeCodeLoader``) and TensorFlow's
C++ INFO/WARNING logs (oneDNN banner, CPU-feature lines) stay out of the terminal unless
``verbose`` (config key, or the ``BIGCAT_VERBOSE=1`` environment variable, which Spark's
Python workers receive through ``spark.executorEnv``).
"""
import logging
import os
import warnings
from typing import Dict

from bigcat_ml.tracking.redact import RedactingFilter

VERBOSE_ENV = "BIGCAT_VERBOSE"
TF_LOG_LEVEL_ENV = "TF_CPP_MIN_LOG_LEVEL"


def verbose() -> bool:
    """Whether the user asked for the libraries' full logs (``BIGCAT_VERBOSE``)."""
    return os.environ.get(VERBOSE_ENV, "").lower() in ("1", "true", "yes")


def set_verbose(on: bool) -> None:
    """Export the choice for the processes this one starts (the JVM, Python workers) and
    set TensorFlow's C++ log level before TensorFlow is imported (the rest of TensorFlow's
    start-up noise: :mod:`bigcat_ml.runtime.tf_logs`)."""
    os.environ[VERBOSE_ENV] = "1" if on else "0"
    os.environ[TF_LOG_LEVEL_ENV] = "0" if on else "2"


def worker_env() -> Dict[str, str]:
    """The verbosity settings Spark's Python workers need on any cluster (``spark.executorEnv``)."""
    return {name: os.environ[name] for name in (VERBOSE_ENV, TF_LOG_LEVEL_ENV) if name in os.environ}


def configure_logging(level: int = logging.INFO) -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # No URI credentials on the console, whichever library logs them.
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
    # petastorm 0.13.1 uses pyarrow's legacy dataset API (pinned, see pyproject.toml).
    warnings.filterwarnings("ignore", category=FutureWarning, module="petastorm")
    for noisy in ("py4j", "alembic", "urllib3", "matplotlib", "PIL"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
