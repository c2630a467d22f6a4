"""The images a bench scores models on, in each model's own label order."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fer_edge.data import load_dataset
from fer_edge.errors import FerEdgeError
from fer_edge.labels import FER2013_CLASSES
from fer_edge.modelmeta import ModelMeta
from fer_edge.synthetic import synthetic_images


@dataclass(frozen=True)
class EvalSet:
    """Images and labels of one split, for models sharing one label set and input size.

    Attributes:
        images: uint8 gray faces ``(N, H, W)``.
        labels: int64 indices into ``classes``.
        classes: the models' label order.
        total: images in the split before ``limit`` sampled some.
        skipped: a one-line summary of unreadable inputs, or ``""``.
    """

    images: np.ndarray
    labels: np.ndarray
    classes: tuple[str, ...]
    total: int
    skipped: str = ""


def eval_key(meta: ModelMeta) -> tuple[tuple[str, ...], int, int]:
    """Models with equal keys are scored on the same images."""
    return meta.labels, meta.input.height, meta.input.width


def load_eval_set(
    data: Path,
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
    unknown = [c for c in meta.labels if c not in FER2013_CLASSES]
    if unknown:
        raise FerEdgeError(
            f"--data: the model's labels {', '.join(unknown)} are not FER2013 classes, so "
            f"{data} cannot score it"
        )
    if data.is_dir() and not (data / split).is_dir():
        raise FerEdgeError(f"--data: {data} has no {split}/ folder (choose one with --split)")
    dataset = load_dataset(
        data, classes=meta.labels, spec=meta.input, splits=(split,), progress=progress
    )
    part = dataset.split(split)
    # The loader orders classes canonically; the model's output order may differ.
    to_model = np.array([meta.labels.index(c) for c in dataset.classes], dtype=np.int64)
    images, labels = part.images, to_model[part.labels]
    total = len(labels)
    if limit is not None and limit < total:
        keep = np.sort(np.random.default_rng(seed).permutation(total)[:limit])
        images, labels = images[keep], labels[keep]
    return EvalSet(images, labels, meta.labels, total, dataset.skipped_summary())


def latency_faces(eval_set: EvalSet | None, count: int, seed: int = 0) -> np.ndarray:
    """Pick ``count`` faces to time with: from the split if there is one, else generated ones.

    Generated faces keep ``fer-edge bench`` doing real work on a machine without a dataset;
    latency does not depend on what the pixels show.
    """
    if eval_set is not None and len(eval_set.images):
        rng = np.random.default_rng(seed)
        size = min(count, len(eval_set.images))
        pick = rng.choice(len(eval_set.images), size=size, replace=False)
        return eval_set.images[np.sort(pick)]
    per_class = -(-count // len(FER2013_CLASSES))
    images, _ = synthetic_images(per_class, seed=seed)
    return images[np.random.default_rng(seed).permutation(len(images))[:count]]
