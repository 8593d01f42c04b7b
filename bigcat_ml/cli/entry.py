"""The one shape every ``python -m bigcat_ml.<step>`` entry point shares."""
from __future__ import annotations

import logging
import sys
from typing import Any, Callable

import hydra
from omegaconf import DictConfig

from bigcat_ml.config.compose import CONF_DIR, finalize
from bigcat_ml.runtime.console import configure_logging, set_verbose
from bigcat_ml.cli.preflight import check_task_inputs
from bigcat_ml.runtime.signals import exit_code, signals_unwind

log = logging.getLogger(__name__)


def hydra_entry_point(task: Callable[[DictConfig], Any]) -> Callable[[], Any]:
    """Wrap a step function ``task(cfg)`` as a Hydra main (``version_base=1.3``).

    The working directory is left alone (``hydra.job.chdir=false`` in conf/config.yaml)
    and every ``paths.*`` value is made absolute before the step sees it; the config's
    values and the step's inputs are checked first (:mod:`bigcat_ml.cli.preflight`). SIGTERM and
    SIGINT unwind the step (:mod:`bigcat_ml.runtime.signals`): its MLflow runs end as
    KILLED, a staging folder is deleted, then Spark is stopped and the process exits
    with 128 + the signal's number.
    """

    @hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="config")
    def _main(cfg: DictConfig) -> Any:
        set_verbose(bool(cfg.verbose))
        configure_logging()
        try:
            with signals_unwind():
                cfg = finalize(cfg)
                check_task_inputs(cfg, task)  # before any Spark, TensorFlow or MLflow start-up
                return task(cfg)
        except KeyboardInterrupt as interrupt:
            _stop_spark()
            log.warning("%s: MLflow runs ended as KILLED, staging removed, Spark stopped", interrupt or "interrupted")
            sys.exit(exit_code(interrupt))

    _main.__doc__ = task.__doc__
    return _main


def _stop_spark() -> None:
    """Stop the Spark context a step started, if any (imported lazily: not every step uses Spark).

    Looked up on the Python side: ``SparkSession.getActiveSession`` asks the JVM for the
    calling thread's session, and a signal that interrupted a py4j call leaves that thread
    on a new JVM thread, which has none.
    """
    if "pyspark" not in sys.modules:
        return
    from pyspark import SparkContext

    context = SparkContext._active_spark_context
    if context is not None:
        context.stop()
        log.info("stopped Spark")
