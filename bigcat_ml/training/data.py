"""One Subset of the chip dataset as a ``tf.data`` pipeline of (model input, class index).

Petastorm's batch reader reads the chips of the Subset (a reader ``predicate``, so other
Subsets' bytes are never loaded); each chip is decoded with the ChipSchema codec,
optionally augmented, then resized and preprocessed by
:func:`bigcat_ml.scoring.models.model_input`, the function inference uses, so a model
sees the same input in training and in ``evaluate``.

Each pass over the data opens a fresh one-epoch reader (Keras iterates the dataset once
per epoch), with one reader worker and row groups in file order: together with the
seeded shuffle buffer and a per-epoch augmentation generator (``[seed, epoch]``) the
batches are the same on every run with the same seed. Chips that cannot be decoded are
skipped and counted in :class:`SubsetStats` (inference counts them as ``decode_error``).
"""
from __future__ import annotations

import itertools
import logging
import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Dict, Iterator, Optional, Sequence, Tuple

import numpy as np

from bigcat_ml.chips import readers, schema
from bigcat_ml.scoring.models import keras_application, model_input
from bigcat_ml.training.augment import augment_chip

if TYPE_CHECKING:
    import tensorflow as tf

log = logging.getLogger(__name__)

# Fields, not names: petastorm reads a name as a regular expression and, on every reader,
# warns that "chip" would also have matched chip_width and chip_height under its old rule.
_COLUMNS = [schema.ChipSchema.fields[name] for name in ("chip", "LabelText", "Subset")]


@dataclass
class SubsetStats:
    """What the last pass over a Subset read: chips used, chips skipped (undecodable)."""

    used: int = 0
    skipped: int = 0
    by_class: Dict[str, int] = field(default_factory=dict)


def _text(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def labelled_chips(output: str, subset: str) -> Iterator[Tuple[bytes, str]]:
    """(JPEG bytes, class display name) of every chip of ``subset``, in file order."""
    with readers.open_batch_reader(
        output,
        schema_fields=_COLUMNS,
        predicate=readers.subset_predicate(subset),
        num_epochs=1,
        shuffle_row_groups=False,
        workers_count=1,
    ) as reader:
        for batch in reader:
            yield from zip(batch.chip, (_text(label) for label in batch.LabelText))


class ChipExamples:
    """A generator factory for ``tf.data.Dataset.from_generator``: one call = one epoch."""

    def __init__(
        self,
        output: str,
        subset: str,
        class_names: Sequence[str],
        model_cfg: Any,
        augment: Optional[Any],
        seed: int,
    ) -> None:
        self.output, self.subset = output, subset
        self.index = {name: i for i, name in enumerate(class_names)}
        self.application = keras_application(model_cfg)
        self.size = int(model_cfg.input_size)
        self.augment, self.seed = augment, seed
        self.stats = SubsetStats()
        self._epochs = itertools.count()

    def __call__(self) -> Iterator[Tuple[np.ndarray, np.int32]]:
        rng = np.random.default_rng([self.seed, next(self._epochs)])
        stats = SubsetStats()
        for jpeg, label in labelled_chips(self.output, self.subset):
            if label not in self.index:
                raise ValueError(
                    f"chip of class {label!r} in {self.output} ({self.subset}) is not among the trained classes "
                    f"{sorted(self.index)}; was the dataset rebuilt with other classes?"
                )
            try:
                chip = schema.decode_chip(jpeg)
            except Exception as error:  # an undecodable chip is skipped and counted
                log.debug("skipping an undecodable %s chip: %s", label, error)
                stats.skipped += 1
                continue
            if self.augment is not None:
                chip = augment_chip(chip, rng, bool(self.augment.flip), float(self.augment.crop), float(self.augment.colour))
            stats.used += 1
            stats.by_class[label] = stats.by_class.get(label, 0) + 1
            yield model_input([chip], self.application, self.size)[0], np.int32(self.index[label])
        if stats.used == 0:
            raise ValueError(f"no usable chips of Subset {self.subset!r} in {self.output}; check train.*_subset")
        self.stats = stats


def subset_pipeline(
    examples: ChipExamples, batch_size: int, shuffle_buffer: int = 0, seed: int = 0
) -> "tf.data.Dataset":
    """Batches of (float32 (n, size, size, 3), int32 (n,)) from ``examples``; shuffled when
    ``shuffle_buffer`` > 0 (seeded, reshuffled each epoch)."""
    import tensorflow as tf

    size = examples.size
    data = tf.data.Dataset.from_generator(
        examples,
        output_signature=(
            tf.TensorSpec((size, size, 3), tf.float32),
            tf.TensorSpec((), tf.int32),
        ),
    )
    if shuffle_buffer > 0:
        data = data.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    options = tf.data.Options()
    # Several workers each read every chip and keep their share (a generator has no files to split).
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    options.deterministic = True
    return data.batch(batch_size).prefetch(2).with_options(options)


def quiet_petastorm() -> None:
    """Petastorm suggests make_reader for Unischema datasets; the batch reader is the choice here."""
    warnings.filterwarnings("ignore", message="Please use make_reader")
