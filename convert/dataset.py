"""Load the data a conversion needs, refusing data whose classes differ from the model's."""

from __future__ import annotations

import os
from pathlib import Path

from fer_edge.data import SPLITS, Dataset, load_dataset
from fer_edge.errors import FerEdgeError
from fer_edge.evaluate import in_model_order
from fer_edge.ferplus import is_ferplus
from fer_edge.labels import FER2013_CLASSES, KNOWN_CLASSES, resolve_classes
from fer_edge.modelmeta import ModelMeta


def data_classes(path: str | os.PathLike[str]) -> tuple[str, ...]:
    """Return the classes a dataset holds, in FER2013 order.

    A folder dataset holds the class folders (with at least one file) of its splits; a
    FER2013 CSV holds all seven classes. (FER+ folders are not asked: their votes cover every
    class, see :func:`check_classes`.)
    """
    root = Path(path)
    if not root.exists():
        raise FerEdgeError(f"--data: {root} does not exist")
    if root.is_file():
        return FER2013_CLASSES
    found: set[str] = set()
    for split in SPLITS:
        split_dir = root / split
        if not split_dir.is_dir():
            continue
        for class_dir in split_dir.iterdir():
            if class_dir.is_dir() and any(p.is_file() for p in class_dir.iterdir()):
                found.add(class_dir.name.lower())
    # Unknown folder names are reported by the loader, with the folder path.
    return tuple(c for c in FER2013_CLASSES if c in found) + tuple(
        sorted(found - set(FER2013_CLASSES))
    )


def check_classes(
    data: str | os.PathLike[str], meta: ModelMeta, classes: str | None, model_path: Path
) -> None:
    """Refuse data and ``--classes`` that do not match the model's labels.

    Raises:
        FerEdgeError: ``--classes`` names other classes than the model predicts, the data
            lacks one of the model's classes, or the data holds classes the model does not
            predict and ``--classes`` does not say to ignore them.
    """
    labels = meta.labels
    foreign = [c for c in labels if c not in KNOWN_CLASSES]
    if foreign:
        raise FerEdgeError(
            f"{model_path}: labels {', '.join(foreign)} are not FER2013 or FER+ classes "
            f"({', '.join(KNOWN_CLASSES)})"
        )
    if classes is not None and set(resolve_classes(classes)) != set(labels):
        raise FerEdgeError(
            f"--classes: {','.join(resolve_classes(classes))} does not match the classes "
            f"{model_path} predicts ({','.join(labels)})"
        )
    if is_ferplus(Path(data)):
        # Votes cover every class; faces whose majority the model lacks are left unscored.
        return
    held = data_classes(data)
    missing = [c for c in labels if c not in held]
    if missing:
        raise FerEdgeError(
            f"--data: {data} has no images of class {', '.join(missing)}, which {model_path} "
            f"predicts ({','.join(labels)})"
        )
    extra = [c for c in held if c not in labels]
    if extra and classes is None:
        raise FerEdgeError(
            f"--data: {data} holds class {', '.join(extra)} that {model_path} does not predict "
            f"(its classes: {','.join(labels)}); pass --classes {','.join(labels)} to use only "
            "those"
        )


def load_for_model(
    data: str | os.PathLike[str],
    meta: ModelMeta,
    *,
    classes: str | None,
    model_path: Path,
    seed: int = 0,
    val_fraction: float = 0.1,
    progress: bool = False,
) -> Dataset:
    """Load ``train`` and ``val`` with the model's input spec, labels in the model's order.

    Raises:
        FerEdgeError: see :func:`check_classes`, and every error of
            :func:`fer_edge.data.load_dataset`.
    """
    check_classes(data, meta, classes, model_path)
    dataset = load_dataset(
        data,
        meta.labels,
        spec=meta.input,
        splits=("train", "val"),
        val_fraction=val_fraction,
        seed=seed,
        progress=progress,
    )
    return in_model_order(dataset, meta.labels)
