"""The content digest of chip rows: what a run records to say which chips it wrote or read."""
from __future__ import annotations

import hashlib
import json

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from bigcat_ml.chips.schema import ChipSchema


def content_digest(chips: DataFrame) -> str:
    """sha256 hex digest of the chip rows (every column, chip bytes included).

    Independent of row order, partitioning and file names: each row is hashed with
    ``sha2``, its 256 bits are summed in four 64-bit chunks across rows (an additive
    multiset hash, computed by Spark without collecting rows), and the row count and
    the four sums are hashed once more. A content fingerprint, not a security seal.
    """
    identity = [
        F.coalesce(F.col(c).cast("string"), F.lit("<null>")) for c in ChipSchema.fields if c != "chip"
    ]
    row_hash = F.sha2(F.concat_ws("\x1f", *identity, F.sha2(F.col("chip"), 256)), 256)
    chunks = [
        F.sum(F.conv(F.substring(row_hash, 1 + 16 * i, 16), 16, 10).cast("decimal(38,0)"))
        for i in range(4)
    ]
    row = chips.agg(F.count(F.lit(1)), *chunks).first()
    combined = json.dumps([int(row[0]), *[str(v or 0) for v in row[1:]]])
    return hashlib.sha256(combined.encode("utf-8")).hexdigest()
