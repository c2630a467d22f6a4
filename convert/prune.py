"""Magnitude pruning: sparsity ramps up during fine-tuning, then the wrappers are stripped."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fer_edge.convert.finetune import FineTuneResult, TuneData, fine_tune, steps_per_epoch
from fer_edge.convert.options import FineTuneOptions
from fer_edge.convert.sparsity import zero_share
from fer_edge.tfcompat import copy_model, tf_and_keras, tfmot


@dataclass(frozen=True)
class PruneSchedule:
    """A polynomial-decay sparsity schedule in optimizer steps (tfmot ``PolynomialDecay``).

    Attributes:
        target: final sparsity of every pruned kernel.
        end_step: step at which the target is reached (pruning starts at step 0).
        frequency: steps between mask updates; divides ``end_step`` so the last update
            lands exactly on it and the target is really reached.
    """

    target: float
    end_step: int
    frequency: int


def schedule_for(target: float, total_steps: int) -> PruneSchedule:
    """Ramp to ``target`` over the first two thirds of fine-tuning; the rest recovers.

    Args:
        target: final sparsity, between 0 and 1.
        total_steps: optimizer steps of the whole fine-tuning run.
    """
    end = max(1, (2 * total_steps) // 3)
    # About 10 mask updates on the way (tfmot's default is every 100 steps).
    frequency = max(1, min(100, end // 10))
    return PruneSchedule(target, (end // frequency) * frequency, frequency)


def is_pruned_layer(layer: Any) -> bool:
    """True for the layers ``--prune`` prunes: plain ``Conv2D`` and ``Dense``.

    Depthwise convolutions (a ``Conv2D`` subclass) stay dense: pruning-preserving QAT cannot
    keep them sparse, and they hold a few percent of the weights.
    """
    _, keras = tf_and_keras()
    return type(layer) in (keras.layers.Conv2D, keras.layers.Dense)


def pruned_kernel_sparsity(model: Any) -> float:
    """Return the share of zeros in the kernels of a Keras model's pruned layers."""
    share, _ = zero_share(layer.kernel.numpy() for layer in model.layers if is_pruned_layer(layer))
    return share


def wrap_for_pruning(model: Any, schedule: PruneSchedule) -> Any:
    """Return a copy of ``model`` whose conv and dense layers prune to ``schedule``."""
    _, keras = tf_and_keras()
    sparsity = tfmot().sparsity.keras
    # A fresh copy first: cloning with a clone_function reuses the layer objects, and
    # fine-tuning must not change the weights of the model the float exports came from.
    copy = copy_model(model)
    polynomial = sparsity.PolynomialDecay(
        initial_sparsity=0.0,
        final_sparsity=schedule.target,
        begin_step=0,
        end_step=schedule.end_step,
        frequency=schedule.frequency,
    )

    def wrap(layer: Any) -> Any:
        if is_pruned_layer(layer):
            return sparsity.prune_low_magnitude(layer, pruning_schedule=polynomial)
        return layer

    return keras.models.clone_model(copy, clone_function=wrap)


def prune(
    model: Any,
    target: float,
    data: TuneData,
    options: FineTuneOptions,
    *,
    seed: int = 0,
) -> tuple[Any, FineTuneResult]:
    """Prune ``model`` to ``target`` sparsity while fine-tuning, and strip the wrappers.

    Returns:
        ``(pruned plain Keras model, fine-tuning result)``; ``model`` itself is unchanged.
    """
    sparsity = tfmot().sparsity.keras
    total = options.epochs * steps_per_epoch(len(data.train), options.batch_size)
    wrapped = wrap_for_pruning(model, schedule_for(target, total))
    callbacks = [sparsity.UpdatePruningStep()]
    result = fine_tune(wrapped, data, options, seed=seed, callbacks=callbacks)
    return sparsity.strip_pruning(wrapped), result
