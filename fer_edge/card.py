"""The model card: the ``X.json`` beside every ``X.tflite``, recording how it was made.

One typed :class:`ModelCard` is written by ``fer-edge convert``, the bundling tool and the CI
benchmark, and read by ``fer-edge bench`` (pairing, methods) and the conversion summary. Keys
this version does not know are kept in ``extra`` and written back, so a card made by a newer
fer-edge survives a round trip through an older one.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import gzip
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fer_edge import __version__
from fer_edge.atomic import write_json
from fer_edge.errors import first_line
from fer_edge.modelmeta import ModelMeta, sidecar_path

#: The ``method`` of a float32 reference model.
FLOAT_METHOD = "float"


def gzip_size(data: bytes | str | os.PathLike[str]) -> int:
    """Return the gzip -9 size of ``data`` or of the file it names.

    Deterministic (no name or time in the header), so a card's number can be checked.
    """
    raw = data if isinstance(data, bytes) else Path(data).read_bytes()
    return len(gzip.compress(raw, compresslevel=9, mtime=0))


def now_iso() -> str:
    """Return the current UTC time as an ISO 8601 string with seconds (card timestamps)."""
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


@dataclass
class ModelCard:
    """How one ``.tflite`` model was made and what was measured on it.

    Attributes:
        meta: the metadata embedded in the model file (labels, input spec); ``None`` in a
            hand-written card (the model file carries its own).
        method: ``float``, ``ptq-dynamic``, ``ptq-float16``, ``ptq-int8``, ``qat-int8``,
            ``pruned-float`` or ``pqat-int8`` (``""`` if unknown).
        source: the Keras model (or script) it was made from.
        float_model: file name of the float32 model of the same network, in the same folder.
        sparsity: share of zero weights in conv and fully-connected kernels.
        sparsity_all_kernels: the same with depthwise kernels included.
        target_sparsity: the ``--prune`` target, or ``None``.
        val_accuracy: top-1 accuracy on ``val_split``, measured through the TFLite interpreter.
        float_val_accuracy: the same for the float32 model.
        agreement: share of faces with the same top-1 as the float32 model.
        val_images: how many images the accuracies were measured on.
        val_split: ``val`` or ``carved from train``.
        size_bytes: file size.
        gzip_bytes: gzip -9 size of the file.
        input_dtype: the input tensor dtype.
        output_dtype: the output tensor dtype.
        fine_tune: fine-tuning settings, or ``None`` for post-training methods.
        runtime: the TFLite runtime that measured the accuracies (e.g. ``litert 2.3.0``).
        seconds: wall time spent making the model.
        created: when the card was written (UTC, ISO 8601).
        fer_edge_version: the fer-edge version that wrote it.
        training: the training run's summary (bundled models).
        benchmark: accuracy and latency from a ``fer-edge bench`` run (bundled models).
        extra: every other key (e.g. ``bundled_from``, ``compiled_from``, ``edgetpu_log``).
    """

    meta: ModelMeta | None = None
    method: str = ""
    source: str = ""
    float_model: str | None = None
    sparsity: float | None = None
    sparsity_all_kernels: float | None = None
    target_sparsity: float | None = None
    val_accuracy: float | None = None
    float_val_accuracy: float | None = None
    agreement: float | None = None
    val_images: int | None = None
    val_split: str | None = None
    size_bytes: int | None = None
    gzip_bytes: int | None = None
    input_dtype: str | None = None
    output_dtype: str | None = None
    fine_tune: dict[str, Any] | None = None
    runtime: str | None = None
    seconds: float | None = None
    created: str = field(default_factory=now_iso)
    fer_edge_version: str = __version__
    training: dict[str, Any] | None = None
    benchmark: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def is_float_reference(self) -> bool:
        """True if this card describes a float32 reference model."""
        return self.method == FLOAT_METHOD

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form: every field at the top level, ``extra`` merged in."""
        data: dict[str, Any] = {"meta": self.meta.to_dict()} if self.meta else {}
        for f in dataclasses.fields(self):
            if f.name in ("meta", "extra"):
                continue
            value = getattr(self, f.name)
            if value is not None or f.name in _ALWAYS_WRITTEN:
                data[f.name] = value
        data.update(self.extra)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelCard:
        """Inverse of :meth:`to_dict`.

        Raises:
            ValueError: ``data`` holds a ``meta`` that is not valid metadata, or a known key
                of the wrong type (a number as ``float_model``, text as ``sparsity``).
        """
        names = {f.name for f in dataclasses.fields(cls)} - {"meta", "extra"}
        known = {k: v for k, v in data.items() if k in names}
        extra = {k: v for k, v in data.items() if k not in names and k != "meta"}
        if not isinstance(known.get("method", ""), str):
            known.pop("method")
        for key, value in known.items():
            allowed = _FIELD_TYPES[key]
            if value is not None and (isinstance(value, bool) or not isinstance(value, allowed)):
                raise ValueError(f"{key}: expected {allowed[0].__name__}, got {value!r:.40}")
        try:
            meta = ModelMeta.from_dict(data["meta"]) if isinstance(data.get("meta"), dict) else None
        except (AttributeError, TypeError, KeyError) as exc:
            raise ValueError(f"meta: {exc}") from None
        return cls(meta=meta, extra=extra, **known)

    def write(self, path: str | os.PathLike[str]) -> Path:
        """Write the card atomically and return its path."""
        return write_json(path, self.to_dict())


#: The JSON types each known key may hold (besides null); an int is a valid float.
_FIELD_TYPES: dict[str, tuple[type, ...]] = {
    f.name: (
        (float, int)
        if "float" in str(f.type)
        else (int,)
        if "int" in str(f.type)
        else (dict,)
        if "dict" in str(f.type)
        else (str,)
    )
    for f in dataclasses.fields(ModelCard)
    if f.name not in ("meta", "extra")
}

#: Keys written even when ``None``: readers of older cards expect them.
_ALWAYS_WRITTEN = frozenset({"float_model", "target_sparsity", "fine_tune"})


def card_path(model_path: str | os.PathLike[str]) -> Path:
    """Return the card path of a model: ``X.tflite`` -> ``X.json``."""
    return sidecar_path(model_path)


def read_card(model_path: str | os.PathLike[str]) -> ModelCard | None:
    """Return the card beside ``model_path``, or ``None`` if absent or unreadable.

    Bench must keep going on a hand-copied model without its card, so a bad card is treated
    as no card rather than an error; a card that exists but does not parse is named in a
    one-line warning on stderr.
    """
    path = card_path(model_path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        return ModelCard.from_dict(data)
    except FileNotFoundError:
        return None
    except (OSError, ValueError, TypeError, KeyError) as exc:
        if path not in _WARNED:  # bench reads a card more than once
            _WARNED.add(path)
            print(f"warning: ignoring the model card {path} ({first_line(exc)})", file=sys.stderr)
        return None


_WARNED: set[Path] = set()
