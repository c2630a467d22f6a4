"""FER+ (ten human votes per FER2013 face) in its official layout.

A FER+ folder holds ``FER2013Train/``, ``FER2013Valid/`` and optionally ``FER2013Test/``, each
with the face PNGs and a header-less ``label.csv``: ``name, "(x, y, w, h)"`` and ten vote
counts in the order of :data:`VOTE_COLUMNS`. They load as the ``train``, ``val`` and ``test``
splits of a :class:`fer_edge.data.Dataset` whose ``labels`` are the FERPlus majority and whose
``votes`` are each face's vote distribution over the dataset's classes.

The FERPlus rules (``src/ferplus.py`` of the FERPlus repository), as applied here:

- a class with a single vote is an outlier: its vote is dropped;
- the majority class needs more than half of the remaining votes (unknown and not-a-face
  included); a face with none is *unscored*: counted, never used for training or scoring;
- a face whose majority is unknown or not-a-face is unscored, and so is one whose majority is a
  class the run leaves out (``contempt``, unless asked for as an eighth class);
- the vote distribution (``--targets votes``) is the remaining votes of the run's classes,
  normalised; unknown and not-a-face votes are not a class.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fer_edge.errors import FerEdgeError

#: label.csv's vote columns, in file order, under fer-edge's class names.
VOTE_COLUMNS: tuple[str, ...] = (
    "neutral",
    "happy",
    "surprise",
    "sad",
    "angry",
    "disgust",
    "fear",
    "contempt",
    "unknown",
    "not_a_face",
)
#: The vote columns that are not expression classes.
NOT_CLASSES = ("unknown", "not_a_face")
#: fer-edge split name -> FER+ folder name.
FOLDERS: dict[str, str] = {"train": "FER2013Train", "val": "FER2013Valid", "test": "FER2013Test"}
LABEL_FILE = "label.csv"


def is_ferplus(root: Path) -> bool:
    """Return True if ``root`` is a folder in the FER+ layout (any split with a label.csv)."""
    return root.is_dir() and any((root / f / LABEL_FILE).is_file() for f in FOLDERS.values())


@dataclass(frozen=True)
class VoteRow:
    """One parsed line of a ``label.csv``.

    Attributes:
        name: the image file name inside the split folder.
        votes: the ten vote counts in :data:`VOTE_COLUMNS` order.
    """

    name: str
    votes: np.ndarray


def read_label_file(path: Path) -> tuple[list[VoteRow], list[tuple[str, str]]]:
    """Parse a FER+ ``label.csv``.

    Returns:
        The good rows, and ``(where, reason)`` for every row that could not be used.

    Raises:
        FerEdgeError: the file cannot be read.
    """
    rows: list[VoteRow] = []
    bad: list[tuple[str, str]] = []
    try:
        handle = path.open(newline="", encoding="utf-8", errors="replace")
    except OSError as exc:
        raise FerEdgeError(f"--data: cannot read {path}: {exc.strerror or exc}") from None
    with handle:
        for line_no, row in enumerate(csv.reader(handle), start=1):
            where = f"{path}:{line_no}"
            if not row or not "".join(row).strip():
                continue
            if len(row) != 2 + len(VOTE_COLUMNS):
                bad.append((where, f"{len(row)} columns, expected {2 + len(VOTE_COLUMNS)}"))
                continue
            try:
                votes = np.array([float(v) for v in row[2:]], dtype=np.float32)
            except ValueError:
                bad.append((where, "non-numeric vote count"))
                continue
            if not np.all(np.isfinite(votes)) or votes.min() < 0 or votes.sum() <= 0:
                bad.append((where, "vote counts must be non-negative with a positive sum"))
                continue
            rows.append(VoteRow(row[0].strip(), votes))
    return rows, bad


def drop_outliers(votes: np.ndarray) -> np.ndarray:
    """Return ``votes`` (``(..., 10)``) with every single-vote class set to 0 (FERPlus rule)."""
    return np.where(votes <= 1.0, 0.0, votes).astype(np.float32)


def majority(votes: np.ndarray) -> str | None:
    """Return the FERPlus majority class of one face's ten vote counts, or ``None``.

    ``None`` when no class holds more than half of the votes left after outlier removal.
    The result may be ``unknown`` or ``not_a_face``: callers leave those out.
    """
    kept = drop_outliers(votes)
    total = float(kept.sum())
    top = int(np.argmax(kept))
    if total <= 0 or kept[top] <= 0.5 * total:
        return None
    return VOTE_COLUMNS[top]


def vote_distribution(votes: np.ndarray, classes: Sequence[str]) -> np.ndarray:
    """Return ``(N, len(classes))`` vote shares over ``classes`` after outlier removal.

    Rows with no vote left in ``classes`` are all zero.
    """
    kept = drop_outliers(np.atleast_2d(votes))
    columns = [VOTE_COLUMNS.index(c) for c in classes]
    picked = kept[:, columns]
    total = picked.sum(axis=1, keepdims=True)
    return np.divide(picked, total, out=np.zeros_like(picked), where=total > 0).astype(np.float32)


@dataclass(frozen=True)
class FerPlusSplit:
    """The usable faces of one FER+ split, before decoding.

    Attributes:
        files: image paths.
        labels: majority labels as indices into the run's classes.
        votes: ``(N, len(classes))`` vote distributions.
        unscored: faces left out, by reason (``no majority``, ``majority unknown``, ...).
        bad_rows: ``(where, reason)`` of label.csv rows that could not be parsed.
    """

    files: list[Path]
    labels: np.ndarray
    votes: np.ndarray
    unscored: dict[str, int]
    bad_rows: list[tuple[str, str]]


def list_split(folder: Path, classes: Sequence[str]) -> FerPlusSplit:
    """Read one split folder's ``label.csv`` and keep the faces with a majority in ``classes``.

    Raises:
        FerEdgeError: a class that FER+ has no votes for, or an unreadable label file.
    """
    unknown = [c for c in classes if c not in VOTE_COLUMNS or c in NOT_CLASSES]
    if unknown:
        raise FerEdgeError(f"--classes: FER+ has no votes for {', '.join(unknown)}")
    rows, bad = read_label_file(folder / LABEL_FILE)
    files: list[Path] = []
    labels: list[int] = []
    votes: list[np.ndarray] = []
    unscored: dict[str, int] = {}
    for row in rows:
        top = majority(row.votes)
        if top is None or top not in classes:
            reason = "no majority" if top is None else f"majority {top}"
            unscored[reason] = unscored.get(reason, 0) + 1
            continue
        files.append(folder / row.name)
        labels.append(list(classes).index(top))
        votes.append(row.votes)
    matrix = np.stack(votes) if votes else np.zeros((0, len(VOTE_COLUMNS)), np.float32)
    return FerPlusSplit(
        files,
        np.asarray(labels, dtype=np.int64),
        vote_distribution(matrix, classes),
        unscored,
        bad,
    )
