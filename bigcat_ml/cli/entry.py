"""The one shape every ``python -m bigcat_ml.<step>`` entry point shares."""
from __future__ import annotations

from typing import Any, Callable

import hydra
from omegaconf import DictConfig

from bigcat_ml.config.compose import CONF_DIR, finalize
from bigcat_ml.cli.console import configure_logging, set_verbose


def hydra_entry_point(task: Callable[[DictConfig], Any]) -> Callable[[], Any]:
    """Wrap a step function ``task(cfg)`` as a Hydra main (``version_base=1.3``).

    The working directory is left alone (``hydra.job.chdir=false`` in conf/config.yaml)
    and every ``paths.*`` value is made absolute before the step sees it.
    """

    @hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="config")
    def _main(cfg: DictConfig) -> Any:
        set_verbose(bool(cfg.verbose))
        configure_logging()
        return task(finalize(cfg))

    _main.__doc__ = task.__doc__
    return _main
