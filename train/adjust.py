"""Post-hoc logit adjustment: rare classes scored as if they were less rare.

A classifier trained on skewed data learns the class priors: on FER+, neutral is 35% of the
training faces and disgust 0.5%, so a face between the two goes to neutral. Logit adjustment
(Menon et al. 2021, "Long-tail learning via logit adjustment") adds ``tau * log(1 / prior_k)``
to each class's logit after training: ``tau = 1`` on an unweighted model optimises balanced
error. Here the shift is applied only to classes rarer than ``below`` (a share of the training
faces), lifting them to that share: ``delta_k = tau * max(0, log(below / prior_k))``; with
``below = 1`` it is Menon's adjustment for every class (up to a constant, which a softmax
ignores). A limited ``below`` keeps the common classes' boundaries (neutral against sad) where
training put them and moves only the tail's (disgust, fear).

The shift is folded into the bias of the model's last Dense layer (every registry model ends
``Dense(softmax)``), so the model stays a plain, quantisable registry model and costs nothing
at inference.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fer_edge.errors import FerEdgeError


def logit_shift(labels: np.ndarray, num_classes: int, tau: float, below: float) -> np.ndarray:
    """Return the per-class logit shift for training labels ``labels``.

    Args:
        labels: training labels (the priors are their class shares).
        num_classes: number of classes.
        tau: adjustment strength (0: none, 1: the full prior correction).
        below: only classes with a training share under this are shifted (1: all).
    """
    if not 0.0 < below <= 1.0:
        raise FerEdgeError(f"--logit-adjust-below: must be within (0, 1], got {below}")
    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=num_classes)
    prior = np.maximum(counts, 1) / max(int(counts.sum()), 1)
    return (tau * np.maximum(0.0, np.log(below / prior))).astype(np.float32)


def fold_into_last_layer(model: Any, shift: np.ndarray) -> None:
    """Add ``shift`` to the bias of ``model``'s last layer (a Dense softmax), in place.

    The last layer may be wrapped for pruning or quantisation-aware training (tfmot wrappers
    keep the Dense as ``.layer``): the bias is the wrapped layer's, so the shift reaches the
    exported model either way.

    Raises:
        FerEdgeError: the last layer has no bias of ``len(shift)`` units.
    """
    layer = model.layers[-1]
    inner = getattr(layer, "layer", layer)
    bias = getattr(inner, "bias", None)
    if bias is None or tuple(bias.shape) != shift.shape:
        raise FerEdgeError(
            f"--logit-adjust: the model's last layer {layer.name!r} is not a Dense layer with "
            f"{len(shift)} biased outputs"
        )
    bias.assign(bias.numpy() + shift.astype(bias.dtype.as_numpy_dtype))


def shift_of(extra: dict[str, Any]) -> np.ndarray | None:
    """Return the logit shift a model's metadata records (``logit_shift``), or ``None``."""
    values = extra.get("logit_shift")
    return None if values is None else np.asarray(values, dtype=np.float32)
