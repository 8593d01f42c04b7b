"""What the steps that read a chip dataset with a model (evaluate, train) add to their
reuse key: the chips by their digest, not by how they were made, and the weights by
:func:`bigcat_ml.scoring.models.weights_identity` (a file by the sha256 of its content,
not by its path; a fine-tuned model by the registry version its URI names now and its
classifier's sha256)."""
from __future__ import annotations

from typing import Callable, Dict

from omegaconf import DictConfig

from bigcat_ml.chips import family
from bigcat_ml.chips.summary import ChipSummary
from bigcat_ml.scoring.models import weights_identity


def chips_summary(cfg: DictConfig, section: str) -> ChipSummary:
    """The summary of the dataset at ``<section>.dataset``; when it is missing, an error
    naming the datasets of this data and classes."""
    return family.read_summary_or_suggest(cfg[section].dataset, f"{section}.dataset", cfg)


def chips_and_weights(cfg: DictConfig, summary: ChipSummary) -> Dict[str, str]:
    """The inputs of a step reading the dataset of ``summary`` with ``cfg.model``: what a
    step that has read the summary already hands to :meth:`Step.key`."""
    return {"dataset_digest": summary.content_digest, "weights": weights_identity(cfg.model)}


def reads_chips_from(section: str) -> Callable[[DictConfig], Dict[str, str]]:
    """A :class:`bigcat_ml.stepkit.step.Step`'s ``inputs`` for a step reading
    ``<section>.dataset`` with ``cfg.model``."""
    return lambda cfg: chips_and_weights(cfg, chips_summary(cfg, section))
