"""Small generated datasets with a learnable signal, for tests, demos and CI.

Every class gets an oriented grating (class ``k`` of ``K`` at ``k * 180 / K`` degrees) with a
random phase, frequency, contrast and noise: trivial for a CNN to learn, impossible to learn by
mean brightness, and quick to make. They are not faces; real accuracy claims use FER2013.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from fer_edge.labels import FER2013_CLASSES


def synthetic_images(
    n_per_class: int,
    num_classes: int = len(FER2013_CLASSES),
    size: int = 48,
    seed: int = 0,
    noise: float = 25.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Make ``n_per_class`` uint8 images per class.

    Returns:
        ``(images, labels)``: ``(N, size, size)`` uint8 and ``(N,)`` int64, class-sorted.
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    images, labels = [], []
    for k in range(num_classes):
        angle = np.pi * k / num_classes
        direction = np.cos(angle) * xx + np.sin(angle) * yy
        for _ in range(n_per_class):
            freq = rng.uniform(3.0, 5.0)
            phase = rng.uniform(0, 2 * np.pi)
            contrast = rng.uniform(50, 100)
            base = rng.uniform(90, 160)
            img = base + contrast * np.sin(2 * np.pi * freq * direction + phase)
            img += rng.normal(0, noise, img.shape)
            images.append(np.clip(img, 0, 255).astype(np.uint8))
            labels.append(k)
    return np.stack(images), np.asarray(labels, dtype=np.int64)


def write_folder_dataset(
    root: str | os.PathLike[str],
    n_per_class: int | dict[str, int] = 20,
    classes: Sequence[str] = FER2013_CLASSES,
    splits: Sequence[str] = ("train", "val"),
    seed: int = 0,
    suffix: str = ".png",
) -> Path:
    """Write a generated dataset as ``root/<split>/<class>/<i><suffix>`` and return ``root``.

    Labels are the classes' FER2013 positions, so a subset still gets the full 7-way gratings.
    ``n_per_class`` may be a dict giving each split its own count.
    """
    root = Path(root)
    for s_index, split in enumerate(splits):
        count = n_per_class[split] if isinstance(n_per_class, dict) else n_per_class
        images, labels = synthetic_images(count, len(FER2013_CLASSES), seed=seed + 101 * s_index)
        for name in classes:
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            k = FER2013_CLASSES.index(name)
            for i, img in enumerate(images[labels == k]):
                cv2.imwrite(str(folder / f"{split}_{i:05d}{suffix}"), img)
    return root


def write_csv_dataset(
    path: str | os.PathLike[str],
    n_per_class: int = 10,
    usages: Sequence[str] = ("Training", "PublicTest", "PrivateTest"),
    seed: int = 0,
) -> Path:
    """Write a generated FER2013-format CSV (``emotion,pixels,Usage``) and return its path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["emotion", "pixels", "Usage"])
        for u_index, usage in enumerate(usages):
            images, labels = synthetic_images(n_per_class, seed=seed + 101 * u_index)
            for img, label in zip(images, labels, strict=True):
                writer.writerow([int(label), " ".join(str(v) for v in img.ravel()), usage])
    return path


#: Vote patterns of :func:`write_ferplus_dataset`, cycled over each class's faces: ten votes
#: for the face's own class ``k`` and its neighbour ``n`` (indices into the vote columns).
#: The last two have no FERPlus majority (5-3-2 and 4-4-2: no class holds more than half).
FERPLUS_PATTERNS: tuple[dict[str, int], ...] = (
    {"k": 10},
    {"k": 7, "n": 2, "unknown": 1},
    {"k": 6, "n": 3, "fear": 1},
    {"k": 5, "n": 3, "unknown": 2},
    {"k": 4, "n": 4, "unknown": 2},
)


def write_ferplus_dataset(
    root: str | os.PathLike[str],
    n_per_class: int | dict[str, int] = 10,
    splits: Sequence[str] = ("train", "val"),
    seed: int = 0,
) -> Path:
    """Write a generated dataset in the FER+ layout and return ``root``.

    ``root/FER2013Train/`` (and ``FER2013Valid/``, ``FER2013Test/``) hold the gratings of
    :func:`synthetic_images` as ``fer<i>.png`` and a header-less ``label.csv`` with ten vote
    counts per face, cycled through :data:`FERPLUS_PATTERNS`: three faces in five have their
    class as the FERPlus majority, two have none.
    """
    from fer_edge.ferplus import FOLDERS, LABEL_FILE, VOTE_COLUMNS

    root = Path(root)
    index = 0
    for s_index, split in enumerate(splits):
        count = n_per_class[split] if isinstance(n_per_class, dict) else n_per_class
        images, labels = synthetic_images(count, len(FER2013_CLASSES), seed=seed + 101 * s_index)
        folder = root / FOLDERS[split]
        folder.mkdir(parents=True, exist_ok=True)
        rows = []
        for i, (img, label) in enumerate(zip(images, labels, strict=True)):
            own = FER2013_CLASSES[int(label)]
            neighbour = FER2013_CLASSES[(int(label) + 1) % len(FER2013_CLASSES)]
            votes = dict.fromkeys(VOTE_COLUMNS, 0)
            for key, n in FERPLUS_PATTERNS[i % len(FERPLUS_PATTERNS)].items():
                votes[{"k": own, "n": neighbour}.get(key, key)] += n
            name = f"fer{index:07d}.png"
            index += 1
            cv2.imwrite(str(folder / name), img)
            rows.append([name, "(0, 0, 48, 48)", *(votes[c] for c in VOTE_COLUMNS)])
        with (folder / LABEL_FILE).open("w", newline="") as handle:
            csv.writer(handle).writerows(rows)
    return root
