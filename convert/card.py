"""The model card of an exported model, built from what the conversion measured."""

from __future__ import annotations

from pathlib import Path

from fer_edge.card import ModelCard
from fer_edge.convert.results import ExportedModel
from fer_edge.modelmeta import ModelMeta


def card_for(
    model: ExportedModel,
    meta: ModelMeta,
    *,
    source: Path,
    val_images: int,
    val_carved: bool,
    runtime: str,
) -> ModelCard:
    """Return the model card of an exported model.

    Args:
        model: the exported model and its measurements.
        meta: the metadata embedded in the model file.
        source: the Keras model it was converted from.
        val_images: how many ``val`` images the accuracies are measured on.
        val_carved: whether ``val`` was carved from ``train``.
        runtime: the TFLite runtime that measured them (e.g. ``litert 2.3.0``).
    """
    return ModelCard(
        meta=meta,
        method=model.method,
        source=str(source),
        float_model=model.float_model,
        sparsity=round(model.sparsity, 6),
        sparsity_all_kernels=round(model.sparsity_all_kernels, 6),
        target_sparsity=model.target_sparsity,
        val_accuracy=round(model.val_accuracy, 6),
        float_val_accuracy=round(model.float_val_accuracy, 6),
        agreement=round(model.agreement, 6),
        val_images=val_images,
        val_split="carved from train" if val_carved else "val",
        size_bytes=model.size_bytes,
        gzip_bytes=model.gzip_bytes,
        input_dtype=model.input_dtype,
        output_dtype=model.output_dtype,
        fine_tune=model.fine_tune,
        runtime=runtime,
        seconds=round(model.seconds, 1),
    )
