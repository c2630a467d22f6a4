"""The model being converted: a trained Keras model and the metadata it carries."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fer_edge.errors import FerEdgeError
from fer_edge.evaluate import load_keras_model
from fer_edge.labels import resolve_classes
from fer_edge.modelmeta import ModelMeta, read_meta
from fer_edge.preprocess import InputSpec
from fer_edge.tfcompat import tf_and_keras
from fer_edge.train.precision import to_float32


@dataclass
class SourceModel:
    """A loaded Keras classifier and its metadata.

    Attributes:
        path: the model file.
        model: the ``tf_keras`` model (not compiled).
        meta: labels, input spec and name; the exports inherit it.
    """

    path: Path
    model: Any
    meta: ModelMeta

    @property
    def default_name(self) -> str:
        """The output file prefix: the metadata name, else the run folder (``runs/NAME/``)."""
        for candidate in (self.meta.name, self.path.parent.name, self.path.stem):
            cleaned = re.sub(r"[^A-Za-z0-9._-]+", "-", candidate or "").strip("-.")
            if cleaned:
                return cleaned
        return "model"


def load_source(path: str | os.PathLike[str], classes: str | None = None) -> SourceModel:
    """Load a trained Keras model and its fer-edge metadata.

    Args:
        path: a ``.keras`` (or ``.h5``) file saved by ``fer-edge train`` or ``tf_keras``.
        classes: the ``--classes`` flag; names the outputs of a model without metadata.

    Returns:
        The loaded model.

    Raises:
        FerEdgeError: a missing file, a file that is not a Keras model, a model that is not a
            single-input classifier, missing metadata, or metadata that contradicts the model.
    """
    path = Path(path)
    if not path.exists():
        raise FerEdgeError(f"{path}: no such model file")
    if path.suffix.lower() == ".tflite":
        raise FerEdgeError(
            f"{path}: a TFLite model cannot be converted again; pass the Keras model it came "
            "from (runs/NAME/model.keras)"
        )
    _, keras = tf_and_keras()
    model = load_keras_model(path)
    if not isinstance(model, keras.Model) or not getattr(model, "_is_graph_network", False):
        raise FerEdgeError(
            f"{path}: a subclassed Keras model cannot be pruned or quantised; save a "
            "functional or Sequential model"
        )
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise FerEdgeError(f"{path}: expected a model with one input and one output")
    # A mixed-precision checkpoint (checkpoints/*.keras of a --precision mixed run): TFLite and
    # tfmot need float32 layers; the weights are float32 already.
    model = to_float32(model)
    meta = _meta_for(path, model, classes)
    return SourceModel(path, model, meta)


def _meta_for(path: Path, model: Any, classes: str | None) -> ModelMeta:
    in_shape = tuple(model.inputs[0].shape[1:])
    outputs = int(model.outputs[0].shape[-1])
    try:
        meta = read_meta(path)
    except FerEdgeError:
        meta = _meta_from_flags(path, in_shape, outputs, classes)
    spec = meta.input
    if in_shape != (spec.height, spec.width, spec.channels):
        raise FerEdgeError(
            f"{path}: model input {in_shape} does not match its metadata "
            f"{(spec.height, spec.width, spec.channels)}"
        )
    if outputs != len(meta.labels):
        raise FerEdgeError(
            f"{path}: {outputs} outputs but {len(meta.labels)} labels in its metadata"
        )
    return meta


def _meta_from_flags(
    path: Path, in_shape: tuple[int, ...], outputs: int, classes: str | None
) -> ModelMeta:
    # A plain tf_keras model: --classes names the outputs, the input spec is the default
    # normalisation at the model's input size.
    if classes is None:
        raise FerEdgeError(
            f"{path}: no fer-edge metadata (labels, input spec); models saved by "
            f"'fer-edge train' carry it, otherwise pass --classes to name its {outputs} outputs"
        )
    if len(in_shape) != 3 or None in in_shape:
        raise FerEdgeError(f"{path}: expected a fixed image input (H, W, C), got {in_shape}")
    height, width, channels = map(int, in_shape)
    return ModelMeta(
        resolve_classes(classes), InputSpec(height, width, channels), name=path.parent.name
    )
