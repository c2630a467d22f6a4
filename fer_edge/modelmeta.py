"""Self-describing model files: labels and the input spec travel with the model.

A ``.tflite`` file gets a small zip archive appended to it holding ``fer_edge.json`` (the same
trick TFLite metadata uses for associated files: interpreters read the flatbuffer and ignore
trailing bytes, and a zip is read from its end). A ``.keras`` file is itself a zip, so the same
member is added to it. A sidecar JSON next to the model (``model.json`` with a ``meta`` key)
is the fallback, for files that lost the archive (e.g. after ``edgetpu_compiler``).
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fer_edge.errors import FerEdgeError
from fer_edge.facecrop import FER2013_TEMPLATE, AlignTemplate
from fer_edge.preprocess import InputSpec

META_MEMBER = "fer_edge.json"
META_VERSION = 1


@dataclass(frozen=True)
class ModelMeta:
    """What a model needs to be used without any other flag.

    Attributes:
        labels: class names in output order.
        input: the input spec (size, channels, normalisation).
        name: a short model name (e.g. ``edge``).
        extra: free-form provenance (method, sparsity, source model, ...).
        alignment: where the face landmarks sit in this model's training crops; ``None`` for
            models trained on FER2013's framing (see :meth:`template`).
    """

    labels: tuple[str, ...]
    input: InputSpec = field(default_factory=InputSpec)
    name: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    alignment: AlignTemplate | None = None

    @property
    def template(self) -> AlignTemplate:
        """The alignment template live crops are warped onto (FER2013's unless stored)."""
        return self.alignment or FER2013_TEMPLATE

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form stored inside model files."""
        out = {
            "format": "fer-edge",
            "version": META_VERSION,
            "name": self.name,
            "labels": list(self.labels),
            "input": self.input.to_dict(),
            "output": "probabilities",
            "extra": self.extra,
        }
        if self.alignment is not None:
            out["alignment"] = self.alignment.to_dict()
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelMeta:
        """Parse :meth:`to_dict` output."""
        labels = data.get("labels")
        if not labels or not all(isinstance(x, str) for x in labels):
            raise ValueError("metadata has no label list")
        return cls(
            labels=tuple(labels),
            input=InputSpec.from_dict(data.get("input", {})),
            name=str(data.get("name", "")),
            extra=dict(data.get("extra", {})),
            alignment=(
                AlignTemplate.from_dict(data["alignment"]) if data.get("alignment") else None
            ),
        )


def embed_in_tflite(model: bytes, meta: ModelMeta) -> bytes:
    """Return the TFLite flatbuffer ``model`` with ``meta`` appended as a zip archive."""
    buffer = io.BytesIO(model)
    # Mode "a" on non-zip data appends a fresh archive, with offsets from the file start.
    with zipfile.ZipFile(buffer, "a", compression=zipfile.ZIP_STORED) as archive:
        archive.writestr(META_MEMBER, json.dumps(meta.to_dict(), indent=1))
    return buffer.getvalue()


def strip_meta(model: bytes) -> bytes:
    """Return a ``.tflite`` file's bytes without the archive :func:`embed_in_tflite` appended."""
    try:
        with zipfile.ZipFile(io.BytesIO(model)) as archive:
            start = min(info.header_offset for info in archive.infolist())
    except (zipfile.BadZipFile, ValueError):
        return model
    return model[:start]


def add_to_zip_model(path: str | os.PathLike[str], meta: ModelMeta, replace: bool = False) -> None:
    """Store ``meta`` inside a zip-based model file (``.keras``) in place.

    Args:
        path: the ``.keras`` file.
        meta: the metadata to store.
        replace: rewrite the file without its old metadata first (a checkpoint that becomes
            the run's ``model.keras`` carries the checkpoint's); otherwise existing metadata
            is an error.

    Raises:
        ValueError: the file already holds metadata and ``replace`` is false.
    """
    with zipfile.ZipFile(path) as archive:
        present = META_MEMBER in archive.namelist()
    if present and not replace:
        raise ValueError(f"{path} already holds {META_MEMBER}")
    if present:
        # A zip member cannot be removed in place: copy the others into a fresh archive.
        buffer = io.BytesIO()
        with zipfile.ZipFile(path) as old, zipfile.ZipFile(buffer, "w") as new:
            for info in old.infolist():
                if info.filename != META_MEMBER:
                    new.writestr(info, old.read(info.filename))
        Path(path).write_bytes(buffer.getvalue())
    with zipfile.ZipFile(path, "a", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(META_MEMBER, json.dumps(meta.to_dict(), indent=1))


def sidecar_path(model_path: str | os.PathLike[str]) -> Path:
    """Return the model card path that belongs to a model file (``x.tflite`` -> ``x.json``)."""
    return Path(model_path).with_suffix(".json")


def read_meta(path: str | os.PathLike[str]) -> ModelMeta:
    """Read the metadata of a ``.tflite`` or ``.keras`` model.

    Looks inside the file first, then at the sidecar model card.

    Raises:
        FerEdgeError: the file is missing or carries no fer-edge metadata.
    """
    path = Path(path)
    if not path.is_file():
        raise FerEdgeError(f"model {path} does not exist")
    try:
        with zipfile.ZipFile(path) as archive:
            if META_MEMBER in archive.namelist():
                return ModelMeta.from_dict(json.loads(archive.read(META_MEMBER)))
    except (zipfile.BadZipFile, ValueError, KeyError, json.JSONDecodeError):
        pass
    card = sidecar_path(path)
    if card.is_file():
        try:
            return ModelMeta.from_dict(json.loads(card.read_text())["meta"])
        except (KeyError, ValueError, TypeError, json.JSONDecodeError):
            pass
    raise FerEdgeError(
        f"{path}: no fer-edge metadata (labels, input spec) inside the file or in {card.name}; "
        "export models with 'fer-edge convert'"
    )
