"""Keras model -> TFLite flatbuffer (float, post-training quantised, or from a QAT model)."""

from __future__ import annotations

import contextlib
import os
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from fer_edge.atomic import write_bytes
from fer_edge.data import Split
from fer_edge.errors import FerEdgeError
from fer_edge.modelmeta import ModelMeta, embed_in_tflite
from fer_edge.preprocess import InputSpec, normalize
from fer_edge.tfcompat import tf_and_keras

#: How :func:`to_tflite` quantises: ``float`` (none), ``dynamic`` (int8 weights, float
#: activations), ``float16`` (float16 weights), ``int8`` (full integer, calibrated on a
#: representative dataset), ``qat`` (full integer from a quantisation-aware model's ranges).
QUANTIZATIONS: tuple[str, ...] = ("float", "dynamic", "float16", "int8", "qat")


def representative_inputs(split: Split, spec: InputSpec, count: int, seed: int = 0) -> np.ndarray:
    """Pick ``count`` training faces (seeded) and normalise them exactly as at run time.

    Returns:
        float32 model inputs ``(count, H, W, C)``; all of ``split`` if it is smaller.
    """
    rng = np.random.default_rng(seed)
    pick = rng.permutation(len(split))[: min(count, len(split))]
    return normalize(split.images[np.sort(pick)], spec)


def to_tflite(model: Any, quantization: str = "float", representative: Any = None) -> bytes:
    """Convert a Keras model to a TFLite flatbuffer.

    Args:
        model: a ``tf_keras`` model (a quantisation-aware one for ``qat``).
        quantization: one of :data:`QUANTIZATIONS`.
        representative: float32 inputs ``(N, H, W, C)`` calibrating ``int8`` activations.

    Returns:
        The flatbuffer bytes. ``int8`` and ``qat`` models take and return int8 tensors.

    Raises:
        FerEdgeError: the converter rejects the model (its first message line is quoted).
    """
    if quantization not in QUANTIZATIONS:
        raise ValueError(f"unknown quantization {quantization!r}")
    tf, _ = tf_and_keras()
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if quantization != "float":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantization == "float16":
        converter.target_spec.supported_types = [tf.float16]
    if quantization == "int8":
        if representative is None or len(representative) == 0:
            raise ValueError("int8 post-training quantisation needs representative inputs")
        converter.representative_dataset = _batches_of_one(representative)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    if quantization in ("int8", "qat"):
        # For QAT the fake-quant ranges make every op int8. supported_ops is left alone:
        # TF 2.21 then demands a representative dataset that a QAT model does not need.
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    from tensorflow.lite.python.convert import ConverterError

    try:
        with warnings.catch_warnings(), _stdout_to_stderr():
            # "Statistics for quantized inputs were expected": QAT models carry their own.
            warnings.simplefilter("ignore", UserWarning)
            return converter.convert()
    except ConverterError as exc:
        first = next((ln for ln in str(exc).splitlines() if ln.strip()), type(exc).__name__)
        raise FerEdgeError(f"TFLite conversion ({quantization}) failed: {first[:300]}") from None


@contextlib.contextmanager
def _stdout_to_stderr() -> Iterator[None]:
    # The converter's C++ side prints "fully_quantize: ..." on file descriptor 1; keep stdout
    # for the summary table, so `fer-edge convert ... > table.txt` holds only the table.
    sys.stdout.flush()
    try:
        saved = os.dup(1)
    except OSError:
        yield
        return
    try:
        os.dup2(2, 1)
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def _batches_of_one(inputs: np.ndarray) -> Any:
    def generate() -> Iterator[list[np.ndarray]]:
        for sample in inputs:
            yield [sample[np.newaxis].astype(np.float32)]

    return generate


def write_tflite(path: str | os.PathLike[str], model: bytes, meta: ModelMeta) -> Path:
    """Write ``model`` with ``meta`` embedded, atomically (no partial file on interruption)."""
    return write_bytes(path, embed_in_tflite(model, meta))
