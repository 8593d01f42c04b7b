"""The CSV -> Parquet cache: parsed once per source version, re-converted when the source changes."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from bigcat_ml.oid import csv_cache
from bigcat_ml.oid.schemas import IMAGE_LABEL_COLUMNS, IMAGE_LABELS_SCHEMA

pytestmark = pytest.mark.spark

TIGER, CAT = "/m/07dm6", "/m/01yrx"


def write_labels(path: Path, rows) -> None:
    path.write_text("\n".join([",".join(IMAGE_LABEL_COLUMNS), *(",".join(map(str, r)) for r in rows)]) + "\n")


def test_a_csv_is_converted_once_and_a_changed_source_is_converted_again(spark, tmp_path):
    source, cache = tmp_path / "train-annotations-human-imagelabels-boxable.csv", str(tmp_path / "cache")
    write_labels(source, [("aa01", "verification", TIGER, 1), ("aa02", "verification", CAT, 0)])

    first = csv_cache.cached_csv(spark, str(source), IMAGE_LABELS_SCHEMA, cache)
    entry = csv_cache.entry_path(cache, str(source), IMAGE_LABELS_SCHEMA)
    assert sorted((r.ImageID, r.Confidence) for r in first.collect()) == [("aa01", 1.0), ("aa02", 0.0)]
    marker = Path(entry) / csv_cache.DONE_MARKER
    written_at = marker.stat().st_mtime_ns

    again = csv_cache.cached_csv(spark, str(source), IMAGE_LABELS_SCHEMA, cache)
    assert again.filter(again.LabelName == TIGER).count() == 1
    assert marker.stat().st_mtime_ns == written_at  # read, not converted again

    write_labels(source, [("aa03", "verification", TIGER, 1)])
    os.utime(source, ns=(written_at + 10**9, written_at + 10**9))
    changed = csv_cache.cached_csv(spark, str(source), IMAGE_LABELS_SCHEMA, cache)
    assert csv_cache.entry_path(cache, str(source), IMAGE_LABELS_SCHEMA) != entry
    assert [r.ImageID for r in changed.collect()] == ["aa03"]


def test_a_csv_with_a_malformed_row_is_refused_and_leaves_no_cache_entry(spark, tmp_path):
    source, cache = tmp_path / "labels.csv", str(tmp_path / "cache")
    write_labels(source, [("aa01", "verification", TIGER, "high")])
    with pytest.raises(ValueError, match=r"1 malformed row\(s\) in .*labels.csv"):
        csv_cache.cached_csv(spark, str(source), IMAGE_LABELS_SCHEMA, cache)
    assert not Path(csv_cache.entry_path(cache, str(source), IMAGE_LABELS_SCHEMA)).exists()


def test_reading_a_cached_entry_starts_no_spark_job_and_reads_only_the_columns_asked(spark, tmp_path):
    """A selection opens six entries: each footer read to infer a schema would be a job."""
    source, cache = tmp_path / "labels.csv", str(tmp_path / "cache")
    write_labels(source, [("aa01", "verification", TIGER, 1)])
    csv_cache.cached_csv(spark, str(source), IMAGE_LABELS_SCHEMA, cache)
    tracker = spark.sparkContext.statusTracker()
    jobs_before = set(tracker.getJobIdsForGroup())

    entry = csv_cache.cached_csv(spark, str(source), IMAGE_LABELS_SCHEMA, cache)
    assert set(tracker.getJobIdsForGroup()) == jobs_before
    plan = entry.select("LabelName")._jdf.queryExecution().executedPlan().toString()
    assert "ReadSchema: struct<LabelName:string>" in plan
