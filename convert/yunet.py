"""Rebuild OpenCV zoo's YuNet face detector in Keras from its ONNX file and export it to TFLite.

The device runs the result on the TFLite interpreter (:mod:`fer_edge.yunetlite`), where
XNNPACK is about twice as fast as OpenCV's DNN module on the same network. No ONNX package is
needed: OpenCV reads the file, its ``Net.dump()`` gives the layer graph (kernel, stride, pad,
group, which layer feeds which) and each layer's ``blobs`` its weights (batch norm is already
folded into the convolutions in the zoo's file). The Keras twin keeps every convolution,
pooling, upsampling and addition; the heads end at NHWC tensors (class and objectness
probabilities side by side, box and landmark offsets) that the device decodes.

Usage::

    python -m fer_edge.convert.yunet fer_edge/models/face_detection_yunet_2026may.onnx \\
        fer_edge/models/face_detection_yunet_2026may.tflite
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import numpy as np

from fer_edge.atomic import write_bytes
from fer_edge.errors import FerEdgeError
from fer_edge.tfcompat import tf_and_keras

#: The input size the graph is read at (any multiple of 32 gives the same layers).
_PROBE_SIZE = (320, 320)
_NODE = re.compile(r'^\t"([^"]+)" \[label="(.*?)" fillcolor', re.M)
_EDGE = re.compile(r'^\t"([^"]+)" -> "([^"]+)"', re.M)


def _number(pattern: str, text: str) -> int:
    match = re.search(pattern, text)
    if match is None:
        raise FerEdgeError(f"YuNet graph: no {pattern!r} in {text[:80]!r}")
    return int(match.group(1))


def _conv(keras: Any, x: Any, spec: str, blobs: list[np.ndarray]) -> Any:
    kernel = _number(r"kernel_size \(HxW\): (\d+)", spec)
    stride = _number(r"stride \(HxW\): (\d+)", spec)
    pad = _number(r"pad \(HxW\): \((\d+)", spec)
    groups = _number(r"group: (\d+)", spec)
    weights, bias = blobs[0], blobs[1].reshape(-1)
    out_channels, in_per_group = weights.shape[:2]
    if pad and stride > 1:
        # PyTorch pads both sides; TF's "same" would pad only the bottom and right here.
        x = keras.layers.ZeroPadding2D(pad)(x)
    padding = "same" if pad and stride == 1 else "valid"
    if groups == 1:
        layer = keras.layers.Conv2D(out_channels, kernel, stride, padding)
        x = layer(x)
        layer.set_weights([weights.transpose(2, 3, 1, 0), bias])
    elif in_per_group == 1 and groups == out_channels:
        layer = keras.layers.DepthwiseConv2D(kernel, stride, padding)
        x = layer(x)
        layer.set_weights([weights.transpose(2, 3, 0, 1), bias])
    else:
        raise FerEdgeError(f"YuNet graph: grouped convolution {weights.shape} x{groups}")
    return x


def yunet_keras(onnx_path: str | Path) -> Any:
    """Return YuNet as a Keras model with outputs ``score_8``, ..., ``kps_32``.

    Raises:
        FerEdgeError: OpenCV cannot read the file, or it holds a layer this rebuild lacks.
    """
    import cv2

    _, keras = tf_and_keras()
    try:
        net = cv2.dnn.readNet(str(onnx_path))
        weights = cv2.dnn.readNet(str(onnx_path))  # unfused: forward() may fuse layers
    except cv2.error:
        raise FerEdgeError(f"{onnx_path}: OpenCV cannot read it as an ONNX model") from None
    net.setInput(cv2.dnn.blobFromImage(np.zeros((*_PROBE_SIZE[::-1], 3), np.uint8)))
    net.forward(net.getUnconnectedOutLayersNames())
    dump = net.dump()
    sources: dict[str, list[str]] = {}
    for source, target in _EDGE.findall(dump):
        sources.setdefault(target, []).append(source)
    inputs = keras.Input((None, None, 3), batch_size=1, name="bgr")
    tensors: dict[str, Any] = {"_input": inputs}
    heads: dict[str, Any] = {}
    for node, label in _NODE.findall(dump):
        # A fused node lists its layers joined by " | ": a convolution, then maybe its ReLU.
        parts = label.strip("{}").split(" | ")
        name, kind = parts[0].split("\\n")[:2]
        given = [tensors[s] for s in sources[node]]
        if kind == "Convolution":
            x = _conv(keras, given[0], parts[0], list(weights.getLayer(name).blobs))
            if any("\\nReLU" in p for p in parts[1:]):
                x = keras.layers.ReLU()(x)
        elif kind == "ReLU":
            x = keras.layers.ReLU()(given[0])
        elif kind == "Pooling":
            x = keras.layers.MaxPool2D(2)(given[0])
        elif kind == "Resize":
            x = keras.layers.UpSampling2D(2, interpolation="nearest")(given[0])
        elif kind == "NaryEltwise":
            x = keras.layers.Add()(given)
        elif kind == "Sigmoid":
            x = keras.layers.Activation("sigmoid")(given[0])
        elif kind in ("Permute", "Reshape"):
            x = given[0]  # the heads stay NHWC grids; the decoder flattens them
        elif kind == "Identity":
            x = heads[name] = given[0]
        else:
            raise FerEdgeError(f"YuNet graph: layer {name} of kind {kind} is not rebuilt")
        tensors[node] = x
    outputs = []
    for stride in (8, 16, 32):
        outputs.append(
            keras.layers.Concatenate(name=f"score_{stride}")(
                [heads[f"cls_{stride}"], heads[f"obj_{stride}"]]
            )
        )
    for kind in ("bbox", "kps"):
        for stride in (8, 16, 32):
            outputs.append(
                keras.layers.Identity(name=f"{kind}_{stride}")(heads[f"{kind}_{stride}"])
            )
    return keras.Model(inputs, outputs, name="yunet")


def yunet_tflite(onnx_path: str | Path) -> bytes:
    """Return the float32 TFLite flatbuffer of :func:`yunet_keras` (input ``1 x H x W x 3``)."""
    tf, _ = tf_and_keras()
    converter = tf.lite.TFLiteConverter.from_keras_model(yunet_keras(onnx_path))
    return bytes(converter.convert())


def main(argv: list[str] | None = None) -> int:
    """Convert ``ONNX`` to ``OUT.tflite`` (see the module docstring)."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m fer_edge.convert.yunet YUNET.onnx OUT.tflite", file=sys.stderr)
        return 2
    try:
        write_bytes(args[1], yunet_tflite(args[0]))
    except FerEdgeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {args[1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
