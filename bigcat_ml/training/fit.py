"""Fit the classifier: seeded, early-stopped on the validation Subset, best epoch kept.

The same function runs in one process and in every worker of a data-parallel run (given
the worker's ``tf.distribute`` strategy), so the two paths build the same model, read the
same data and stop on the same rule; one process trains with ``Model.fit``, a strategy with
:func:`bigcat_ml.training.strategy_loop.fit_with_strategy`.
"""
from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence

from bigcat_ml.chips import readers
from bigcat_ml.scoring.models import local_weights_file
from bigcat_ml.training.data import ChipExamples, SubsetStats, quiet_petastorm, subset_pipeline
from bigcat_ml.training.model import build_classifier, compile_classifier
from bigcat_ml.training.strategy_loop import fit_with_strategy

if TYPE_CHECKING:
    import keras
    import tensorflow as tf

log = logging.getLogger(__name__)

MONITOR = "val_loss"  # early stopping and best-epoch choice; accuracy ties on small validation sets


@dataclass
class FitResult:
    """The model at its best epoch, the per-epoch history and what each Subset supplied."""

    model: "keras.Model"
    history: Dict[str, List[float]]
    best_epoch: int  # 0-based
    train_stats: SubsetStats
    validation_stats: SubsetStats

    @property
    def best_metrics(self) -> Dict[str, float]:
        return {name: values[self.best_epoch] for name, values in self.history.items()}


def augmentation(train_cfg: Any) -> Optional[Any]:
    """The augment config, or None when every augmentation is off."""
    augment = train_cfg.augment
    return augment if (augment.flip or augment.crop > 0 or augment.colour > 0) else None


def seed_everything(seed: int) -> None:
    """Python, NumPy and TensorFlow generators, and deterministic TensorFlow kernels."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def fit_classifier(
    train_cfg: Any,
    model_cfg: Any,
    class_names: Sequence[str],
    strategy: Optional["tf.distribute.Strategy"] = None,
    callbacks: Sequence["keras.callbacks.Callback"] = (),
    verbose: int = 2,
) -> FitResult:
    """Train ``model_cfg``'s backbone + a head over ``class_names`` (output order) as
    ``train_cfg`` says (the ``train`` and ``model`` config sections)."""
    import keras

    if model_cfg.source:
        raise ValueError("model.source names an already trained model; unset it (model.source=null) to train")
    if train_cfg.epochs < 1 or train_cfg.batch_size < 1:
        raise ValueError(f"train.epochs and train.batch_size must be at least 1; got {train_cfg.epochs}, {train_cfg.batch_size}")
    quiet_petastorm()
    seed_everything(int(train_cfg.seed))
    with local_weights_file(model_cfg) as weights_file, (strategy.scope() if strategy else contextlib.nullcontext()):
        model = build_classifier(
            model_cfg, weights_file, len(class_names), bool(train_cfg.freeze_backbone), train_cfg.batchnorm_momentum
        )
        compile_classifier(model, float(train_cfg.learning_rate))
    seed = int(train_cfg.seed)
    train = ChipExamples(train_cfg.dataset, train_cfg.train_subset, class_names, model_cfg, augmentation(train_cfg), seed)
    validation = ChipExamples(train_cfg.dataset, train_cfg.validation_subset, class_names, model_cfg, None, seed)
    buffer = min(int(train_cfg.shuffle_buffer), max(1, readers.count_chips(train_cfg.dataset, train_cfg.train_subset)))
    stopper = keras.callbacks.EarlyStopping(
        monitor=MONITOR, patience=int(train_cfg.early_stopping_patience), restore_best_weights=True
    )
    train_data = subset_pipeline(train, int(train_cfg.batch_size), buffer, seed)
    validation_data = subset_pipeline(validation, int(train_cfg.batch_size))
    if strategy is None:
        history = model.fit(
            train_data, validation_data=validation_data, epochs=int(train_cfg.epochs), callbacks=[stopper, *callbacks],
            verbose=verbose, shuffle=False,  # subset_pipeline shuffles; Keras cannot shuffle a tf.data.Dataset
        ).history
    else:  # Keras 3's fit cannot run under MultiWorkerMirroredStrategy (see strategy_loop)
        history = fit_with_strategy(
            model, strategy, train_data, validation_data, int(train_cfg.epochs), int(train_cfg.batch_size), [stopper, *callbacks]
        )
    values = {name: [float(v) for v in series] for name, series in history.items()}
    best = int(stopper.best_epoch) if stopper.best_weights is not None else len(values[MONITOR]) - 1
    log.info("trained %d epochs; best epoch %d: %s", len(values[MONITOR]), best + 1, {k: round(v[best], 4) for k, v in values.items()})
    return FitResult(model, values, best, train.stats, validation.stats)
