"""Knowledge distillation: a student trained on the labels and on teachers' soft predictions.

The teachers (``.keras`` or ``.tflite`` models with fer-edge metadata and the student's labels;
several make an ensemble, their probabilities averaged) predict every training face once,
before the first epoch, with their own preprocessing and the chosen test-time augmentation.
The predictions are kept in the run folder (``teacher.npz``) so ``--resume`` does not redo
them, and ride along with the one-hot labels through shuffling, augmentation and mixup:
targets become ``[one_hot | teacher_probs]``. The loss is

    alpha * CE(labels, student) + (1 - alpha) * T^2 * KL(soft(teacher, T) || soft(student, T))

(Hinton et al. 2015), where ``soft(p, T)`` is the softmax of ``log(p) / T``: the registry
models end in a softmax, and ``log`` of a softmax is its logits up to a constant.

Why once and not on each augmented batch: a teacher run per batch costs a forward pass of
every teacher per step (an ensemble of two, with flips, doubles a CPU epoch), and TFLite
teachers cannot run inside the tf.data graph. The augmentations here are mild (flips, which
the flip-averaged teacher does not see, small shifts, rotations and erasing), so the soft
target of the clean face stands for its augmented copies. Only the student is trained and
saved; it stays a plain registry model, quantisable as ever.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fer_edge.classifier import check_tta
from fer_edge.errors import FerEdgeError
from fer_edge.modelmeta import read_meta
from fer_edge.tfcompat import tf_and_keras

#: Probabilities are clipped here before the log, so a hard 0 does not give -inf logits.
EPSILON = 1e-7


@dataclass(frozen=True)
class DistillOptions:
    """How to distil from teachers.

    Attributes:
        teachers: teacher model files (``.keras`` or ``.tflite``); several are averaged.
        alpha: weight of the hard-label loss; ``1 - alpha`` goes to the teachers' soft targets.
        temperature: softening temperature ``T`` of both distributions.
        tta: the teachers' test-time augmentation (``none`` or ``flip``).
    """

    teachers: tuple[str, ...]
    alpha: float = 0.5
    temperature: float = 4.0
    tta: str = "flip"

    def __post_init__(self) -> None:
        """Validate, naming the flag at fault."""
        if not self.teachers:
            raise FerEdgeError("--teacher: give at least one teacher model")
        if not 0.0 <= self.alpha <= 1.0:
            raise FerEdgeError(f"--distill-alpha: must be within 0-1, got {self.alpha}")
        if not self.temperature > 0.0:
            raise FerEdgeError(f"--distill-temperature: must be positive, got {self.temperature}")
        check_tta(self.tta)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> DistillOptions | None:
        """Inverse of ``dataclasses.asdict`` (``None`` stays ``None``)."""
        if data is None:
            return None
        return cls(**{**data, "teachers": tuple(data["teachers"])})


def check_teachers(options: DistillOptions, labels: Sequence[str]) -> None:
    """Check every teacher exists, has metadata and predicts exactly ``labels``, in order.

    Raises:
        FerEdgeError: naming ``--teacher`` and the file.
    """
    for teacher in options.teachers:
        path = Path(teacher)
        if path.suffix not in (".keras", ".tflite"):
            raise FerEdgeError(f"--teacher: {path} is neither .keras nor .tflite")
        try:
            meta = read_meta(path)
        except FerEdgeError as exc:
            raise FerEdgeError(f"--teacher: {exc}") from None
        if tuple(meta.labels) != tuple(labels):
            raise FerEdgeError(
                f"--teacher: {path} predicts {', '.join(meta.labels)}; the student "
                f"{', '.join(labels)}"
            )


def teacher_probabilities(options: DistillOptions, images: np.ndarray) -> np.ndarray:
    """Return the teachers' mean ``(N, classes)`` probabilities for uint8 faces ``(N, H, W)``."""
    from fer_edge.evaluate import model_probabilities

    total: np.ndarray | None = None
    for teacher in options.teachers:
        probs = model_probabilities(teacher, images, options.tta)
        total = probs if total is None else total + probs
    assert total is not None  # DistillOptions requires a teacher
    return (total / len(options.teachers)).astype(np.float32)


def _soften(tf: Any, probs: Any, temperature: float) -> Any:
    logits = tf.math.log(tf.clip_by_value(probs, EPSILON, 1.0))
    return tf.nn.softmax(logits / temperature, axis=-1)


def distillation_objects(
    options: DistillOptions, num_classes: int, label_smoothing: float
) -> dict[str, Any]:
    """Return the loss and the accuracy metric for ``[one_hot | teacher_probs]`` targets.

    The same objects compile a new student and load a checkpoint for ``--resume``
    (``custom_objects``); the metric is named ``accuracy`` so the history and the checkpoint
    selection read ``val_accuracy`` as for any run.
    """
    tf, keras = tf_and_keras()
    hard = keras.losses.CategoricalCrossentropy(
        label_smoothing=label_smoothing, reduction=keras.losses.Reduction.NONE
    )
    kl = keras.losses.KLDivergence(reduction=keras.losses.Reduction.NONE)
    alpha, temperature = options.alpha, options.temperature

    def distillation_loss(y_true: Any, y_pred: Any) -> Any:
        labels, teacher = y_true[:, :num_classes], y_true[:, num_classes:]
        student = tf.cast(y_pred, labels.dtype)
        soft = kl(_soften(tf, teacher, temperature), _soften(tf, student, temperature))
        return alpha * hard(labels, student) + (1.0 - alpha) * temperature**2 * soft

    def accuracy(y_true: Any, y_pred: Any) -> Any:
        return keras.metrics.categorical_accuracy(y_true[:, :num_classes], y_pred)

    return {"distillation_loss": distillation_loss, "accuracy": accuracy}
