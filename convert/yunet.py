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

``--int8 FACES`` exports it fully quantised to int8 instead, calibrated on frames made from the
face images under ``FACES`` (e.g. ``../shared/data/fer2013/train``; see
:func:`calibration_frames`). Input and outputs stay float32, so ``--detector-model`` takes the
file as it takes the float one. On the 2-core test machine it ran the network 1.4-1.5x faster
than float at one thread and found the same faces, within 0.7 points (benchmarks/README.md,
"The detector on the TFLite interpreter")::

    python -m fer_edge.convert.yunet --int8 ../shared/data/fer2013/train \\
        fer_edge/models/face_detection_yunet_2026may.onnx yunet_int8.tflite
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from fer_edge.atomic import write_bytes
from fer_edge.data import IMAGE_SUFFIXES
from fer_edge.errors import FerEdgeError
from fer_edge.tfcompat import tf_and_keras

#: The input size the graph is read at (any multiple of 32 gives the same layers).
_PROBE_SIZE = (320, 320)
_NODE = re.compile(r'^\t"([^"]+)" \[label="(.*?)" fillcolor', re.M)
_EDGE = re.compile(r'^\t"([^"]+)" -> "([^"]+)"', re.M)
#: How :func:`yunet_tflite` exports: ``float`` (float32), ``int8`` (full integer),
#: ``int16x8`` (int16 activations, int8 weights: XNNPACK has no kernels for it, and the
#: reference kernels ran it 33-48x slower than float; kept for measurements).
QUANTIZATIONS: tuple[str, ...] = ("float", "int8", "int16x8")
#: Frame sizes the calibration shows the network, in turn: a camera frame, a square frame
#: (YuNet's own example size) and a face-sized region of interest.
CALIBRATION_SIZES: tuple[tuple[int, int], ...] = ((640, 480), (320, 320), (128, 128))
#: Images with a shorter side below this are faces to paste; larger ones are whole scenes.
_SCENE_SIDE = 160


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


def calibration_frames(root: str | Path, count: int = 150, seed: int = 0) -> list[np.ndarray]:
    """Return ``count`` BGR uint8 frames made from the images under ``root`` for calibration.

    One image per frame; frame sizes cycle through :data:`CALIBRATION_SIZES`. An image at
    least 160 px on its shorter side is a scene, scaled to the frame; a smaller one (a FER2013
    face) is scaled to 15-70% of the frame's shorter side and pasted at a random place on a
    noisy gray gradient. Use training faces: faces the detector is later scored on must not
    have set its ranges.

    Args:
        root: a folder of images, searched at any depth (e.g. FER2013's ``train`` split).
        count: frames to make.
        seed: the image sample, sizes and places.

    Raises:
        FerEdgeError: ``count`` is below 1, or ``root`` holds no image OpenCV can read.
    """
    import cv2

    if count < 1:
        raise FerEdgeError(f"--calibration-frames: must be at least 1, got {count}")
    files = sorted(p for p in Path(root).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    rng = np.random.default_rng(seed)
    images = (cv2.imread(str(files[i]), cv2.IMREAD_COLOR) for i in rng.permutation(len(files)))
    frames: list[np.ndarray] = []
    for image in images:
        if image is None:
            continue
        width, height = CALIBRATION_SIZES[len(frames) % len(CALIBRATION_SIZES)]
        if min(image.shape[:2]) >= _SCENE_SIDE:
            frames.append(cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA))
        else:
            frames.append(_pasted(image, width, height, rng))
        if len(frames) == count:
            return frames
    if not frames:
        raise FerEdgeError(f"--int8: {root} holds no image to calibrate with")
    return frames


def _pasted(face: np.ndarray, width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    import cv2

    gradient = np.linspace(0.0, float(rng.uniform(-40, 40)), width, dtype=np.float32)
    gray = rng.uniform(70, 180) + gradient[None, :] + rng.normal(0, 6, (height, width))
    frame = np.repeat(np.clip(gray, 0, 255).astype(np.uint8)[..., None], 3, axis=2)
    side = int(rng.uniform(0.15, 0.7) * min(width, height))
    x, y = int(rng.integers(0, width - side + 1)), int(rng.integers(0, height - side + 1))
    frame[y : y + side, x : x + side] = cv2.resize(
        face, (side, side), interpolation=cv2.INTER_CUBIC
    )
    return frame


def yunet_tflite(
    onnx_path: str | Path,
    quantization: str = "float",
    calibration: Sequence[np.ndarray] = (),
) -> bytes:
    """Return the TFLite flatbuffer of :func:`yunet_keras` (input ``1 x H x W x 3``).

    Args:
        onnx_path: the zoo's YuNet ``.onnx``.
        quantization: one of :data:`QUANTIZATIONS`. Input and outputs are float32 in every
            case (quantised models quantize the BGR input and dequantize the heads), so
            :class:`~fer_edge.yunetlite.LiteYuNet` runs any of them unchanged.
        calibration: BGR frames (any sizes; :func:`calibration_frames`) that set the
            activation ranges of a quantised model.

    Raises:
        FerEdgeError: see :func:`yunet_keras`; or a quantised export without calibration.
    """
    if quantization not in QUANTIZATIONS:
        raise ValueError(f"unknown quantization {quantization!r}")
    if quantization != "float" and not calibration:
        raise FerEdgeError(f"YuNet {quantization}: no calibration frames")
    tf, _ = tf_and_keras()
    converter = tf.lite.TFLiteConverter.from_keras_model(yunet_keras(onnx_path))
    if quantization != "float":
        ops = tf.lite.OpsSet
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        # The interpreter resizes its input to every frame's size as it calibrates.
        converter.representative_dataset = lambda: (
            [frame[None].astype(np.float32)] for frame in calibration
        )
        converter.target_spec.supported_ops = [
            ops.TFLITE_BUILTINS_INT8
            if quantization == "int8"
            else ops.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8
        ]
    return bytes(converter.convert())


def main(argv: list[str] | None = None) -> int:
    """Convert ``ONNX`` to ``OUT.tflite`` (see the module docstring)."""
    parser = argparse.ArgumentParser(
        prog="python -m fer_edge.convert.yunet",
        description="Rebuild YuNet from its ONNX file and export it to TFLite.",
    )
    parser.add_argument("onnx", metavar="YUNET.onnx")
    parser.add_argument("out", metavar="OUT.tflite")
    parser.add_argument(
        "--int8",
        metavar="FACES",
        help="export full-integer int8, calibrated on the (training) images under FACES",
    )
    parser.add_argument(
        "--calibration-frames",
        type=int,
        default=150,
        metavar="N",
        help="frames made from FACES to calibrate on (default 150)",
    )
    args = parser.parse_args(argv)
    try:
        if args.int8 is None:
            data = yunet_tflite(args.onnx)
        else:
            frames = calibration_frames(args.int8, args.calibration_frames)
            data = yunet_tflite(args.onnx, "int8", frames)
        write_bytes(args.out, data)
    except FerEdgeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
