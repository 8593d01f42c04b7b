"""The preprocess key knows the Open Images files it reads: by path, size and time, or by
content with ``reuse_check=full``; and main computes it once and hands it to the step."""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from bigcat_ml import main, preprocess
from bigcat_ml.oid import identity
from bigcat_ml.synthetic.write import BOXES_FILE, generate_sample

V6_BOXES = "oidv6-train-annotations-bbox.csv"


def _sample(make_cfg, *overrides: str):
    cfg = make_cfg(list(overrides))
    generate_sample(Path(cfg.data.root), cfg.data.sample)  # images in root/images, as conf/data/sample.yaml says
    return cfg


def _key(cfg) -> str:
    return preprocess.STEP.key(cfg)


def test_the_boxes_file_that_counts_is_the_candidate_the_readers_read(make_cfg):
    cfg = make_cfg(["data=oid", f"data.root={_sample(make_cfg).data.root}"])  # the sample's files, as downloaded
    v5 = Path(cfg.data.root) / BOXES_FILE.format(subset="train")
    before = _key(cfg)

    (Path(cfg.data.root) / V6_BOXES).write_bytes(v5.read_bytes())  # V6's name comes first
    with_v6 = _key(cfg)
    with v5.open("a") as stream:
        stream.write("\n")  # the V5 file is no longer read

    assert with_v6 != before
    assert _key(cfg) == with_v6


def test_a_replaced_image_moves_the_key_and_a_full_check_sees_a_same_size_edit(make_cfg):
    cfg = _sample(make_cfg)
    full = make_cfg(["reuse_check=full"])
    image = next((Path(cfg.data.images_path) / "train").glob("*.jpg"))
    before, before_full = _key(cfg), _key(full)

    data = bytearray(image.read_bytes())
    stat = image.stat()
    data[len(data) // 2] ^= 0xFF
    image.write_bytes(bytes(data))
    os.utime(image, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # same size, old time put back
    assert _key(cfg) == before  # the listing cannot see it
    assert _key(full) != before_full

    image.write_bytes(bytes(data) + b"more")
    assert _key(cfg) != before


def test_the_images_parquet_enters_the_key_of_data_sample_parquet(make_cfg):
    cfg = _sample(make_cfg, "data=sample_parquet")
    before = _key(cfg)

    with Path(cfg.data.images_path).open("ab") as stream:
        stream.write(b"appended")

    assert _key(cfg) != before


def test_main_lists_a_step_s_inputs_once_and_hands_the_step_its_key(make_cfg, monkeypatch):
    cfg = _sample(make_cfg)
    listed, handed = [], []
    real = identity.input_identity
    monkeypatch.setattr(identity, "input_identity", lambda *a, **k: listed.append(1) or real(*a, **k))
    # preprocess as main sees it, its run replaced by one that records the key it is handed
    recorded = dataclasses.replace(preprocess.STEP, run=lambda cfg, key=None: handed.append(key) or {"run_id": "recorded"})
    monkeypatch.setattr(main, "chain", lambda cfg: (recorded,))

    main.run(cfg)

    assert len(listed) == 1
    assert handed == [_key(cfg)]
