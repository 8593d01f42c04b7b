"""The content digest of chip rows: what a run records to say which chips it wrote or read.

Independent of row order, partitioning and file names: each row is hashed with ``sha2``,
its 256 bits are summed in four 64-bit chunks across rows (an additive multiset hash,
computed by Spark without collecting rows), and the row count and the four sums are
hashed once more. A content fingerprint, not a security seal. Being a sum, it can be
computed by parts (per class, per partition) and the parts added: the writer takes it
from the aggregation that also counts the chips and rejects (:func:`chunk_sums`,
:func:`combine`), with no pass of its own.
"""
from __future__ import annotations

import hashlib
import json
from typing import List, Sequence

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from bigcat_ml.chips.schema import ChipSchema

CHUNK_COLUMNS = tuple(f"chunk_{i}" for i in range(4))  # the 64-bit chunks of a row's sha256


def chunk_sums() -> List[Column]:
    """Aggregate columns ``chunk_0`` .. ``chunk_3``: the sums over a group's chip rows
    (every ChipSchema column, chip bytes included) of their row hash's 64-bit chunks."""
    identity = [F.coalesce(F.col(c).cast("string"), F.lit("<null>")) for c in ChipSchema.fields if c != "chip"]
    row_hash = F.sha2(F.concat_ws("\x1f", *identity, F.sha2(F.col("chip"), 256)), 256)
    return [
        F.sum(F.conv(F.substring(row_hash, 1 + 16 * i, 16), 16, 10).cast("decimal(38,0)")).alias(name)
        for i, name in enumerate(CHUNK_COLUMNS)
    ]


def combine(rows: int, sums: Sequence[int]) -> str:
    """The digest of ``rows`` chip rows whose row-hash chunks add up to ``sums``."""
    combined = json.dumps([int(rows), *[str(int(v)) for v in sums]])
    return hashlib.sha256(combined.encode("utf-8")).hexdigest()


def content_digest(chips: DataFrame) -> str:
    """sha256 hex digest of the chip rows (every column, chip bytes included), in one Spark job."""
    row = chips.agg(F.count(F.lit(1)), *chunk_sums()).first()
    return combine(row[0], [v or 0 for v in row[1:]])
