"""The two tables both inference paths return, one row per chip: their columns and the count check."""
from __future__ import annotations

import logging

from bigcat_ml.chips import schema
from bigcat_ml.oid.rejects import REJECTS_SCHEMA

log = logging.getLogger(__name__)

CHIP = "chip"
# Every ChipSchema column but the JPEG bytes: the predictions need no join back.
METADATA_COLUMNS = tuple(name for name in schema.ChipSchema.fields if name != CHIP)
PREDICTION_COLUMNS = ("top_k_indices", "top_k_labels", "top_k_probs")
REJECT_COLUMNS = tuple(REJECTS_SCHEMA.fieldNames())
REASON, DETAIL = "reason", "detail"


def check_counts(read: int, predictions: int, rejects: int) -> None:
    if read != predictions + rejects:
        raise RuntimeError(f"inference lost chips: read {read}, predicted {predictions}, rejected {rejects}")
    log.info("predicted %d chips, rejected %d (of %d read)", predictions, rejects, read)
