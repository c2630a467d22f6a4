"""The static facts of a benched model file: size, gzip size, card, tensor types."""

from __future__ import annotations

import importlib.resources
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fer_edge.card import gzip_size, read_card
from fer_edge.errors import FerEdgeError
from fer_edge.modelmeta import ModelMeta, read_meta


@dataclass(frozen=True)
class ModelInfo:
    """One model file as the report describes it.

    Attributes:
        path: the ``.tflite`` file.
        name: a short display name (the file stem, with its folder when stems repeat).
        method: the card's ``method`` (``float``, ``ptq-int8``, ...) or ``""`` without a card.
        size_bytes: the file size.
        gzip_bytes: the size gzip -9 makes of it (pruned weights compress, dense ones do not).
        sparsity: the card's weight sparsity, if recorded.
        meta: the labels and input spec carried by the model.
        parent: the float parent's path, or ``None``.
        pairing: how the parent was found (see :class:`fer_edge.bench.pairing.Pairing`).
        added: True if the model was not asked for but benched as another model's parent.
        tta: the test-time augmentation it runs with (``none`` or ``flip``).
        parent_name: the display name of the model its ratios are taken against: the float
            parent, or for a TTA variant the same model without TTA.
    """

    path: Path
    name: str
    method: str
    size_bytes: int
    gzip_bytes: int
    sparsity: float | None
    meta: ModelMeta
    parent: Path | None = None
    pairing: str = "unpaired"
    added: bool = False
    tta: str = "none"
    parent_name: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {
            "name": self.name,
            "path": str(self.path),
            "method": self.method,
            "size_bytes": self.size_bytes,
            "gzip_bytes": self.gzip_bytes,
            "sparsity": self.sparsity,
            "labels": list(self.meta.labels),
            "input": self.meta.input.to_dict(),
            "float_model": str(self.parent) if self.parent else None,
            "pairing": self.pairing,
            "added_as_parent": self.added,
            "tta": self.tta,
            "compared_with": self.parent_name,
            # Whose labels the model was trained on (its metadata; FER2013's when unsaid).
            "label_set": self.meta.extra.get("label_set", "fer2013"),
        }


def describe_model(path: Path, name: str | None = None) -> ModelInfo:
    """Read a model's size, gzip size, card and metadata.

    Raises:
        FerEdgeError: the file is missing or carries no fer-edge metadata.
    """
    meta = read_meta(path)
    data = path.read_bytes()
    card = read_card(path)
    sparsity = card.sparsity if card else None
    return ModelInfo(
        path=path,
        name=name or path.stem,
        method=card.method if card else "",
        size_bytes=len(data),
        gzip_bytes=gzip_size(data),
        sparsity=float(sparsity) if isinstance(sparsity, int | float) else None,
        meta=meta,
    )


def bundled_models() -> list[Path]:
    """Return the classifier ``.tflite`` files shipped in ``fer_edge/models`` (package data).

    The bundled face detector (also a ``.tflite``) is not a classifier and is left out.
    """
    from fer_edge.detect import YUNET_MODEL

    folder = importlib.resources.files("fer_edge.models")
    return sorted(
        Path(str(entry))
        for entry in folder.iterdir()
        if str(entry.name).endswith(".tflite") and entry.name != YUNET_MODEL
    )


def expand_model_paths(paths: Sequence[str | os.PathLike[str]]) -> list[Path]:
    """Turn command-line model arguments into ``.tflite`` files; folders give all they hold.

    Raises:
        FerEdgeError: a missing path, a file that is not ``.tflite``, or a folder without any;
            or no arguments and no bundled models.
    """
    if not paths:
        found = bundled_models()
        if not found:
            raise FerEdgeError(
                "no MODELS given and no models bundled in fer_edge/models; pass .tflite files "
                "or folders: fer-edge bench models/edge/*.tflite"
            )
        return found
    out: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            inside = sorted(path.glob("*.tflite"))
            if not inside:
                raise FerEdgeError(f"MODELS: folder {path} holds no .tflite files")
            out.extend(inside)
        elif not path.exists():
            raise FerEdgeError(f"MODELS: {path} does not exist")
        elif path.suffix.lower() != ".tflite":
            raise FerEdgeError(f"MODELS: {path} is not a .tflite file")
        else:
            out.append(path)
    unique: dict[Path, Path] = {}
    for path in out:
        unique.setdefault(path.resolve(), path)
    return list(unique.values())


def display_names(paths: Sequence[Path]) -> list[str]:
    """Return short unique names: the stem, prefixed by its folder where stems repeat."""
    stems = [p.stem for p in paths]
    names = []
    for path, stem in zip(paths, stems, strict=True):
        names.append(f"{path.parent.name}/{stem}" if stems.count(stem) > 1 else stem)
    # Two equal stems in equally named folders: fall back to the full path.
    return [str(p) if names.count(n) > 1 else n for p, n in zip(paths, names, strict=True)]
