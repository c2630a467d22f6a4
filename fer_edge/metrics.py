"""Classification metrics (pure numpy): used by training reports, conversion and benchmarks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class ClassMetrics:
    """Precision, recall, F1 and support of one class."""

    precision: float
    recall: float
    f1: float
    support: int


@dataclass(frozen=True)
class ClassificationMetrics:
    """Metrics of predictions against true labels.

    Attributes:
        labels: class names; ``confusion[i][j]`` counts true ``i`` predicted ``j``.
        count: number of samples.
        accuracy: share of correct top-1 predictions.
        macro_f1: unweighted mean of per-class F1 (classes with no support count as 0 only
            if something was predicted for them; absent classes are left out).
        per_class: metrics by class name.
        confusion: the confusion matrix.
        balanced_recall: unweighted mean of the recalls of the classes present (with
            support), i.e. balanced accuracy: every class counts alike, however rare.
    """

    labels: tuple[str, ...]
    count: int
    accuracy: float
    macro_f1: float
    per_class: dict[str, ClassMetrics]
    confusion: list[list[int]]
    balanced_recall: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        scalars = ("count", "accuracy", "macro_f1", "balanced_recall")
        return {
            **{name: getattr(self, name) for name in scalars},
            "per_class": {name: vars(m) for name, m in self.per_class.items()},
            "labels": list(self.labels),
            "confusion": self.confusion,
        }


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """Return the ``(K, K)`` int64 confusion matrix (rows: true, columns: predicted)."""
    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = np.asarray(y_pred, dtype=np.int64)
    flat = np.bincount(y_true * num_classes + y_pred, minlength=num_classes * num_classes)
    return flat.reshape(num_classes, num_classes)


def classification_metrics(
    y_true: np.ndarray, y_pred: np.ndarray, labels: tuple[str, ...]
) -> ClassificationMetrics:
    """Compute accuracy, macro F1, per-class precision/recall/F1 and the confusion matrix.

    Args:
        y_true: true label indices.
        y_pred: predicted label indices (``argmax`` of probabilities).
        labels: class names, index ``i`` naming label ``i``.
    """
    k = len(labels)
    cm = confusion_matrix(y_true, y_pred, k)
    tp = np.diag(cm).astype(float)
    predicted = cm.sum(axis=0).astype(float)
    support = cm.sum(axis=1).astype(float)
    precision = np.divide(tp, predicted, out=np.zeros(k), where=predicted > 0)
    recall = np.divide(tp, support, out=np.zeros(k), where=support > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros(k), where=denom > 0)
    present = (support > 0) | (predicted > 0)
    total = int(cm.sum())
    return ClassificationMetrics(
        labels=tuple(labels),
        count=total,
        accuracy=float(tp.sum() / total) if total else 0.0,
        macro_f1=float(f1[present].mean()) if present.any() else 0.0,
        per_class={
            name: ClassMetrics(float(precision[i]), float(recall[i]), float(f1[i]), int(support[i]))
            for i, name in enumerate(labels)
        },
        confusion=cm.tolist(),
        balanced_recall=float(recall[support > 0].mean()) if (support > 0).any() else 0.0,
    )


def agreement(pred_a: np.ndarray, pred_b: np.ndarray) -> float:
    """Share of samples on which two models give the same top-1 label."""
    pred_a, pred_b = np.asarray(pred_a), np.asarray(pred_b)
    if pred_a.shape != pred_b.shape:
        raise ValueError(f"prediction shapes differ: {pred_a.shape} vs {pred_b.shape}")
    return float(np.mean(pred_a == pred_b)) if pred_a.size else 0.0
