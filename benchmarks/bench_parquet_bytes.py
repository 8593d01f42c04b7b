"""Bytes read from a Parquet of image bytes grow with the needed images, not with the table.

``data.images_format=parquet`` (the seed's layout: ``ImageID, Data``) reads the ImageID
column first, then only the row groups that hold needed images, Data column only
(:mod:`bigcat_ml.oid.images`). This benchmark writes tables of several sizes, the same
number of needed images each time, runs those two reads in this process and counts the bytes
the process read from files (``rchar`` in ``/proc/self/io``, Linux), against the bytes of
the whole Data column, what a join on the full table scans.

    python -m benchmarks.bench_parquet_bytes     # 5,000 / 20,000 / 80,000 images, 500 needed
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Sequence, Tuple

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from benchmarks.environment import machine, versions
from bigcat_ml.oid import images

RESULTS = Path(__file__).resolve().parent / "results"


def _read_bytes() -> int:
    """Bytes this process has read through read()-like calls (page-cache hits included)."""
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    raise RuntimeError("/proc/self/io has no rchar line")


def _counted(run: Callable[[], Any]) -> Tuple[Any, int, float]:
    before, start = _read_bytes(), time.perf_counter()
    value = run()
    return value, _read_bytes() - before, time.perf_counter() - start


def write_table(path: Path, n_images: int, image_bytes: int, images_per_row_group: int, seed: int) -> List[str]:
    """A Parquet of ``n_images`` rows (ImageID, Data of incompressible bytes); its ImageIDs."""
    rng = np.random.default_rng(seed)
    ids = [f"{v:016x}" for v in rng.integers(0, 2**63, n_images)]
    data = [rng.bytes(image_bytes) for _ in range(n_images)]
    pq.write_table(pa.table({images.IMAGE_ID: ids, images.DATA: data}), path, row_group_size=images_per_row_group)
    return ids


def read_needed(path: str, needed: Sequence[str]) -> Dict[str, int]:
    """The pipeline's two reads, in one process, with the bytes each read: the row index
    (ID column and footer), then the needed rows' Data (footer parsed again, as a task does)."""
    index, index_bytes, _ = _counted(lambda: images.row_index(path))
    chosen = index[index[images.IMAGE_ID].isin(set(needed))]

    def needed_rows() -> int:
        parquet = images.open_parquet(path)
        return sum(len(images.read_rows(parquet, int(group), list(rows[images.ROW])))
                   for group, rows in chosen.groupby(images.ROW_GROUP))

    found, rows_bytes, _ = _counted(needed_rows)
    return {"found": found, "index_bytes": index_bytes, "rows_bytes": rows_bytes,
            "row_groups_touched": int(chosen[images.ROW_GROUP].nunique())}


def measure(folder: Path, n_images: int, needed: int, image_bytes: int, images_per_row_group: int) -> Dict[str, Any]:
    path = folder / f"images-{n_images}.parquet"
    ids = write_table(path, n_images, image_bytes, images_per_row_group, seed=n_images)
    wanted = list(np.random.default_rng(0).choice(ids, needed, replace=False))
    reads, needed_read, needed_s = _counted(lambda: read_needed(str(path), wanted))
    _, whole_read, whole_s = _counted(lambda: pq.read_table(path, columns=[images.DATA]).num_rows)
    metadata = pq.ParquetFile(path).metadata
    return {
        "images": n_images, "needed": needed, **reads, "row_groups": metadata.num_row_groups,
        "file_bytes": path.stat().st_size, "footer_bytes": metadata.serialized_size,
        "bytes_read_needed": needed_read, "seconds_needed": round(needed_s, 3),
        "bytes_read_whole_data_column": whole_read, "seconds_whole": round(whole_s, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, nargs="+", default=[5_000, 20_000, 80_000])
    parser.add_argument("--needed", type=int, default=500)
    # Above 4 KiB, as JPEGs are: pyarrow keeps min/max statistics of binary values up to
    # 4 KiB in the footer, so smaller "images" would make the footer grow 8 KiB per row group.
    parser.add_argument("--image-bytes", type=int, default=16_384, help="bytes per image (incompressible)")
    parser.add_argument("--images-per-row-group", type=int, default=8)
    parser.add_argument("--results-dir", type=Path, default=RESULTS)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        sizes = [measure(Path(folder), n, args.needed, args.image_bytes, args.images_per_row_group) for n in args.images]
    small, large = sizes[0], sizes[-1]
    result = {
        "sizes": sizes,
        "ratios": {
            "table_growth": round(large["file_bytes"] / small["file_bytes"], 2),
            "needed_bytes_growth": round(large["bytes_read_needed"] / small["bytes_read_needed"], 2),
            "needed_rows_bytes_growth": round(large["rows_bytes"] / small["rows_bytes"], 2),
            "needed_over_whole_at_largest": round(large["bytes_read_needed"] / large["bytes_read_whole_data_column"], 3),
        },
        "method": "rchar of /proc/self/io around the row index (index_bytes) and the needed row-group reads (rows_bytes) of bigcat_ml.oid.images, one process",
        "machine": machine(), "versions": versions(),
    }
    args.results_dir.mkdir(parents=True, exist_ok=True)
    out = args.results_dir / "parquet_bytes.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result["ratios"]), "->", out)


if __name__ == "__main__":
    main()
