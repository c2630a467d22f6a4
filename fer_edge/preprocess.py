"""The one preprocessing path from a face crop to a model input.

Training, evaluation, benchmarks and the device all go through this module, so the pixels a
model sees on a Pi are made exactly as the pixels it was trained on. Nothing else in fer-edge
resizes, converts colour or normalises.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import cv2
import numpy as np


@dataclass(frozen=True)
class InputSpec:
    """What a model expects as input; travels inside every exported model.

    Attributes:
        height: input height in pixels.
        width: input width in pixels.
        channels: 1 for grayscale (the FER2013 default); 3 repeats the gray plane, for
            backbones built for three channels.
        scale: normalisation multiplier: ``x = pixel * scale + offset``.
        offset: normalisation offset; with ``scale=1/255, offset=0`` inputs are in [0, 1].
    """

    height: int = 48
    width: int = 48
    channels: int = 1
    scale: float = 1.0 / 255.0
    offset: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict, with the colour mode spelled out for readers."""
        return {**asdict(self), "color": "gray" if self.channels == 1 else "gray3"}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> InputSpec:
        """Build a spec from :meth:`to_dict` output, ignoring unknown keys."""
        fields = {"height", "width", "channels", "scale", "offset"}
        return cls(**{k: v for k, v in data.items() if k in fields})


DEFAULT_SPEC = InputSpec()


def to_gray(image: np.ndarray) -> np.ndarray:
    """Return a 2-D uint8 grayscale view of a gray, BGR or BGRA image."""
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim == 3:
        code = cv2.COLOR_BGRA2GRAY if image.shape[2] == 4 else cv2.COLOR_BGR2GRAY
        image = cv2.cvtColor(image, code)
    if image.ndim != 2:
        raise ValueError(f"expected a gray or BGR image, got shape {image.shape}")
    if image.dtype != np.uint8:
        image = np.clip(image, 0, 255).astype(np.uint8)
    return image


def resize_face(image: np.ndarray, spec: InputSpec = DEFAULT_SPEC) -> np.ndarray:
    """Turn a face crop of any size, gray or BGR, into a ``(height, width)`` uint8 gray image.

    This is the form datasets are stored in, so the loader and the device share it.
    """
    gray = to_gray(image)
    if gray.shape == (spec.height, spec.width):
        return np.ascontiguousarray(gray)
    # INTER_AREA averages when shrinking (camera crops are usually larger than 48 px).
    shrinking = gray.shape[0] > spec.height or gray.shape[1] > spec.width
    interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    return cv2.resize(gray, (spec.width, spec.height), interpolation=interpolation)


def normalize(gray: np.ndarray, spec: InputSpec = DEFAULT_SPEC) -> np.ndarray:
    """Map uint8 gray image(s) ``(..., H, W)`` to float32 model input ``(..., H, W, C)``."""
    x = np.asarray(gray, dtype=np.float32) * np.float32(spec.scale) + np.float32(spec.offset)
    x = x[..., np.newaxis]
    if spec.channels != 1:
        x = np.repeat(x, spec.channels, axis=-1)
    return x


def quantize(x: np.ndarray, scale: float, zero_point: int, dtype: np.dtype) -> np.ndarray:
    """Quantise float values with a tensor's affine parameters: ``q = round(x / s) + z``.

    Values are clipped to the range of the integer ``dtype``.
    """
    info = np.iinfo(dtype)
    # float32 is exact enough for 8-bit steps and keeps the per-face cost low on a Pi.
    q = np.rint(np.asarray(x, dtype=np.float32) / np.float32(scale)) + np.float32(zero_point)
    np.clip(q, info.min, info.max, out=q)
    return q.astype(dtype)


def dequantize(q: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    """Dequantise integer values: ``x = s * (q - z)``, widened to int64 before subtracting.

    Widening matters for uint8 (``q - z`` wraps around) and for int8 with a large zero point.
    Float inputs are returned as float32 unchanged.
    """
    q = np.asarray(q)
    if not np.issubdtype(q.dtype, np.integer):
        return q.astype(np.float32)
    return (scale * (q.astype(np.int64) - int(zero_point))).astype(np.float32)


def preprocess(
    image: np.ndarray,
    spec: InputSpec = DEFAULT_SPEC,
    dtype: np.dtype | type = np.float32,
    quantization: tuple[float, int] = (0.0, 0),
) -> np.ndarray:
    """Turn one face crop into a batch-of-one model input tensor.

    Args:
        image: a face crop of any size; gray (H, W), BGR (H, W, 3) or BGRA.
        spec: the model's input spec (size, channels, normalisation).
        dtype: the input tensor's dtype: float32 for float models, int8/uint8 for
            quantised models.
        quantization: the input tensor's ``(scale, zero_point)``; used when ``dtype`` is an
            integer type.

    Returns:
        An array of shape ``(1, height, width, channels)`` and the requested dtype.
    """
    x = normalize(resize_face(image, spec), spec)[np.newaxis]
    dtype = np.dtype(dtype)
    if np.issubdtype(dtype, np.integer):
        scale, zero_point = quantization
        if not scale:
            raise ValueError("an integer input tensor needs a non-zero quantisation scale")
        return quantize(x, scale, zero_point, dtype)
    return x.astype(dtype)
