"""The one evaluation path: a split in the model's label order, scored into one metrics type.

``fer-edge eval``, ``fer-edge convert`` and ``fer-edge bench`` all load their images with
:func:`load_eval_set` and score them with :func:`evaluate`, so a model whose labels are not in
the canonical FER2013 order (e.g. trained on ``--classes sad,happy``) gets the same accuracy
from all three.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fer_edge import ferplus
from fer_edge.classifier import ClassifierOptions, FaceClassifier, check_tta
from fer_edge.data import Dataset, Split, load_dataset
from fer_edge.errors import FerEdgeError, first_line
from fer_edge.labels import KNOWN_CLASSES
from fer_edge.metrics import ClassificationMetrics, agreement, classification_metrics
from fer_edge.modelmeta import ModelMeta, read_meta
from fer_edge.models import resolve_model


def in_model_order(dataset: Dataset, labels: tuple[str, ...]) -> Dataset:
    """Renumber ``dataset``'s labels (in place) so label ``i`` means ``labels[i]``.

    The loader orders classes canonically; the model's output order is what counts.

    Raises:
        FerEdgeError: the dataset holds a class that is not in ``labels``.
    """
    if dataset.classes == labels:
        return dataset
    missing = [c for c in dataset.classes if c not in labels]
    if missing:
        raise FerEdgeError(f"{dataset.source}: class {', '.join(missing)} is not a model label")
    order = np.array([labels.index(c) for c in dataset.classes], dtype=np.int64)
    for split in dataset.splits.values():
        split.labels = order[split.labels]
        if split.votes is not None:
            votes = np.zeros((len(split), len(labels)), dtype=split.votes.dtype)
            votes[:, order] = split.votes
            split.votes = votes
    dataset.classes = labels
    return dataset


@dataclass(frozen=True)
class EvalSet:
    """Images and labels of one split, in one model label order and input size.

    Attributes:
        images: uint8 gray faces ``(N, H, W)``.
        labels: int64 indices into ``classes``.
        classes: the models' label order.
        total: images in the split before ``limit`` sampled some.
        skipped: a one-line summary of unreadable inputs, or ``""``.
        label_set: whose labels: ``fer2013`` or ``ferplus`` (the ten-vote majority).
        unscored: faces of the split left out for want of a usable majority (FER+).
    """

    images: np.ndarray
    labels: np.ndarray
    classes: tuple[str, ...]
    total: int
    skipped: str = ""
    label_set: str = "fer2013"
    unscored: int = 0


def eval_key(meta: ModelMeta) -> tuple[tuple[str, ...], int, int]:
    """Models with equal keys are scored on the same images."""
    return meta.labels, meta.input.height, meta.input.width


def load_eval_set(
    data: str | os.PathLike[str],
    split: str,
    meta: ModelMeta,
    limit: int | None = None,
    seed: int = 0,
    progress: bool = False,
) -> EvalSet:
    """Load ``split`` of ``data`` with the model's classes, in the model's label order.

    Args:
        data: a dataset folder or FER2013 CSV (see :func:`fer_edge.data.load_dataset`).
        split: ``train``, ``val`` or ``test``.
        meta: the model's metadata (labels and input size).
        limit: keep a seeded random sample of at most this many images.
        seed: the sample's seed.
        progress: show a loading bar.

    Raises:
        FerEdgeError: a missing split, or model labels that are not FER2013 classes.
    """
    data = Path(data)
    unknown = [c for c in meta.labels if c not in KNOWN_CLASSES]
    if unknown:
        raise FerEdgeError(
            f"--data: the model's labels {', '.join(unknown)} are not FER2013 or FER+ classes, "
            f"so {data} cannot score it"
        )
    if ferplus.is_ferplus(data):
        folder = ferplus.FOLDERS[split]
        if not (data / folder / ferplus.LABEL_FILE).is_file():
            raise FerEdgeError(
                f"--data: {data} has no {folder}/{ferplus.LABEL_FILE} (choose one with --split)"
            )
    elif data.is_dir() and not (data / split).is_dir():
        raise FerEdgeError(f"--data: {data} has no {split}/ folder (choose one with --split)")
    dataset = load_dataset(
        data, classes=meta.labels, spec=meta.input, splits=(split,), progress=progress
    )
    part = in_model_order(dataset, meta.labels).split(split)
    images, labels = part.images, part.labels
    total = len(labels)
    if limit is not None and limit < total:
        keep = np.sort(np.random.default_rng(seed).permutation(total)[:limit])
        images, labels = images[keep], labels[keep]
    unscored = sum(dataset.unscored.get(split, {}).values())
    return EvalSet(
        images,
        labels,
        meta.labels,
        total,
        dataset.skipped_summary(),
        dataset.label_set,
        unscored,
    )


def eval_set_of(split: Split, classes: tuple[str, ...]) -> EvalSet:
    """Wrap an already loaded split (labels in ``classes`` order) as an :class:`EvalSet`."""
    return EvalSet(split.images, split.labels, classes, len(split))


@dataclass(frozen=True)
class Evaluation:
    """A model's predictions on an evaluation set, and their metrics.

    Attributes:
        predictions: top-1 class index per image.
        metrics: accuracy, macro F1, per-class numbers and confusion matrix.
        input_dtype: the model's input tensor dtype (``float32`` for Keras models).
        label_set: whose labels it was scored against (``fer2013``, ``ferplus``).
        unscored: faces of the split left out for want of a majority (FER+).
    """

    predictions: np.ndarray
    metrics: ClassificationMetrics
    input_dtype: str = "float32"
    label_set: str = "fer2013"
    unscored: int = 0

    @property
    def accuracy(self) -> float:
        """Share of images whose top-1 is the label."""
        return self.metrics.accuracy

    def agreement(self, reference: Evaluation) -> float:
        """Share of images on which this model's top-1 equals ``reference``'s."""
        return agreement(self.predictions, reference.predictions)


def score(probabilities: np.ndarray, labels: np.ndarray, classes: tuple[str, ...]) -> Evaluation:
    """Turn ``(N, classes)`` probabilities and true labels into an :class:`Evaluation`."""
    predictions = np.argmax(probabilities, axis=1)
    return Evaluation(predictions, classification_metrics(labels, predictions, classes))


def evaluate(classifier: FaceClassifier, eval_set: EvalSet) -> Evaluation:
    """Score a classifier on ``eval_set``, through the same calls the device makes.

    Raises:
        FerEdgeError: the classifier's labels differ from the set's.
    """
    if classifier.labels != eval_set.classes:
        raise FerEdgeError(
            f"{classifier.path}: labels {classifier.labels} differ from the evaluation set's "
            f"{eval_set.classes}"
        )
    probabilities = classifier.probabilities_batch(eval_set.images)
    result = score(probabilities, eval_set.labels, eval_set.classes)
    return Evaluation(
        result.predictions,
        result.metrics,
        classifier.input_dtype.name,
        eval_set.label_set,
        eval_set.unscored,
    )


def load_keras_model(model_path: str | os.PathLike[str]) -> Any:
    """Load a ``.keras`` model for inference (TensorFlow is imported lazily, here).

    Raises:
        FerEdgeError: the file is not a loadable Keras model.
    """
    from fer_edge.tfcompat import tf_and_keras

    _, keras = tf_and_keras()
    try:
        return keras.models.load_model(model_path, compile=False)
    except Exception as exc:  # load_model raises anything from OSError to TypeError
        raise FerEdgeError(f"{model_path}: not a Keras model ({first_line(exc)})") from None


def predict_keras(
    model_path: str | os.PathLike[str], images: np.ndarray, flip: bool = False
) -> np.ndarray:
    """Return class probabilities of a ``.keras`` model for uint8 faces ``(N, H, W)``.

    With ``flip`` the mirrored faces are classified too and the two averaged (the model is
    loaded once). Only ``fer-edge eval`` of a Keras model and training teachers get here.
    """
    from fer_edge.preprocess import normalize

    meta = read_meta(model_path)
    model = load_keras_model(model_path)
    inputs = normalize(images, meta.input)
    probs = model.predict(inputs, batch_size=256, verbose=0)
    if flip:
        probs = (probs + model.predict(inputs[:, :, ::-1], batch_size=256, verbose=0)) / 2.0
    return np.asarray(probs, dtype=np.float32)


def evaluate_model(
    model_path: str | os.PathLike[str],
    data: str | os.PathLike[str],
    split: str = "val",
    tta: str | None = None,
) -> Evaluation:
    """Evaluate a ``.keras`` or ``.tflite`` model with metadata on ``split`` of ``data``.

    Args:
        model_path: the model, or a bundled model's name (``default``, ``fer2013``).
        data: a dataset folder or FER2013 CSV.
        split: ``train``, ``val`` or ``test``.
        tta: test-time augmentation (``none``, ``flip``); ``None``: the model card's choice.

    Raises:
        FerEdgeError: not a model file, no metadata, or data without the model's classes.
    """
    path = resolve_model(model_path, "MODEL")
    if path.suffix not in (".tflite", ".keras"):
        raise FerEdgeError(f"MODEL: {path} is neither .keras nor .tflite")
    meta = read_meta(path)
    eval_set = load_eval_set(data, split, meta)
    if path.suffix == ".tflite":
        return evaluate(FaceClassifier(path, ClassifierOptions(tta=tta)), eval_set)
    probs = model_probabilities(path, eval_set.images, tta)
    result = score(probs, eval_set.labels, eval_set.classes)
    return dataclasses.replace(result, label_set=eval_set.label_set, unscored=eval_set.unscored)


def model_probabilities(
    model_path: str | os.PathLike[str], images: np.ndarray, tta: str | None = None
) -> np.ndarray:
    """Return ``(N, classes)`` probabilities of a ``.keras`` or ``.tflite`` model.

    Args:
        model_path: the model (fer-edge metadata inside or beside it).
        images: uint8 gray faces ``(N, H, W)``.
        tta: ``none`` or ``flip``; ``None``: the model card's choice (``none`` for .keras).

    Raises:
        FerEdgeError: not a model file, or one without metadata.
    """
    path = Path(model_path)
    if path.suffix == ".tflite":
        return FaceClassifier(path, ClassifierOptions(tta=tta)).probabilities_batch(images)
    if path.suffix != ".keras":
        raise FerEdgeError(f"{path}: neither .keras nor .tflite")
    return predict_keras(path, images, flip=check_tta(tta or "none") == "flip")


def format_metrics(metrics: ClassificationMetrics, title: str = "") -> str:
    """Return a human-readable report: headline, per-class table, confusion matrix."""
    lines = [title] if title else []
    lines.append(
        f"accuracy {metrics.accuracy:.2%}  balanced recall {metrics.balanced_recall:.2%}  "
        f"macro F1 {metrics.macro_f1:.3f}  (n={metrics.count})"
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
