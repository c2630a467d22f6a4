"""YuNet on the TFLite interpreter: the bundled detector's network run by LiteRT, decoded here.

The network is OpenCV zoo's YuNet, converted layer for layer from its ONNX file
(:mod:`fer_edge.convert.yunet`; outputs equal to OpenCV's to 1e-5). On the 2-core test machine
XNNPACK runs it in about half the time OpenCV's DNN module takes (benchmarks/README.md, "The
detector on the TFLite interpreter"), and on a Pi the interpreter is the runtime fer-edge
already tunes. :class:`LiteYuNet` keeps ``cv2.FaceDetectorYN``'s interface (``setInputSize``,
``detect`` returning rows of box, landmarks and score) so :class:`~fer_edge.detect.
YuNetDetector` takes either.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import cv2
import numpy as np

from fer_edge.errors import FerEdgeError
from fer_edge.runtime import load_runtime, usable_cores

#: YuNet's three heads, by stride; each predicts one face per grid cell.
STRIDES: tuple[int, ...] = (8, 16, 32)
#: The converted model's outputs per stride and their channels: class and objectness
#: probabilities side by side, the box offsets, the five landmark offsets. Every output has its
#: own ``(rows, cols, channels)`` shape, which is how they are told apart.
HEADS: dict[str, int] = {"score": 2, "bbox": 4, "kps": 10}
#: The network halves the input five times: sizes are padded up to a multiple of this.
DIVISOR = 32
#: Most interpreter threads YuNet gets by default. The runtimes' own default is one thread,
#: which ran the network in 7.0 ms per 640x480 frame against 4.0 ms with two on the 2-core
#: test machine; past four cores (a Pi's count) a network this small gains little.
MAX_DEFAULT_THREADS = 4
_UNCOUNTED = -1.0


def default_threads() -> int:
    """Return YuNet's interpreter threads when none are asked for: the usable cores, up to 4."""
    return min(usable_cores(), MAX_DEFAULT_THREADS)


def macs_per_pixel(runtime: Any, model_path: str) -> float | None:
    """Return YuNet's multiply-accumulates per padded input pixel, counted from its graph.

    The network is fully convolutional and every input side is a multiple of
    :data:`DIVISOR`, so its MACs are exactly this times the padded pixel count (840.4 for the
    bundled model: 258 M at 640x480). Counted once on a small input with the interpreter's
    delegates off (XNNPACK hides its tensors' shapes).

    Args:
        runtime: a loaded :class:`~fer_edge.runtime.Runtime`.
        model_path: the ``.tflite`` file.

    Returns:
        The count, or ``None`` when this runtime cannot run without its delegates.
    """
    module = sys.modules.get(runtime.interpreter_class.__module__)
    resolver = getattr(
        getattr(module, "OpResolverType", None), "BUILTIN_WITHOUT_DEFAULT_DELEGATES", None
    )
    if resolver is None:
        return None
    try:
        interp = runtime.interpreter_class(
            model_path=model_path, experimental_op_resolver_type=resolver
        )
        index = interp.get_input_details()[0]["index"]
        interp.resize_tensor_input(index, (1, DIVISOR, DIVISOR, 3))
        interp.allocate_tensors()
        interp.set_tensor(index, np.zeros((1, DIVISOR, DIVISOR, 3), np.float32))
        interp.invoke()  # shapes behind the upsampling are known only after a run
        shapes = {d["index"]: d["shape"] for d in interp.get_tensor_details()}
        macs = 0
        for op in interp._get_ops_details():
            if op["op_name"] not in ("CONV_2D", "DEPTHWISE_CONV_2D"):
                continue
            out, weights = shapes[op["outputs"][0]], shapes[op["inputs"][1]]
            # CONV_2D weights are (out, kh, kw, in); DEPTHWISE_CONV_2D's (1, kh, kw, out).
            per_output = (
                np.prod(weights[1:]) if op["op_name"] == "CONV_2D" else np.prod(weights[1:3])
            )
            macs += int(np.prod(out)) * int(per_output)
    except (AttributeError, KeyError, RuntimeError, ValueError):
        return None
    return macs / (DIVISOR * DIVISOR)


def padded_size(width: int, height: int) -> tuple[int, int]:
    """Return ``(width, height)`` rounded up to :data:`DIVISOR` (what the network takes)."""
    return (-(-width // DIVISOR) * DIVISOR, -(-height // DIVISOR) * DIVISOR)


def decode(
    outputs: dict[str, np.ndarray],
    width: int,
    height: int,
    score_threshold: float,
    nms_threshold: float,
    top_k: int,
) -> np.ndarray | None:
    """Turn YuNet's per-cell outputs into face rows, as ``cv2.FaceDetectorYN.detect`` does.

    Args:
        outputs: ``score_8`` ... ``kps_32`` (see :data:`HEADS`) as ``(cells, channels)``
            arrays, cells row-major over the padded input (``padded_size``).
        width: padded input width.
        height: padded input height.
        score_threshold: keep faces scoring at least this (``sqrt(cls * obj)``).
        nms_threshold: IoU above which a lower-scoring box is dropped.
        top_k: keep at most this many boxes before NMS.

    Returns:
        ``(faces, 15)`` float32 rows ``x, y, w, h``, five landmark ``x, y`` pairs and the score,
        best first; ``None`` when no face passes.
    """
    rows: list[np.ndarray] = []
    for stride in STRIDES:
        cols = width // stride
        probs = np.clip(outputs[f"score_{stride}"], 0.0, 1.0)
        score = np.sqrt(probs[:, 0] * probs[:, 1])
        cells = np.flatnonzero(score >= score_threshold)
        if not cells.size:
            continue
        col = (cells % cols).astype(np.float32)
        row = (cells // cols).astype(np.float32)
        bbox = outputs[f"bbox_{stride}"][cells]
        kps = outputs[f"kps_{stride}"][cells]
        cx, cy = (col + bbox[:, 0]) * stride, (row + bbox[:, 1]) * stride
        w, h = np.exp(bbox[:, 2]) * stride, np.exp(bbox[:, 3]) * stride
        points = np.empty_like(kps)
        points[:, 0::2] = (kps[:, 0::2] + col[:, None]) * stride
        points[:, 1::2] = (kps[:, 1::2] + row[:, None]) * stride
        boxes = np.stack([cx - w / 2, cy - h / 2, w, h], axis=1)
        rows.append(np.concatenate([boxes, points, score[cells, None]], axis=1))
    if not rows:
        return None
    faces = np.concatenate(rows).astype(np.float32)
    keep = cv2.dnn.NMSBoxes(
        faces[:, :4].tolist(), faces[:, -1].tolist(), score_threshold, nms_threshold, top_k=top_k
    )
    if len(keep) == 0:
        return None
    return faces[np.asarray(keep).reshape(-1)]


class LiteYuNet:
    """YuNet's converted ``.tflite`` on the TFLite interpreter, with FaceDetectorYN's interface."""

    def __init__(
        self,
        model_path: str | os.PathLike[str],
        score_threshold: float,
        nms_threshold: float = 0.3,
        top_k: int = 5000,
        threads: int | None = None,
        runtime: str = "auto",
    ):
        """Load the model.

        Args:
            model_path: the converted YuNet ``.tflite``.
            score_threshold: see :func:`decode`.
            nms_threshold: see :func:`decode`.
            top_k: see :func:`decode`.
            threads: interpreter threads (``None``: :func:`default_threads`).
            runtime: the TFLite runtime (see :func:`fer_edge.runtime.load_runtime`).

        Raises:
            FerEdgeError: the file is not a TFLite model with the converted YuNet's outputs.
        """
        self._path = str(model_path)
        self._macs_per_pixel: float | None = _UNCOUNTED
        try:
            self._runtime = load_runtime(runtime)
            self._interp = self._runtime.interpreter(
                model_path=self._path, threads=threads or default_threads()
            )
        except FerEdgeError as exc:
            raise FerEdgeError(f"--detector-model: {exc}") from None
        detail = self._interp.get_input_details()[0]
        self._input = detail["index"]
        self._order: list[tuple[str, int]] = []
        self.score_threshold = float(score_threshold)
        self.nms_threshold = float(nms_threshold)
        self.top_k = int(top_k)
        self._size = (0, 0)
        self._padded = (0, 0)
        # One input buffer per frame size, reused every frame: the padding stays zero because
        # every frame of that size writes the same region.
        self._batch = np.zeros((1, 0, 0, 3), np.float32)
        shape = tuple(detail["shape"])
        if len(shape) != 4 or shape[-1] != 3:
            raise FerEdgeError(
                f"--detector-model: {self._path} takes input {shape}, not a BGR image like "
                "YuNet; convert YuNet with 'python -m fer_edge.convert.yunet'"
            )
        try:
            self.setInputSize((320, 320))  # checks the outputs now, not at the first frame
        except (RuntimeError, ValueError) as exc:
            raise FerEdgeError(
                f"--detector-model: {self._path} does not run on a 320x320 image ({exc})"
            ) from None

    def setInputSize(self, size: tuple[int, int]) -> None:  # noqa: N802 (FaceDetectorYN's name)
        """Prepare the interpreter for frames of ``size`` = ``(width, height)``."""
        width, height = padded_size(*size)
        if (width, height) != self._padded:
            self._interp.resize_tensor_input(self._input, (1, height, width, 3))
            self._interp.allocate_tensors()
            self._batch = np.zeros((1, height, width, 3), np.float32)
            # Output shapes behind the upsampling are only known after a first invoke.
            self._interp.set_tensor(self._input, self._batch)
            self._interp.invoke()
            self._padded = (width, height)
            self._order = self._match_outputs(width, height)
        else:
            self._batch.fill(0.0)  # a smaller frame of the same padded size: clear its padding
        self._size = (int(size[0]), int(size[1]))

    def macs(self) -> float | None:
        """Return the network's MACs per frame at the current input size (``None``: unknown)."""
        if self._macs_per_pixel == _UNCOUNTED:
            self._macs_per_pixel = macs_per_pixel(self._runtime, self._path)
        if self._macs_per_pixel is None:
            return None
        return self._macs_per_pixel * self._padded[0] * self._padded[1]

    def _match_outputs(self, width: int, height: int) -> list[tuple[str, int]]:
        # The converter may reorder outputs; their shapes tell them apart.
        by_shape = {
            tuple(int(v) for v in detail["shape"][1:]): int(detail["index"])
            for detail in self._interp.get_output_details()
        }
        order = []
        for kind, channels in HEADS.items():
            for stride in STRIDES:
                shape = (height // stride, width // stride, channels)
                if shape not in by_shape:
                    raise FerEdgeError(
                        f"--detector-model: {self._path} has no {kind}_{stride} output of shape "
                        f"{shape}; convert YuNet with 'python -m fer_edge.convert.yunet'"
                    )
                order.append((f"{kind}_{stride}", by_shape[shape]))
        return order

    def detect(self, frame: np.ndarray) -> tuple[int, np.ndarray | None]:
        """Return ``(1, faces)`` like ``cv2.FaceDetectorYN.detect`` for a BGR frame."""
        height, width = frame.shape[:2]
        if (width, height) != self._size:
            self.setInputSize((width, height))
        padded_w, padded_h = self._padded
        self._batch[0, :height, :width] = frame
        self._interp.set_tensor(self._input, self._batch)
        self._interp.invoke()
        outputs = {}
        for name, index in self._order:
            tensor = self._interp.get_tensor(index)
            outputs[name] = tensor.reshape(-1, tensor.shape[-1])
        return 1, decode(
            outputs, padded_w, padded_h, self.score_threshold, self.nms_threshold, self.top_k
        )
