"""Fine-tuning a trained model (while pruning or quantisation-aware) with the train pipeline."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from fer_edge.convert.options import FineTuneOptions
from fer_edge.data import Split
from fer_edge.preprocess import InputSpec
from fer_edge.tfcompat import tf_and_keras
from fer_edge.train.inputs import class_weights, make_dataset
from fer_edge.train.trainer import compile_model


@dataclass(frozen=True)
class TuneData:
    """What fine-tuning trains and judges on.

    Attributes:
        train: the (augmented) training split, labels in the model's order.
        val: the split Keras accuracy is reported on.
        spec: the model's input spec (normalisation).
        num_classes: the model's class count (one-hot depth).
    """

    train: Split
    val: Split
    spec: InputSpec
    num_classes: int


@dataclass(frozen=True)
class FineTuneResult:
    """What a fine-tuning run did.

    Attributes:
        epochs: epochs run.
        steps: optimizer steps run.
        val_accuracy: Keras accuracy on ``val`` after the last epoch (the model as trained,
            before conversion; the deployed accuracy is measured on the ``.tflite``).
    """

    epochs: int
    steps: int
    val_accuracy: float


def steps_per_epoch(n_images: int, batch_size: int) -> int:
    """Return the number of batches in one epoch of ``n_images``."""
    return max(1, math.ceil(n_images / batch_size))


def fine_tune(
    model: Any,
    data: TuneData,
    options: FineTuneOptions,
    *,
    seed: int = 0,
    callbacks: Sequence[Any] = (),
) -> FineTuneResult:
    """Compile ``model`` like the trainer does and fit it on ``train``, judging on ``val``.

    The trainer's loss (categorical cross-entropy) and Adam are kept, at ``options.lr``:
    fine-tuning only has to recover what pruning or fake quantisation cost. The targets are the
    data's own: FER+ vote distributions where the data has them, one-hot labels otherwise.
    """
    _, keras = tf_and_keras()
    keras.utils.set_random_seed(seed)
    compile_model(model, options.lr)
    train, val, spec, num_classes = data.train, data.val, data.spec, data.num_classes
    train_ds = make_dataset(
        train.images,
        train.labels,
        spec,
        num_classes,
        batch_size=options.batch_size,
        training=True,
        augment=options.augment,
        seed=seed,
        targets=train.votes,
    )
    val_ds = make_dataset(
        val.images, val.labels, spec, num_classes, batch_size=256, targets=val.votes
    )
    weights = (
        class_weights(train.labels, num_classes, options.class_weight)
        if options.class_weight
        else None
    )
    history = model.fit(
        train_ds,
        validation_data=val_ds,
        epochs=options.epochs,
        verbose=options.verbose,
        callbacks=list(callbacks),
        class_weight=weights,
    )
    accuracy = history.history.get("val_accuracy", [float("nan")])[-1]
    return FineTuneResult(
        epochs=options.epochs,
        steps=options.epochs * steps_per_epoch(len(train), options.batch_size),
        val_accuracy=float(accuracy),
    )
