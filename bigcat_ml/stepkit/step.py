"""What a runnable step is and how it starts: the :class:`Step` record, the finalized
config (:func:`compose`, :func:`finalize`) and the one Hydra entry point every
``python -m bigcat_ml.<step>`` shares.

A record says what a step is (its name and function), what its result depends on (the
config sections and non-config inputs its reuse key covers), whether ``main`` runs it
and how to tell that a finished run's output is still there. The registry of records is
``main``'s (:data:`bigcat_ml.main.STEPS`); this module knows no step.
"""
from __future__ import annotations

import contextlib
import logging
import sys
from dataclasses import dataclass, field
from typing import Any, Callable, ContextManager, Dict, List, Mapping, Optional, Sequence, Tuple

import hydra
from omegaconf import DictConfig

from bigcat_ml.chips.family import default_output
from bigcat_ml.config.checks import check_config
from bigcat_ml.config.compose import CONF_DIR, absolute_path, composed
import bigcat_ml.oid.files  # noqa: F401  (registers the oid_files resolver conf/data uses)
from bigcat_ml.runtime.console import configure_logging, set_verbose
from bigcat_ml.runtime.signals import exit_code, signals_unwind
from bigcat_ml.stepkit.preflight import check_inputs
from bigcat_ml.tracking.reuse import step_key

log = logging.getLogger(__name__)

StepResult = Dict[str, Any]


def _no_inputs(cfg: DictConfig) -> Mapping[str, str]:
    return {}


def _always(cfg: DictConfig, run_id: str) -> bool:
    return True


def _never(cfg: DictConfig) -> bool:
    return False


def in_every_chain(cfg: DictConfig) -> bool:
    """``in_chain`` of the steps ``main`` runs for every config."""
    return True


def _hands_over_nothing(cfg: DictConfig, run_id: str) -> None:
    return None


def _claims_nothing(cfg: DictConfig) -> ContextManager[None]:
    return contextlib.nullcontext()


@dataclass(frozen=True)
class Step:
    """A runnable step.

    ``run(cfg, key=None)`` runs it; ``key`` is its reuse key when the caller computed it
    already (``main`` does, to look for a finished run), so that it is computed once.
    ``sections`` are the config sections its result depends on; ``ignore`` the dotted keys
    inside them that change how it runs but not what it produces; ``inputs`` adds what is
    not config: the identity of every file it reads (a chip dataset's digest, the Open
    Images files' sizes and times, a registered model's resolved version). ``in_chain`` says whether ``main`` runs it for a
    config, ``output_exists(cfg, run_id)`` whether the output that finished run ``run_id``
    recorded is still there, unchanged, so that it can be reused. ``hand_over`` tells the
    later steps of ``main``'s chain what a run (new or reused) produced, by setting their
    config (``train`` sets ``model.source`` to its model). ``claim`` is held while ``main``
    decides to reuse or run the step and runs it, so that of two ``main`` runs producing
    one output the second waits and reuses the first's (preprocess claims its folder).
    ``chain`` gives the steps a run of this one runs, whose inputs are checked before it
    starts (:meth:`runs`): unset, the step alone; ``main``'s is its chain.
    """

    name: str
    run: Callable[..., StepResult]
    sections: Tuple[str, ...] = ()
    ignore: Tuple[str, ...] = ()
    inputs: Callable[[DictConfig], Mapping[str, str]] = field(default=_no_inputs)
    in_chain: Callable[[DictConfig], bool] = field(default=_never)
    output_exists: Callable[[DictConfig, str], bool] = field(default=_always)
    hand_over: Callable[[DictConfig, str], None] = field(default=_hands_over_nothing)
    claim: Callable[[DictConfig], ContextManager[None]] = field(default=_claims_nothing)
    chain: Optional[Callable[[DictConfig], Sequence["Step"]]] = None

    def key(self, cfg: DictConfig, inputs: Optional[Mapping[str, str]] = None) -> str:
        """The reuse key of this step under ``cfg``: its config and its inputs (see :func:`step_key`);
        ``inputs`` when the caller has them already (what ``self.inputs(cfg)`` returns), so that
        what they are read from is read once."""
        return step_key(cfg, self.sections, self.ignore, self.inputs(cfg) if inputs is None else inputs)

    def runs(self, cfg: DictConfig) -> Tuple["Step", ...]:
        """The steps a run of this one runs under ``cfg``, in order."""
        return tuple(self.chain(cfg)) if self.chain else (self,)


def compose(overrides: Optional[List[str]] = None) -> DictConfig:
    """The project config as a step sees it, composed outside ``@hydra.main`` (tests, notebooks, benchmarks)."""
    return finalize(composed(overrides))


def finalize(cfg: DictConfig) -> DictConfig:
    """Refuse unknown keys, out-of-range numbers and bad folder names
    (:func:`bigcat_ml.config.checks.check_config`), make every ``paths.*`` absolute, even one overridden with a relative value, and
    put an unset ``preprocess.output`` at its config's own folder (see
    :func:`bigcat_ml.chips.family.default_output`).

    Entry points call this first, so whatever reads a path later (Spark executors, the
    MLflow tracking URI) sees the location the user meant from their working directory.
    """
    check_config(cfg)
    for key, value in cfg.paths.items():
        cfg.paths[key] = absolute_path(str(value))
    if "preprocess" in cfg and cfg.preprocess.output is None:
        cfg.preprocess.output = default_output(cfg)
    return cfg


def hydra_entry_point(step: Step) -> Callable[[], Any]:
    """Wrap ``step.run`` as a Hydra main (``version_base=1.3``).

    The working directory is left alone (``hydra.job.chdir=false`` in conf/config.yaml)
    and the config is finalized (:func:`finalize`) before the step sees it; the inputs of
    every step it runs are checked first (:mod:`bigcat_ml.stepkit.preflight`). SIGTERM and
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
                check_inputs(cfg, step.name, [ran.name for ran in step.runs(cfg)])  # before any Spark, TensorFlow or MLflow start-up
                return step.run(cfg)
        except KeyboardInterrupt as interrupt:
            _stop_spark()
            log.warning("%s: MLflow runs ended as KILLED, staging removed, Spark stopped", interrupt or "interrupted")
            sys.exit(exit_code(interrupt))

    _main.__doc__ = step.run.__doc__
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
