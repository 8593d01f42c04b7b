"""Typed Spark readers for the Open Images CSV files, with errors a user can act on.

Every path may be local or a URI; the CSVs themselves are read by Spark. Which of the
configured candidate files exists is asked of :mod:`bigcat_ml.storage.fs`.

The annotation files are large (V6 train boxes: 14.6 M rows), so malformed rows are not
looked for in a separate pass: :func:`read_csv` keeps Spark's raw text of any row it
cannot parse (PERMISSIVE mode) and :func:`bad_row` flags it, so a caller filters
"wanted OR bad" in its single scan and checks the small result with :func:`check_rows`.
"""
from __future__ import annotations

import csv
import logging
from functools import reduce
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Union

from pyspark.errors import AnalysisException
from pyspark.sql import Column, DataFrame, Row, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StringType, StructField, StructType

from bigcat_ml.oid import files
from bigcat_ml.oid.schemas import IMAGE_ID, LABEL_NAME, SUBSET

log = logging.getLogger(__name__)

# Spark's raw text of a row it could not parse; null for good rows.
CORRUPT_COLUMN = "_corrupt_record"
SUBSET_COLUMN = SUBSET  # the column the readers add: which subset's file a row came from
LABEL_NAME_COLUMN = LABEL_NAME
# The ImageID as the file spells it (trimmed, case kept), beside the normalised one, so
# that two IDs that only normalisation makes equal can be reported.
RAW_IMAGE_ID = "_raw_image_id"
MAX_REPORTED_ROWS = 5
# Characters of a bad row an error shows: a malformed line may be megabytes long.
MAX_SHOWN_CHARS = 200
FILE_HINT = "check data.root and the data.* file settings (for the generated sample, run `python -m bigcat_ml.sample_data`)"


def normalize_image_id(column: Column) -> Column:
    """ImageIDs compare lower-case and trimmed: file names may be upper-case (``ABC.jpg``)."""
    return F.lower(F.trim(column))


def normalize_mid(column: Column) -> Column:
    """MIDs compare trimmed, case kept (``/m/0449p`` and `` /m/0449p`` are one class)."""
    return F.trim(column)


def load_or_explain(path: str, load: Callable[[], DataFrame]) -> DataFrame:
    """Run a Spark ``load`` of ``path``, turning "path does not exist" into FileNotFoundError."""
    try:
        return load()
    except AnalysisException as err:
        if err.getErrorClass() == "PATH_NOT_FOUND":
            raise FileNotFoundError(f"{path} does not exist: {FILE_HINT}") from err
        raise


def read_whole_text(spark: SparkSession, path: str) -> str:
    """The whole content of one small text file (e.g. the hierarchy JSON)."""
    rows = load_or_explain(path, lambda: spark.read.text(path, wholetext=True)).collect()
    if len(rows) != 1:
        raise ValueError(f"{path}: expected one file, found {len(rows)}")
    return rows[0][0]


def read_header(spark: SparkSession, path: str) -> List[str]:
    """Column names from the first line of a CSV file (a BOM and spaces stripped)."""
    first = load_or_explain(path, lambda: spark.read.text(path)).limit(1).collect()
    if not first:
        raise ValueError(f"{path} is empty: expected a header row and Open Images rows; {FILE_HINT}")
    names = next(csv.reader([first[0][0]]))
    return [name.strip().lstrip("\ufeff") for name in names]


def read_csv(spark: SparkSession, path: str, schema: StructType, header: bool = True) -> DataFrame:
    """One Open Images CSV as ``schema``'s typed columns (in that order) plus :data:`CORRUPT_COLUMN`.

    With ``header``, columns are found by name, so extra columns (V6 train boxes carry
    ``XClick1X``...) and any column order are fine; without, the file must have exactly
    ``schema``'s columns. ImageID, when present, is normalised (:func:`normalize_image_id`)
    and its trimmed spelling kept in :data:`RAW_IMAGE_ID`; LabelName is trimmed
    (:func:`normalize_mid`). Lazy: nothing is scanned beyond the header line.
    """
    required = schema.fieldNames()
    if header:
        found = read_header(spark, path)
        missing = [c for c in required if c not in found]
        if missing:
            raise ValueError(
                f"{path}: missing column(s) {missing}; header found: {shown_text(str(found), quote=False)}. "
                f"Expected the Open Images columns {required} (extra columns are fine)."
            )
        extra = [c for c in found if c not in required]
        if extra:
            log.debug("%s: ignoring extra columns %s", path, extra)
        types = {f.name: f.dataType for f in schema.fields}
        # Spark applies a user schema by position, so it must follow the file's header.
        file_schema = StructType([StructField(c, types.get(c, StringType()), True) for c in found])
    else:
        file_schema = StructType(list(schema.fields))
    file_schema = file_schema.add(CORRUPT_COLUMN, StringType(), True)
    df = load_or_explain(
        path,
        lambda: spark.read.csv(
            path,
            schema=file_schema,
            header=header,
            mode="PERMISSIVE",
            columnNameOfCorruptRecord=CORRUPT_COLUMN,
        ),
    ).select(*required, CORRUPT_COLUMN)
    if IMAGE_ID in required:
        df = df.withColumn(RAW_IMAGE_ID, F.trim(F.col(IMAGE_ID))).withColumn(IMAGE_ID, normalize_image_id(F.col(IMAGE_ID)))
    if LABEL_NAME_COLUMN in required:
        df = df.withColumn(LABEL_NAME_COLUMN, normalize_mid(F.col(LABEL_NAME_COLUMN)))
    return df


def subset_files(per_subset: Mapping[str, Any], subsets: Sequence[str], setting: str) -> Dict[str, str]:
    """Subset -> the existing file of a ``data.<setting>`` per-subset setting (candidates tried in order)."""
    return files.resolve_subsets(per_subset, subsets, setting, FILE_HINT)


def read_subsets(spark: SparkSession, files: Mapping[str, str], schema: StructType) -> DataFrame:
    """The files of every subset (:func:`subset_files`) read with :func:`read_csv` and
    unioned, with a ``Subset`` column saying which file each row came from."""
    frames = [
        read_csv(spark, path, schema).withColumn(SUBSET_COLUMN, F.lit(subset)) for subset, path in files.items()
    ]
    return reduce(DataFrame.unionByName, frames)


def bad_row(schema: StructType) -> Column:
    """True for a row Spark could not parse or that lacks one of ``schema``'s values."""
    missing = [F.col(c).isNull() for c in schema.fieldNames()]
    return reduce(lambda a, b: a | b, missing, F.col(CORRUPT_COLUMN).isNotNull())


def shown_text(text: str, quote: bool = True) -> str:
    """``text`` (quoted) for an error, cut to :data:`MAX_SHOWN_CHARS` with its length said."""
    cut = text[:MAX_SHOWN_CHARS]
    shown = repr(cut) if quote else cut
    return shown if len(text) <= MAX_SHOWN_CHARS else f"{shown}... ({len(text):,} characters)"


def _row_text(row: Row, schema: StructType) -> str:
    if row[CORRUPT_COLUMN] is not None:
        return shown_text(row[CORRUPT_COLUMN])
    values = ",".join("" if row[c] is None else str(row[c]) for c in schema.fieldNames())
    empty = [c for c in schema.fieldNames() if row[c] is None]
    return f"{shown_text(values)} (no value for {', '.join(empty)})"


def check_rows(df: DataFrame, schema: StructType, files: Union[str, Mapping[str, str]], total: Optional[int] = None) -> None:
    """Raise ValueError naming the file(s) and the offending rows if ``df`` holds bad rows.

    ``df`` comes from :func:`read_csv` (``files`` is its path) or :func:`read_subsets`
    (``files`` is Subset -> path), already filtered down to a small, ideally persisted,
    frame: the count runs first so that it alone computes (and caches) every partition.
    ``total``: the number of bad rows in ``df`` when the caller counted them already, in
    a job that counts other things too (each job is a share of a preprocess call's fixed cost).
    """
    bad = df.filter(bad_row(schema))
    total = bad.count() if total is None else total
    if not total:
        return
    by_subset = isinstance(files, Mapping)
    where = F.col(SUBSET_COLUMN) if by_subset else F.lit(None)
    rows = bad.select(where.alias("_where"), *schema.fieldNames(), CORRUPT_COLUMN).limit(MAX_REPORTED_ROWS).collect()
    path_of = {r["_where"]: files[r["_where"]] if by_subset else files for r in rows}
    numeric = [f.name for f in schema.fields if f.dataType != StringType()]
    rule = f"every row needs {schema.fieldNames()}" + (f", with numbers in {numeric}" if numeric else "")
    shown = "\n  ".join(f"{path_of[r['_where']]}: {_row_text(r, schema)}" for r in rows)
    raise ValueError(
        f"{total} malformed row(s) in {', '.join(sorted(set(path_of.values())))}: {rule}; "
        f"fix or remove them. First {len(rows)}:\n  {shown}"
    )
