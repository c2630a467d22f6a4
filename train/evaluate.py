"""Evaluate a saved model (Keras or TFLite) on a dataset split."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from fer_edge.data import load_dataset
from fer_edge.errors import FerEdgeError
from fer_edge.metrics import ClassificationMetrics, classification_metrics
from fer_edge.modelmeta import read_meta


def predict_keras(model_path: str | os.PathLike[str], images: np.ndarray) -> np.ndarray:
    """Return class probabilities of a ``.keras`` model for uint8 faces ``(N, H, W)``."""
    from fer_edge.train.pipeline import to_inputs
    from fer_edge.train.tfcompat import tf_and_keras

    _, keras = tf_and_keras()
    meta = read_meta(model_path)
    try:
        model = keras.models.load_model(model_path, compile=False)
    except (OSError, ValueError) as exc:
        raise FerEdgeError(f"{model_path}: not a loadable Keras model ({exc})") from None
    return model.predict(to_inputs(images, meta.input), batch_size=256, verbose=0)


def evaluate_model(
    model_path: str | os.PathLike[str], data: str | os.PathLike[str], split: str = "val"
) -> ClassificationMetrics:
    """Evaluate a ``.keras`` or ``.tflite`` model with metadata on ``split`` of ``data``.

    The dataset is loaded with the model's own classes and input spec, so a data folder with
    other classes than the model is a clear error.
    """
    path = Path(model_path)
    meta = read_meta(path)
    dataset = load_dataset(data, meta.labels, spec=meta.input, splits=(split,))
    part = dataset.split(split)
    if path.suffix == ".tflite":
        from fer_edge.classifier import FaceClassifier

        probs = FaceClassifier(path).probabilities_batch(part.images)
    elif path.suffix == ".keras":
        probs = predict_keras(path, part.images)
    else:
        raise FerEdgeError(f"MODEL: {path} is neither .keras nor .tflite")
    return classification_metrics(part.labels, np.argmax(probs, axis=1), meta.labels)


def format_metrics(metrics: ClassificationMetrics, title: str = "") -> str:
    """Return a human-readable report: headline, per-class table, confusion matrix."""
    lines = [title] if title else []
    lines.append(
        f"accuracy {metrics.accuracy:.2%}  macro F1 {metrics.macro_f1:.3f}  (n={metrics.count})"
    )
    lines.append(f"{'class':<10}{'precision':>10}{'recall':>10}{'f1':>8}{'support':>9}")
    for name, m in metrics.per_class.items():
        lines.append(f"{name:<10}{m.precision:>10.3f}{m.recall:>10.3f}{m.f1:>8.3f}{m.support:>9}")
    width = max(6, *(len(n) for n in metrics.labels)) + 1
    lines.append("confusion (rows true, columns predicted):")
    lines.append(" " * width + "".join(f"{n[:6]:>7}" for n in metrics.labels))
    for name, row in zip(metrics.labels, metrics.confusion, strict=True):
        lines.append(f"{name:<{width}}" + "".join(f"{v:>7}" for v in row))
    return "\n".join(lines)
