"""Predictions for every chip of a chip dataset in this process: petastorm into ``tf.data``."""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import pandas as pd
from petastorm.transform import TransformSpec

from bigcat_ml.chips import readers
from bigcat_ml.runtime.progress import progress
from bigcat_ml.scoring.inference.classifier import shared_classifier, warn_if_random
from bigcat_ml.scoring.inference.tables import (
    CHIP,
    DETAIL,
    METADATA_COLUMNS,
    PREDICTION_COLUMNS,
    REASON,
    REJECT_COLUMNS,
    check_counts,
)
from bigcat_ml.scoring.models import as_model_config, local_weights_file


def predict_local(
    dataset_output_path: str, model_cfg: Any, eval_cfg: Any, subset: Optional[str] = None
) -> Tuple[pd.DataFrame, pd.DataFrame]:
    """Predict every chip of the dataset at ``<dataset_output_path>/chips`` in this process
    (only those of one ``Subset`` when ``subset`` is given).

    Reads with petastorm's batch reader into ``tf.data`` (``make_petastorm_dataset``).
    The ``chip`` field is re-typed to bytes (a TransformSpec) so the JPEGs arrive
    undecoded and a corrupt one is a ``decode_error`` reject rather than a failed read.
    Returns pandas (predictions, rejects) with the same columns as
    :func:`~bigcat_ml.scoring.inference.spark.predict_spark`; list columns hold numpy
    arrays, as Spark's ``toPandas`` gives. The rows read are checked against the Parquet
    footers' row count, so a short read cannot pass.
    """
    from petastorm.tf_utils import make_petastorm_dataset  # imports TensorFlow

    model_cfg = as_model_config(model_cfg)
    warn_if_random(model_cfg)
    with local_weights_file(model_cfg) as weights_file:
        classifier = shared_classifier(model_cfg, weights_file, int(eval_cfg.top_k))
    batch_size = int(eval_cfg.batch_size)
    predicted: List[pd.DataFrame] = []
    rejected: List[pd.DataFrame] = []
    read = 0
    # An explicit identity function: petastorm 0.13.1 calls TransformSpec.func unchecked when
    # a predicate (the subset filter) is set.
    as_bytes = TransformSpec(_unchanged, edit_fields=[(CHIP, np.bytes_, (), False)])
    stored = readers.count_chips(dataset_output_path, subset)
    with readers.open_batch_reader(
        dataset_output_path,
        transform_spec=as_bytes,
        num_epochs=1,
        shuffle_row_groups=False,
        predicate=readers.subset_predicate(subset),
    ) as reader, progress(f"predict {model_cfg.name}", stored, "chip") as done:
        for row_group in make_petastorm_dataset(reader).as_numpy_iterator():
            frame = _row_group_frame(row_group)
            read += len(frame)
            for start in range(0, len(frame), batch_size):
                batch = frame.iloc[start : start + batch_size]
                good, bad = _split(batch, classifier.score(list(batch[CHIP])))
                predicted.append(good)
                rejected.append(bad)
                done.update(len(batch))
    if read != stored:
        raise RuntimeError(f"read {read} chips from {dataset_output_path} but its Parquet files hold {stored}")
    predictions = _concat(predicted, [*METADATA_COLUMNS, *PREDICTION_COLUMNS])
    rejects = _concat(rejected, list(REJECT_COLUMNS))
    check_counts(read, len(predictions), len(rejects))
    return predictions, rejects


def _unchanged(frame: pd.DataFrame) -> pd.DataFrame:
    return frame


def _row_group_frame(row_group: Any) -> pd.DataFrame:
    """tf.data gives strings as bytes: decode the text columns, keep ``chip`` as bytes."""
    columns = row_group._asdict()
    for name, values in columns.items():
        if name != CHIP and values.dtype == object:
            columns[name] = np.array([v.decode("utf-8") for v in values], dtype=object)
    return pd.DataFrame(columns)


def _concat(frames: List[pd.DataFrame], columns: List[str]) -> pd.DataFrame:
    frames = [f for f in frames if not f.empty]
    return pd.concat(frames, ignore_index=True)[columns] if frames else pd.DataFrame(columns=columns)


def _split(metadata: pd.DataFrame, scores: Dict[str, np.ndarray]) -> Tuple[pd.DataFrame, pd.DataFrame]:
    """(prediction rows, reject rows) of one scored batch, pandas."""
    failed = pd.notna(scores[REASON])
    predictions = metadata.loc[~failed, list(METADATA_COLUMNS)].assign(
        **{c: list(scores[c][~failed]) for c in PREDICTION_COLUMNS}
    )
    rejects = metadata.loc[failed].assign(reason=scores[REASON][failed], detail=scores[DETAIL][failed])
    return predictions, rejects[list(REJECT_COLUMNS)]
