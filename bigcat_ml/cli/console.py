"""Console logging for entry points; library modules only call ``logging.getLogger``."""
import logging
import warnings

from bigcat_ml.tracking.redact import RedactingFilter


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
