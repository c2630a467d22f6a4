"""Face detection (OpenCV Haar cascade or YuNet) and face cropping.

Both detectors return :class:`Box` objects clipped to the frame. :func:`crop_face` turns a box
into the square crop the classifier sees; resizing to the model's input happens only in
:mod:`fer_edge.preprocess`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from fer_edge.errors import FerEdgeError
from fer_edge.preprocess import to_gray

DETECTORS: tuple[str, ...] = ("haar", "yunet")
HAAR_CASCADE = "haarcascade_frontalface_default.xml"

#: Default crop margin per detector, as a fraction of the box side added on each side.
#: FER2013 faces are cropped at about the Haar box: on 300 val faces pasted into frames the
#: Haar box spanned 0.96 of the FER image and YuNet's taller side 1.03, so little or no margin
#: makes a live crop look like the training images.
DEFAULT_MARGIN: dict[str, float] = {"haar": 0.02, "yunet": 0.0}

#: YuNet's default score threshold. Its 0.9 (the OpenCV zoo demo value) missed a third of
#: FER2013 faces; at 0.7 it found 96% of 200 val faces upscaled to 192 px.
YUNET_SCORE_THRESHOLD = 0.7


@dataclass(frozen=True)
class Box:
    """An axis-aligned box in frame pixels.

    Attributes:
        x: left edge.
        y: top edge.
        w: width.
        h: height.
        score: detector confidence (1.0 for detectors without one, e.g. Haar).
    """

    x: int
    y: int
    w: int
    h: int
    score: float = 1.0

    @property
    def area(self) -> int:
        """Width times height."""
        return max(self.w, 0) * max(self.h, 0)

    def as_list(self) -> list[int]:
        """Return ``[x, y, w, h]`` as plain ints (the JSONL form)."""
        return [int(self.x), int(self.y), int(self.w), int(self.h)]

    def iou(self, other: Box) -> float:
        """Intersection over union with ``other`` (0.0 for disjoint boxes)."""
        ix = max(0, min(self.x + self.w, other.x + other.w) - max(self.x, other.x))
        iy = max(0, min(self.y + self.h, other.y + other.h) - max(self.y, other.y))
        inter = ix * iy
        union = self.area + other.area - inter
        return inter / union if union > 0 else 0.0

    def clipped(self, width: int, height: int) -> Box:
        """Return the part of the box inside a ``width`` x ``height`` frame."""
        x0, y0 = max(0, self.x), max(0, self.y)
        x1, y1 = min(width, self.x + self.w), min(height, self.y + self.h)
        return Box(x0, y0, max(0, x1 - x0), max(0, y1 - y0), self.score)


class FaceDetector(Protocol):
    """Anything that finds faces in a BGR frame.

    Attributes:
        name: the ``--detector`` name.
        min_face: smallest face side in pixels, read at every :meth:`detect`.
    """

    name: str
    min_face: int

    def detect(self, frame: np.ndarray) -> list[Box]:
        """Return face boxes, clipped to the frame, largest first."""
        ...


def _largest_first(boxes: list[Box]) -> list[Box]:
    return sorted(boxes, key=lambda b: (-b.area, b.x, b.y))


class HaarDetector:
    """OpenCV's bundled frontal-face Haar cascade (opencv-python 4.x ships it)."""

    name = "haar"

    def __init__(self, min_face: int = 40, scale_factor: float = 1.1, min_neighbors: int = 5):
        """Load the cascade.

        Args:
            min_face: smallest face side in pixels to look for.
            scale_factor: image pyramid step (smaller finds more, slower).
            min_neighbors: overlapping detections needed to keep a face (higher: fewer false
                positives).

        Raises:
            FerEdgeError: this OpenCV has no Haar cascades (OpenCV 5 dropped them).
        """
        folder = getattr(getattr(cv2, "data", None), "haarcascades", "")
        path = Path(folder) / HAAR_CASCADE
        if not folder or not path.is_file() or not hasattr(cv2, "CascadeClassifier"):
            raise FerEdgeError(
                "--detector haar: this OpenCV has no Haar cascades (OpenCV 5 dropped them); "
                "install 'opencv-python-headless<5' or use --detector yunet"
            )
        self._cascade = cv2.CascadeClassifier(str(path))
        self.min_face = int(min_face)
        self.scale_factor = scale_factor
        self.min_neighbors = min_neighbors

    def detect(self, frame: np.ndarray) -> list[Box]:
        """Return face boxes in ``frame`` (BGR or gray), largest first."""
        rects = self._cascade.detectMultiScale(
            to_gray(frame),
            scaleFactor=self.scale_factor,
            minNeighbors=self.min_neighbors,
            minSize=(self.min_face, self.min_face),
        )
        height, width = frame.shape[:2]
        return _largest_first([Box(*map(int, r)).clipped(width, height) for r in rects])


class YuNetDetector:
    """YuNet through ``cv2.FaceDetectorYN`` (a small CNN; more recall than Haar)."""

    name = "yunet"

    def __init__(
        self,
        model_path: str | os.PathLike[str],
        min_face: int = 40,
        score_threshold: float = YUNET_SCORE_THRESHOLD,
        nms_threshold: float = 0.3,
    ):
        """Load a YuNet ONNX file.

        Raises:
            FerEdgeError: the file is missing or OpenCV cannot load it.
        """
        path = Path(model_path)
        if not path.is_file():
            raise FerEdgeError(f"--detector-model: {path} does not exist")
        try:
            self._net = cv2.FaceDetectorYN.create(
                str(path), "", (320, 320), score_threshold, nms_threshold
            )
        except cv2.error:
            raise FerEdgeError(
                f"--detector-model: OpenCV cannot load {path} as a YuNet ONNX model"
            ) from None
        self._input_size: tuple[int, int] = (320, 320)
        self.min_face = int(min_face)

    def detect(self, frame: np.ndarray) -> list[Box]:
        """Return face boxes in ``frame`` (BGR or gray), largest first."""
        if frame.ndim == 2:
            frame = cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
        height, width = frame.shape[:2]
        if (width, height) != self._input_size:
            self._net.setInputSize((width, height))
            self._input_size = (width, height)
        _, faces = self._net.detect(frame)
        if faces is None:
            return []
        boxes = []
        # Rows are x, y, w, h, five landmark pairs, score.
        for row in faces:
            box = Box(
                int(round(row[0])),
                int(round(row[1])),
                int(round(row[2])),
                int(round(row[3])),
                float(row[-1]),
            ).clipped(width, height)
            if box.area and max(box.w, box.h) >= self.min_face:
                boxes.append(box)
        return _largest_first(boxes)


class DownscaledDetector:
    """Run a detector on a smaller copy of each frame; boxes come back in frame pixels.

    Detection cost grows with the pixel count while faces in front of a camera are large, so
    halving the width makes Haar about 3-4x faster for little recall. Crops are still cut from
    the full-resolution frame.
    """

    def __init__(self, inner: FaceDetector, width: int):
        """Wrap ``inner`` to detect at most ``width`` pixels wide."""
        self.inner = inner
        self.name = inner.name
        self.width = int(width)
        self.min_face = inner.min_face

    def detect(self, frame: np.ndarray) -> list[Box]:
        """Return face boxes in ``frame``'s pixels, largest first."""
        height, width = frame.shape[:2]
        if width <= self.width:
            self.inner.min_face = self.min_face
            return self.inner.detect(frame)
        scale = self.width / width
        small = cv2.resize(
            frame, (self.width, max(1, round(height * scale))), interpolation=cv2.INTER_AREA
        )
        self.inner.min_face = max(1, round(self.min_face * scale))
        return [
            Box(
                round(b.x / scale),
                round(b.y / scale),
                round(b.w / scale),
                round(b.h / scale),
                b.score,
            ).clipped(width, height)
            for b in self.inner.detect(small)
        ]


def make_detector(
    name: str,
    model_path: str | os.PathLike[str] | None = None,
    min_face: int = 40,
    score_threshold: float | None = None,
    detect_width: int | None = None,
) -> FaceDetector:
    """Build the detector named by ``--detector``.

    Args:
        name: ``haar`` or ``yunet``.
        model_path: the YuNet ONNX file (required for ``yunet``).
        min_face: smallest face side in frame pixels.
        score_threshold: YuNet's minimum score (default :data:`YUNET_SCORE_THRESHOLD`).
        detect_width: detect on frames scaled down to this width (``None``: full size).

    Raises:
        FerEdgeError: an unknown name, or ``yunet`` without a usable model file.
    """
    if min_face < 1:
        raise FerEdgeError(f"--min-face: must be a positive pixel count, got {min_face}")
    if detect_width is not None and detect_width < 32:
        raise FerEdgeError(f"--detect-width: must be at least 32 pixels, got {detect_width}")
    detector: FaceDetector
    if name == "haar":
        detector = HaarDetector(min_face)
    elif name == "yunet":
        if model_path is None:
            raise FerEdgeError(
                "--detector yunet needs --detector-model PATH (a YuNet .onnx file, e.g. "
                "face_detection_yunet_2023mar.onnx from the OpenCV model zoo)"
            )
        threshold = YUNET_SCORE_THRESHOLD if score_threshold is None else score_threshold
        detector = YuNetDetector(model_path, min_face, threshold)
    else:
        raise FerEdgeError(
            f"--detector: unknown detector {name!r}; choose from {', '.join(DETECTORS)}"
        )
    return detector if detect_width is None else DownscaledDetector(detector, detect_width)


def crop_box(box: Box, margin: float, width: int, height: int) -> Box:
    """Grow ``box`` by ``margin`` on each side, square it about its centre, clip to the frame.

    Args:
        box: a face box.
        margin: fraction of the box's longer side added on each side (0.1: 10%).
        width: frame width.
        height: frame height.

    Returns:
        The crop region; square unless it was clipped at the frame edge.
    """
    side = max(box.w, box.h) * (1.0 + 2.0 * margin)
    cx, cy = box.x + box.w / 2.0, box.y + box.h / 2.0
    x0, y0 = round(cx - side / 2.0), round(cy - side / 2.0)
    n = max(1, round(side))
    return Box(x0, y0, n, n, box.score).clipped(width, height)


def crop_face(frame: np.ndarray, box: Box, margin: float = 0.0) -> tuple[np.ndarray, Box]:
    """Cut the face crop for ``box`` out of ``frame`` (see :func:`crop_box`).

    Returns:
        ``(crop, region)``: a view into ``frame`` and the region it covers.

    Raises:
        ValueError: the region is empty (the box lies outside the frame).
    """
    height, width = frame.shape[:2]
    region = crop_box(box, margin, width, height)
    if region.w == 0 or region.h == 0:
        raise ValueError(f"face box {box.as_list()} lies outside the {width}x{height} frame")
    return frame[region.y : region.y + region.h, region.x : region.x + region.w], region
