"""Training under a ``tf.distribute`` strategy: a loop of ``strategy.run`` steps, not ``Model.fit``.

Keras 3's ``Model.fit`` fails under ``MultiWorkerMirroredStrategy`` (its data adapter tries
to convert the distributed batch, a ``PerReplica``, to a tensor: keras-team/keras#20585),
so the data-parallel path trains with the loop TensorFlow's custom-training guide
describes: the distributed dataset's batches go through one ``tf.function`` step that runs
forward and backward on every replica (``strategy.run``), lets the Keras optimizer
all-reduce the gradients and apply them, and sums the loss, the correct predictions and
the chips over the replicas (``strategy.reduce``). The model, its optimizer, the datasets
and the callbacks (early stopping with the best weights restored) are those of the
single-process ``fit``; the history has its keys (``loss``, ``accuracy``, ``val_loss``,
``val_accuracy``), so both paths log the same metrics.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Dict, List, Sequence, Tuple

if TYPE_CHECKING:
    import keras
    import tensorflow as tf


def _sums_over_replicas(strategy: "tf.distribute.Strategy", step: Callable, batch: Tuple) -> List["tf.Tensor"]:
    """``step`` on each replica's share of ``batch``; its outputs summed over all replicas."""
    import tensorflow as tf

    per_replica = strategy.run(step, args=batch)
    return [strategy.reduce(tf.distribute.ReduceOp.SUM, value, axis=None) for value in per_replica]


def fit_with_strategy(
    model: "keras.Model",
    strategy: "tf.distribute.Strategy",
    train_data: "tf.data.Dataset",
    validation_data: "tf.data.Dataset",
    epochs: int,
    global_batch_size: int,
    callbacks: Sequence["keras.callbacks.Callback"],
) -> Dict[str, List[float]]:
    """Train the compiled ``model`` (built in ``strategy.scope()``); return the per-epoch history.

    The loss of a step is its chips' summed loss over ``global_batch_size`` (chips per step
    over all replicas), so a replica whose share of the last batch is short or empty adds
    proportionally less to the gradient.
    """
    import keras
    import tensorflow as tf

    loss_fn = keras.losses.SparseCategoricalCrossentropy(reduction=None)
    optimizer = model.optimizer
    with strategy.scope():
        optimizer.build(model.trainable_variables)  # its slots created here, not inside a replica step

    def sums(labels: "tf.Tensor", probabilities: "tf.Tensor") -> Tuple["tf.Tensor", ...]:
        """Summed loss, correct top-1 predictions and chips of one replica's batch."""
        per_chip = loss_fn(labels, probabilities)
        correct = tf.equal(tf.argmax(probabilities, axis=-1, output_type=tf.int32), labels)
        return tf.reduce_sum(per_chip), tf.reduce_sum(tf.cast(correct, tf.float32)), tf.cast(tf.size(labels), tf.float32)

    def train_replica(images: "tf.Tensor", labels: "tf.Tensor") -> Tuple["tf.Tensor", ...]:
        with tf.GradientTape() as tape:
            probabilities = model(images, training=True)
            loss_sum, correct, chips = sums(labels, probabilities)
            loss = loss_sum / global_batch_size
        optimizer.apply_gradients(zip(tape.gradient(loss, model.trainable_variables), model.trainable_variables))
        return loss_sum, correct, chips

    def validation_replica(images: "tf.Tensor", labels: "tf.Tensor") -> Tuple["tf.Tensor", ...]:
        return sums(labels, model(images, training=False))

    train_step = tf.function(lambda batch: _sums_over_replicas(strategy, train_replica, batch))
    validation_step = tf.function(lambda batch: _sums_over_replicas(strategy, validation_replica, batch))

    def run_epoch(step: Callable, data: "tf.distribute.DistributedDataset") -> Tuple[float, float]:
        """Mean loss and accuracy over every chip of one pass."""
        totals = [0.0, 0.0, 0.0]
        for batch in data:
            totals = [total + float(value) for total, value in zip(totals, step(batch))]
        loss_sum, correct, chips = totals
        return loss_sum / max(chips, 1.0), correct / max(chips, 1.0)

    distributed_train = strategy.experimental_distribute_dataset(train_data)
    distributed_validation = strategy.experimental_distribute_dataset(validation_data)
    history = keras.callbacks.History()
    callback_list = keras.callbacks.CallbackList([*callbacks, history], model=model, epochs=epochs)
    model.stop_training = False
    callback_list.on_train_begin()
    for epoch in range(epochs):
        callback_list.on_epoch_begin(epoch)
        loss, accuracy = run_epoch(train_step, distributed_train)
        val_loss, val_accuracy = run_epoch(validation_step, distributed_validation)
        logs = {"accuracy": accuracy, "loss": loss, "val_accuracy": val_accuracy, "val_loss": val_loss}
        callback_list.on_epoch_end(epoch, logs)
        if model.stop_training:
            break
    callback_list.on_train_end()
    return history.history
