"""Model cards: the ``X.json`` beside every ``X.tflite``, recording how it was made."""

from __future__ import annotations

import datetime as _dt
import json
import os
from pathlib import Path
from typing import Any

from fer_edge import __version__
from fer_edge.atomic import write_json
from fer_edge.convert.results import ExportedModel
from fer_edge.modelmeta import ModelMeta

#: Table order: the reference, then the baselines, then what fine-tuning makes.
_ORDER = {
    m: i
    for i, m in enumerate(
        ("float", "ptq-float16", "ptq-dynamic", "ptq-int8", "qat-int8", "pruned-float", "pqat-int8")
    )
}


def card_for(
    model: ExportedModel,
    meta: ModelMeta,
    *,
    source: Path,
    val_images: int,
    val_carved: bool,
    runtime: str,
) -> dict[str, Any]:
    """Return the model card of an exported model.

    Args:
        model: the exported model and its measurements.
        meta: the metadata embedded in the model file.
        source: the Keras model it was converted from.
        val_images: how many ``val`` images the accuracies are measured on.
        val_carved: whether ``val`` was carved from ``train``.
        runtime: the TFLite runtime that measured them (e.g. ``litert 2.3.0``).
    """
    return {
        "meta": meta.to_dict(),
        "method": model.method,
        "source": str(source),
        "float_model": model.float_model,
        "sparsity": round(model.sparsity, 6),
        "sparsity_all_kernels": round(model.sparsity_all_kernels, 6),
        "target_sparsity": model.target_sparsity,
        "val_accuracy": round(model.val_accuracy, 6),
        "float_val_accuracy": round(model.float_val_accuracy, 6),
        "agreement": round(model.agreement, 6),
        "val_images": val_images,
        "val_split": "carved from train" if val_carved else "val",
        "size_bytes": model.size_bytes,
        "gzip_bytes": model.gzip_bytes,
        "input_dtype": model.input_dtype,
        "output_dtype": model.output_dtype,
        "fine_tune": model.fine_tune,
        "runtime": runtime,
        "seconds": round(model.seconds, 1),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "fer_edge_version": __version__,
    }


def write_card(path: Path, card: dict[str, Any]) -> Path:
    """Write a model card atomically and return its path."""
    return write_json(path, card)


def read_cards(folder: str | os.PathLike[str]) -> list[ExportedModel]:
    """Read back the models of a conversion folder from their cards, float32 reference first.

    Several ``fer-edge convert`` runs into one folder (``--int8``, then ``--prune 0.5 --int8``)
    can so be summarised in one table (see :func:`fer_edge.convert.report.format_table`).
    """
    models = []
    for card_path in sorted(Path(folder).glob("*.json")):
        try:
            card = json.loads(card_path.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        model_path = card_path.with_suffix(".tflite")
        if not isinstance(card, dict) or "method" not in card or not model_path.is_file():
            continue
        models.append(
            ExportedModel(
                path=model_path,
                card=card_path,
                method=card["method"],
                float_model=card.get("float_model", ""),
                size_bytes=int(card["size_bytes"]),
                gzip_bytes=int(card["gzip_bytes"]),
                sparsity=float(card.get("sparsity", 0.0)),
                sparsity_all_kernels=float(card.get("sparsity_all_kernels", 0.0)),
                target_sparsity=card.get("target_sparsity"),
                val_accuracy=float(card["val_accuracy"]),
                float_val_accuracy=float(card["float_val_accuracy"]),
                agreement=float(card["agreement"]),
                input_dtype=card.get("input_dtype", ""),
                output_dtype=card.get("output_dtype", ""),
                fine_tune=card.get("fine_tune"),
                seconds=float(card.get("seconds", 0.0)),
            )
        )
    return sorted(models, key=lambda m: (_ORDER.get(m.method, len(_ORDER)), m.path.name))
