"""Measured sparsity: the share of exactly-zero weights in a model's kernels."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from fer_edge.convert.tflite_info import Kernel

#: Kernels that ``--prune`` prunes and pruning-preserving QAT keeps sparse. Depthwise kernels
#: are left dense: tfmot's PQAT cannot preserve their sparsity, and they are a few percent of
#: the weights.
PRUNED_OPS: tuple[str, ...] = ("CONV_2D", "FULLY_CONNECTED")


@dataclass(frozen=True)
class Sparsity:
    """Zero shares of a model's stored kernels.

    Attributes:
        pruned: share of zeros in conv and fully-connected kernels (the ones pruning
            targets); the ``sparsity`` of a model card.
        all_kernels: the same over every kernel, depthwise included.
        weights: number of weights behind ``pruned``.
    """

    pruned: float
    all_kernels: float
    weights: int


def zero_share(arrays: Iterable[np.ndarray]) -> tuple[float, int]:
    """Return ``(share of exact zeros, number of values)`` over ``arrays``."""
    zeros = total = 0
    for array in arrays:
        zeros += int(np.count_nonzero(array == 0))
        total += int(array.size)
    return (zeros / total if total else 0.0), total


def kernel_sparsity(kernels: Iterable[Kernel]) -> Sparsity:
    """Measure the sparsity of a converted model's kernels (see :class:`Sparsity`)."""
    kernels = list(kernels)
    pruned, weights = zero_share(k.values for k in kernels if k.op in PRUNED_OPS)
    everything, _ = zero_share(k.values for k in kernels)
    return Sparsity(pruned, everything, weights)
