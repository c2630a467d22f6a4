"""Joint targets: each FER+ face's vote distribution mixed with its FER2013 label.

The FER+ training PNGs are FER2013's (``FER2013Train/fer0000123.png`` is
``fer2013/train/<class>/fer0000123.png``), so the file name finds the FER2013 label. A face
with no FER2013 copy, or whose FER2013 class the run leaves out, keeps its votes alone.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from fer_edge.data import Dataset, Split
from fer_edge.errors import FerEdgeError


def fer2013_label_index(root: Path, classes: tuple[str, ...]) -> dict[str, int]:
    """Map every ``train/<class>/<file>`` name under ``root`` to its index in ``classes``.

    Raises:
        FerEdgeError: ``root`` has no ``train/`` folder.
    """
    train = root / "train"
    if not train.is_dir():
        raise FerEdgeError(f"--joint-labels: {root} has no train/ folder of FER2013 classes")
    index: dict[str, int] = {}
    for class_dir in sorted(p for p in train.iterdir() if p.is_dir()):
        if class_dir.name.lower() in classes:
            label = classes.index(class_dir.name.lower())
            index.update((file.name, label) for file in class_dir.iterdir())
    return index


def joint_targets(
    dataset: Dataset, splits: Sequence[Split], joint_labels: str | None, mix: float
) -> list[np.ndarray]:
    """Return ``(1 - mix) * votes + mix * one_hot(FER2013 label)`` for the faces of each split.

    Args:
        dataset: the FER+ dataset the splits come from (its classes and source folder).
        splits: FER+ splits (with votes and names), e.g. the fitting and selection parts.
        joint_labels: the FER2013 folder dataset (``None``: ``fer2013`` beside the FER+ folder).
        mix: the FER2013 label's share.
    """
    if any(split.votes is None or split.names is None for split in splits):
        raise FerEdgeError("--targets joint: needs FER+ data (vote counts and file names)")
    root = Path(joint_labels) if joint_labels else Path(dataset.source).parent / "fer2013"
    # Listed once for every split: the FER2013 folder holds tens of thousands of files.
    index = fer2013_label_index(root, dataset.classes)
    return [_mixed(split, index, len(dataset.classes), mix, root) for split in splits]


def _mixed(split: Split, index: dict[str, int], classes: int, mix: float, root: Path) -> np.ndarray:
    assert split.votes is not None and split.names is not None  # checked by joint_targets
    found = np.array([index.get(str(name), -1) for name in split.names], dtype=np.int64)
    targets = split.votes.astype(np.float32).copy()
    has = found >= 0
    one_hot = np.eye(classes, dtype=np.float32)[found[has]]
    targets[has] = (1.0 - mix) * targets[has] + mix * one_hot
    if not has.all():
        print(
            f"--targets joint: {int((~has).sum())} of {len(split)} faces have no FER2013 label "
            f"in {root}; they keep their votes alone",
            file=sys.stderr,
        )
    return targets
