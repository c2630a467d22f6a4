"""Loading FER datasets: image folders, the FER2013 CSV and the FER+ layout.

Image folders are ``ROOT/{train,val,test}/<class>/``; FER+ is ``ROOT/FER2013{Train,Valid,Test}/``
with vote counts (see :mod:`fer_edge.ferplus`).

Images are stored as uint8 gray arrays of the model's input size, made by
:func:`fer_edge.preprocess.resize_face`; normalisation happens later, in the same module.
"""

from __future__ import annotations

import csv
import os
import sys
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from fer_edge import ferplus
from fer_edge.errors import FerEdgeError
from fer_edge.labels import FER2013_CLASSES, resolve_classes
from fer_edge.preprocess import DEFAULT_SPEC, InputSpec, resize_face

SPLITS: tuple[str, ...] = ("train", "val", "test")
#: Image files OpenCV reads, for datasets and for the device's folder and glob sources.
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff", ".pgm"})
CSV_USAGE = {"training": "train", "publictest": "val", "privatetest": "test"}
FER_PIXELS = 48 * 48


@dataclass(frozen=True)
class Skipped:
    """One input that could not be used, and why."""

    path: str
    reason: str


@dataclass
class Split:
    """The images and labels of one split.

    Attributes:
        images: uint8 array ``(N, height, width)``.
        labels: int64 array ``(N,)`` of indices into the dataset's ``classes`` (for FER+, the
            majority of the ten votes).
        votes: float32 ``(N, len(classes))`` share of each face's votes per class (FER+ only;
            ``None`` for single-label data).
        names: each face's image file name (FER+ only, where it ties a face to its FER2013
            copy; ``None`` otherwise).
    """

    images: np.ndarray
    labels: np.ndarray
    votes: np.ndarray | None = None
    names: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def subset(self, index: np.ndarray) -> Split:
        """Return the split restricted to ``index`` (an index or boolean array)."""
        votes = None if self.votes is None else self.votes[index]
        names = None if self.names is None else self.names[index]
        return Split(self.images[index], self.labels[index], votes, names)


@dataclass
class Dataset:
    """A loaded dataset.

    Attributes:
        classes: class names; label ``i`` means ``classes[i]``.
        splits: the loaded splits by name (``train``, ``val``, ``test``).
        skipped: inputs that were skipped (corrupt files, wrong-sized CSV rows, ...).
        source: the path it was loaded from.
        val_carved: True if ``val`` was carved out of ``train`` because it was missing.
        label_set: whose labels these are: ``fer2013`` (one label per face) or ``ferplus``
            (the majority of ten votes).
        unscored: per split, faces left out because their votes have no usable majority
            (FER+ only), by reason.
    """

    classes: tuple[str, ...]
    splits: dict[str, Split]
    skipped: list[Skipped] = field(default_factory=list)
    source: str = ""
    val_carved: bool = False
    label_set: str = "fer2013"
    unscored: dict[str, dict[str, int]] = field(default_factory=dict)

    def split(self, name: str) -> Split:
        """Return split ``name`` or raise a clear error naming what exists."""
        if name not in self.splits:
            have = ", ".join(self.splits) or "none"
            raise FerEdgeError(f"{self.source}: no '{name}' split (found: {have})")
        return self.splits[name]

    def counts(self, name: str) -> dict[str, int]:
        """Return the number of images per class in split ``name``."""
        labels = self.split(name).labels
        totals = np.bincount(labels, minlength=len(self.classes))
        return {c: int(n) for c, n in zip(self.classes, totals, strict=True)}

    def skipped_summary(self, limit: int = 5) -> str:
        """Return a one-line summary of skipped inputs, or an empty string if none."""
        if not self.skipped:
            return ""
        shown = "; ".join(f"{s.path} ({s.reason})" for s in self.skipped[:limit])
        more = f"; and {len(self.skipped) - limit} more" if len(self.skipped) > limit else ""
        noun = "input" if len(self.skipped) == 1 else "inputs"
        return f"skipped {len(self.skipped)} {noun}: {shown}{more}"


def stratified_split(
    labels: np.ndarray, fraction: float, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Split indices into (kept, held out) with ``fraction`` of every class held out.

    Each class with at least two members keeps at least one and holds out at least one, so
    rare classes (FER2013's disgust) appear on both sides. The result depends only on the
    labels, the fraction and the seed.

    Returns:
        Two sorted int64 index arrays.
    """
    if not 0.0 < fraction < 1.0:
        raise FerEdgeError(f"split fraction must be between 0 and 1, got {fraction}")
    rng = np.random.default_rng(seed)
    held: list[np.ndarray] = []
    for cls in np.unique(labels):
        members = np.flatnonzero(labels == cls)
        if len(members) < 2:
            continue
        n_held = int(np.clip(round(len(members) * fraction), 1, len(members) - 1))
        held.append(rng.permutation(members)[:n_held])
    held_idx = np.sort(np.concatenate(held)) if held else np.zeros(0, dtype=np.int64)
    kept_idx = np.setdiff1d(np.arange(len(labels)), held_idx)
    return kept_idx.astype(np.int64), held_idx.astype(np.int64)


def load_dataset(
    path: str | os.PathLike[str],
    classes: str | Iterable[str] | None = None,
    *,
    spec: InputSpec = DEFAULT_SPEC,
    splits: Sequence[str] = SPLITS,
    val_fraction: float = 0.1,
    seed: int = 0,
    progress: bool = False,
    workers: int | None = None,
) -> Dataset:
    """Load an image-folder dataset, a FER2013 CSV or a FER+ folder.

    Args:
        path: a folder holding ``train/``, ``val/`` and/or ``test/`` (each with one folder per
            class), a FER2013 ``.csv`` (``emotion,pixels,Usage``), or a folder in the FER+
            layout (``FER2013Train/``, ``FER2013Valid/``, ``FER2013Test/``, each with a
            ``label.csv``; detected by that layout).
        classes: which classes to keep (see :func:`fer_edge.labels.resolve_classes`); labels
            are remapped to indices into that subset.
        spec: the input spec; images are stored gray at ``spec.height x spec.width``.
        splits: which splits to load. If ``val`` is wanted but missing, it is carved from
            ``train`` by a seeded, stratified split of ``val_fraction``.
        val_fraction: share of train carved out as val when there is no val split.
        seed: seed of that split.
        progress: show a progress bar on stderr.
        workers: decoding threads (default: the CPU count).

    Returns:
        The loaded :class:`Dataset`. Corrupt files and bad rows are listed in ``skipped``.

    Raises:
        FerEdgeError: a missing path, no usable split, an unknown class folder, or a class
            with no training images.
    """
    root = Path(path)
    wanted = resolve_classes(classes)
    if not root.exists():
        raise FerEdgeError(f"--data: {root} does not exist")
    if root.is_file():
        if root.suffix.lower() != ".csv":
            raise FerEdgeError(f"--data: {root} is neither a dataset folder nor a .csv file")
        dataset = _load_csv(root, wanted, spec, splits, progress)
    elif ferplus.is_ferplus(root):
        dataset = _load_ferplus(root, _Request(wanted, spec, splits, progress, workers))
    else:
        dataset = _load_folders(root, _Request(wanted, spec, splits, progress, workers))
    if "val" in splits and "val" not in dataset.splits and "train" in dataset.splits:
        train = dataset.splits["train"]
        kept, held = stratified_split(train.labels, val_fraction, seed)
        dataset.splits["train"] = train.subset(kept)
        dataset.splits["val"] = train.subset(held)
        dataset.val_carved = True
    _check(dataset)
    return dataset


def _check(dataset: Dataset) -> None:
    if not dataset.splits:
        raise FerEdgeError(f"{dataset.source}: no images found in any split")
    for name, split in dataset.splits.items():
        if len(split) == 0:
            raise FerEdgeError(f"{dataset.source}: split '{name}' is empty")
    if "train" in dataset.splits:
        empty = [c for c, n in dataset.counts("train").items() if n == 0]
        if empty:
            raise FerEdgeError(
                f"{dataset.source}: class {', '.join(empty)} has no training images; "
                "drop it with --classes"
            )


def _list_folder_split(
    split_dir: Path, wanted: tuple[str, ...], skipped: list[Skipped]
) -> list[tuple[Path, int]]:
    items: list[tuple[Path, int]] = []
    for class_dir in sorted(p for p in split_dir.iterdir() if p.is_dir()):
        name = class_dir.name.lower()
        if name not in FER2013_CLASSES:
            raise FerEdgeError(
                f"{class_dir}: unknown class folder '{class_dir.name}'; valid classes are "
                f"{', '.join(FER2013_CLASSES)}"
            )
        if name not in wanted:
            continue
        label = wanted.index(name)
        for file in sorted(class_dir.iterdir()):
            if file.is_dir():
                continue
            if file.suffix.lower() in IMAGE_SUFFIXES:
                items.append((file, label))
            else:
                skipped.append(Skipped(str(file), "not an image file"))
    return items


def _decode(file: Path, spec: InputSpec) -> np.ndarray | str:
    try:
        raw = np.fromfile(file, dtype=np.uint8)
    except OSError as exc:
        return f"unreadable: {exc.strerror or exc}"
    image = cv2.imdecode(raw, cv2.IMREAD_GRAYSCALE) if raw.size else None
    if image is None:
        return "corrupt or not an image"
    return resize_face(image, spec)


@dataclass(frozen=True)
class _Request:
    """What a folder loader is asked for (see :func:`load_dataset`'s arguments)."""

    wanted: tuple[str, ...]
    spec: InputSpec
    splits: Sequence[str]
    progress: bool
    workers: int | None


def _load_folders(root: Path, request: _Request) -> Dataset:
    wanted, spec, splits = request.wanted, request.spec, request.splits
    present = [s for s in SPLITS if s in splits and (root / s).is_dir()]
    if not any((root / s).is_dir() for s in SPLITS):
        raise FerEdgeError(
            f"--data: {root} has no train/, val/ or test/ folder (nor FER+'s FER2013Train/, "
            "FER2013Valid/ with label.csv)"
        )
    skipped: list[Skipped] = []
    listed = {s: _list_folder_split(root / s, wanted, skipped) for s in present}
    decoded = _decode_splits(root.name, listed, spec, skipped, request.progress, request.workers)
    result = {name: split for name, (split, _) in decoded.items()}
    return Dataset(wanted, result, skipped, str(root))


def _decode_splits(
    name: str,
    listed: dict[str, list[tuple[Path, int]]],
    spec: InputSpec,
    skipped: list[Skipped],
    progress: bool,
    workers: int | None,
) -> dict[str, tuple[Split, np.ndarray]]:
    """Decode every listed ``(file, label)``; returns each split and the listed rows it kept."""
    total = sum(len(items) for items in listed.values())
    result: dict[str, tuple[Split, np.ndarray]] = {}
    with (
        ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 1) as pool,
        tqdm(
            total=total, desc=f"loading {name}", unit="img", disable=not progress, file=sys.stderr
        ) as bar,
    ):
        for split_name, items in listed.items():
            images: list[np.ndarray] = []
            labels: list[int] = []
            kept: list[int] = []
            # cv2.imdecode releases the GIL, so threads decode in parallel.
            decoded_all = pool.map(lambda it: _decode(it[0], spec), items, chunksize=64)
            for row, ((file, label), decoded) in enumerate(zip(items, decoded_all, strict=True)):
                bar.update(1)
                if isinstance(decoded, str):
                    skipped.append(Skipped(str(file), decoded))
                    continue
                images.append(decoded)
                labels.append(label)
                kept.append(row)
            result[split_name] = (_stack(images, labels, spec), np.asarray(kept, dtype=np.int64))
    return result


def _load_ferplus(root: Path, request: _Request) -> Dataset:
    wanted, spec, splits = request.wanted, request.spec, request.splits
    skipped: list[Skipped] = []
    listed: dict[str, list[tuple[Path, int]]] = {}
    parts: dict[str, ferplus.FerPlusSplit] = {}
    for split_name, folder in ferplus.FOLDERS.items():
        if split_name not in splits or not (root / folder / ferplus.LABEL_FILE).is_file():
            continue
        part = ferplus.list_split(root / folder, wanted)
        skipped.extend(Skipped(where, reason) for where, reason in part.bad_rows)
        parts[split_name] = part
        listed[split_name] = list(zip(part.files, part.labels.tolist(), strict=True))
    decoded = _decode_splits(root.name, listed, spec, skipped, request.progress, request.workers)
    result = {
        name: Split(
            split.images,
            split.labels,
            parts[name].votes[kept],
            np.asarray([f.name for f in parts[name].files])[kept],
        )
        for name, (split, kept) in decoded.items()
    }
    unscored = {name: part.unscored for name, part in parts.items()}
    return Dataset(wanted, result, skipped, str(root), label_set="ferplus", unscored=unscored)


def _stack(images: list[np.ndarray], labels: list[int], spec: InputSpec) -> Split:
    if not images:
        return Split(np.zeros((0, spec.height, spec.width), np.uint8), np.zeros(0, np.int64))
    return Split(np.stack(images), np.asarray(labels, dtype=np.int64))


def _load_csv(
    file: Path,
    wanted: tuple[str, ...],
    spec: InputSpec,
    splits: Sequence[str],
    progress: bool,
) -> Dataset:
    skipped: list[Skipped] = []
    per_split: dict[str, tuple[list[np.ndarray], list[int]]] = {}
    with file.open(newline="", encoding="utf-8", errors="replace") as handle:
        reader = csv.reader(handle)
        header = [h.strip().lower() for h in next(reader, [])]
        if "emotion" not in header or "pixels" not in header:
            raise FerEdgeError(
                f"--data: {file} is not a FER2013 CSV (needs emotion,pixels columns)"
            )
        col_emotion, col_pixels = header.index("emotion"), header.index("pixels")
        col_usage = header.index("usage") if "usage" in header else None
        rows = tqdm(
            reader, desc=f"loading {file.name}", unit="row", disable=not progress, file=sys.stderr
        )
        for line_no, row in enumerate(rows, start=2):
            parsed = _parse_row(row, col_emotion, col_pixels, col_usage)
            if isinstance(parsed, str):
                skipped.append(Skipped(f"{file}:{line_no}", parsed))
                continue
            fer_label, pixels, split_name = parsed
            name = FER2013_CLASSES[fer_label]
            if name not in wanted or split_name not in splits:
                continue
            images, labels = per_split.setdefault(split_name, ([], []))
            images.append(resize_face(pixels.reshape(48, 48), spec))
            labels.append(wanted.index(name))
    result = {s: _stack(*per_split[s], spec) for s in SPLITS if s in per_split}
    return Dataset(wanted, result, skipped, str(file))


def _parse_row(
    row: list[str], col_emotion: int, col_pixels: int, col_usage: int | None
) -> tuple[int, np.ndarray, str] | str:
    needed = max(col_emotion, col_pixels, col_usage or 0)
    if len(row) <= needed:
        return "missing columns"
    try:
        fer_label = int(row[col_emotion])
    except ValueError:
        return f"bad emotion {row[col_emotion]!r}"
    if not 0 <= fer_label < len(FER2013_CLASSES):
        return f"emotion {fer_label} out of range 0-6"
    try:
        values = np.array(row[col_pixels].split(), dtype=np.int32)
    except ValueError:
        return "non-numeric pixels"
    if values.size != FER_PIXELS:
        return f"{values.size} pixels, expected {FER_PIXELS}"
    if values.min() < 0 or values.max() > 255:
        return "pixel values outside 0-255"
    raw_usage = row[col_usage] if col_usage is not None else "training"
    usage = raw_usage.strip().lower()
    if usage not in CSV_USAGE:
        return f"unknown Usage {raw_usage!r}"
    return fer_label, values.astype(np.uint8), CSV_USAGE[usage]
