"""Face detection: OpenCV's Haar cascade or YuNet (bundled), cleaned of duplicate boxes.

Every detector returns :class:`Box` objects clipped to the frame, largest first; YuNet's carry
five landmarks. :func:`make_detector` wraps the detector so that it runs on a downscaled copy of
large frames and drops duplicate, nested and implausibly small boxes. Cutting the face out is
:func:`fer_edge.facecrop.face_crops`'s job, shared with the benchmarks.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import cv2
import numpy as np

from fer_edge.errors import FerEdgeError
from fer_edge.facecrop import CROP_MODES
from fer_edge.models import bundled_file
from fer_edge.preprocess import to_gray
from fer_edge.yunetlite import LiteYuNet

if TYPE_CHECKING:
    from fer_edge.tracking import TrackingDetector

DETECTORS: tuple[str, ...] = ("haar", "yunet")
HAAR_CASCADE = "haarcascade_frontalface_default.xml"
#: The YuNet model shipped in ``fer_edge/models/`` (OpenCV zoo, MIT; licence beside it), as the
#: zoo's ONNX file (run by OpenCV's DNN module) and converted to TFLite from it
#: (:mod:`fer_edge.convert.yunet`; run by the TFLite interpreter, about twice as fast). The
#: default detector uses the TFLite file; ``--detector-model`` takes either kind.
YUNET_ONNX = "face_detection_yunet_2026may.onnx"
YUNET_MODEL = "face_detection_yunet_2026may.tflite"

#: Crop modes (``--crop``): landmarks onto the model's template, a square about the box, or
#: the two averaged (see :mod:`fer_edge.facecrop`).
CROPS: tuple[str, ...] = CROP_MODES

#: Default crop per detector, chosen on scenes of FER2013 training faces (numbers in
#: benchmarks/README.md, "Faces in scenes"): the box crop kept more of the model's accuracy than the
#: aligned crop (0.95 vs 0.91 of its accuracy on the faces' own crops, two samples of 3,000),
#: because FER2013's own crops follow a face box, not the landmarks. ``--crop align`` stays
#: available: it removes head roll, for models trained on aligned faces.
DEFAULT_CROP: dict[str, str] = {"haar": "box", "yunet": "box"}

#: Default box-crop margin per detector, as a fraction of the box side added on each side.
#: Haar's box spans about 0.96 of a FER2013 image, so a 2% margin frames it like the training
#: crops. YuNet boxes the face taller (its longer side is about 1.03 of the FER image, and it
#: reaches over a forehead the crop cut off): cropping 7.5% inside it (-0.1 to 0 measured in
#: 0.025 steps) kept the most accuracy.
DEFAULT_MARGIN: dict[str, float] = {"haar": 0.02, "yunet": -0.075}

#: YuNet's default score threshold, chosen on scenes of 400 FER2013 training faces in front of
#: out-of-focus lights and edges (``fer-edge bench --scene --clutter``): 0.5 found 97.0% of the
#: faces with 0.17 false boxes per 100 frames, 0.6 96.5% with 0.08, 0.7 95.6% with 0.08 (end
#: to end 0.5 points below 0.6). The OpenCV zoo demo's 0.9 misses a third of FER2013 faces.
YUNET_SCORE_THRESHOLD = 0.6

#: Following a face it has found, YuNet may score it this much lower in an ROI pass
#: (hysteresis: a face the full-frame pass accepted is not dropped for scoring 0.55 in a
#: smaller image). On 30 FER2013 faces held 60 frames each, ROI passes at the full threshold
#: lost a face 166 times, 0.15 lower 89 times (half of them the face leaving; 128 px ROIs).
ROI_SCORE_MARGIN = 0.15

#: Frames wider than this are detected on a copy scaled down to it (boxes mapped back). On
#: 1280x720 scenes of 300 FER2013 training faces at 144 px, YuNet found 97.2% at full width,
#: 95.4% at 960, 94.1% at 800 and 89.6% at 640: 960 is the narrowest within 2 points of full
#: size, at about half its pixels. Frames up to 960 wide (640x480) are detected as they are.
DEFAULT_DETECT_WIDTH = 960
#: Boxes overlapping a better box by more than this IoU are the same face (NMS).
NMS_IOU = 0.3
#: A box with at least this share of its area inside a larger face box is a duplicate.
NESTED_FRACTION = 0.6
#: Smallest face side as a fraction of the frame's shorter side: 24 px at 640x480, 54 px at
#: 1920x1080. A floor for small ghost boxes at high resolutions, low enough for a group photo;
#: Haar's ghosts on out-of-focus lights were larger (11-17% of the side, 19 in 100 cluttered
#: 640x480 frames; YuNet at 0.6 had none), so NMS and the score threshold do the rest.
MIN_FACE_FRACTION = 0.05


def default_yunet_model() -> Path:
    """Return the bundled YuNet model the default detector runs (the TFLite conversion).

    Raises:
        FerEdgeError: the package was installed without it.
    """
    return bundled_file(
        YUNET_MODEL, "--detector yunet", "pass --detector-model PATH or use --detector haar"
    )


def default_yunet_onnx() -> Path:
    """Return the bundled YuNet ONNX file (the conversion's source; OpenCV's DNN runs it).

    Raises:
        FerEdgeError: the package was installed without it.
    """
    return bundled_file(
        YUNET_ONNX, "--detector-model", "pass another YuNet file with --detector-model"
    )


@dataclass(frozen=True)
class Box:
    """An axis-aligned face box in frame pixels.

    Attributes:
        x: left edge.
        y: top edge.
        w: width.
        h: height.
        score: detector confidence (1.0 for detectors without one, e.g. Haar).
        landmarks: five ``(x, y)`` points (eyes, nose, mouth corners; see
            :data:`fer_edge.facecrop.LANDMARKS`) in frame pixels, or ``None``.
    """

    x: int
    y: int
    w: int
    h: int
    score: float = 1.0
    landmarks: tuple[tuple[float, float], ...] | None = None

    @property
    def area(self) -> int:
        """Width times height."""
        return max(self.w, 0) * max(self.h, 0)

    def as_list(self) -> list[int]:
        """Return ``[x, y, w, h]`` as plain ints (the JSONL form)."""
        return [int(self.x), int(self.y), int(self.w), int(self.h)]

    def intersection(self, other: Box) -> int:
        """Overlapping area with ``other`` in pixels."""
        ix = max(0, min(self.x + self.w, other.x + other.w) - max(self.x, other.x))
        iy = max(0, min(self.y + self.h, other.y + other.h) - max(self.y, other.y))
        return ix * iy

    def iou(self, other: Box) -> float:
        """Intersection over union with ``other`` (0.0 for disjoint boxes)."""
        inter = self.intersection(other)
        union = self.area + other.area - inter
        return inter / union if union > 0 else 0.0

    def clipped(self, width: int, height: int) -> Box:
        """Return the part of the box inside a ``width`` x ``height`` frame (landmarks kept)."""
        x0, y0 = max(0, self.x), max(0, self.y)
        x1, y1 = min(width, self.x + self.w), min(height, self.y + self.h)
        return replace(self, x=x0, y=y0, w=max(0, x1 - x0), h=max(0, y1 - y0))

    def scaled(self, factor: float) -> Box:
        """Return the box (and landmarks) with every coordinate multiplied by ``factor``."""
        points = None
        if self.landmarks is not None:
            points = tuple((x * factor, y * factor) for x, y in self.landmarks)
        return replace(
            self,
            x=round(self.x * factor),
            y=round(self.y * factor),
            w=round(self.w * factor),
            h=round(self.h * factor),
            landmarks=points,
        )


class FaceDetector(Protocol):
    """Anything that finds faces in a frame.

    Attributes:
        name: the ``--detector`` name.
        min_face: smallest face side in pixels, read at every :meth:`detect`.
        needs_color: it looks at colour, so give it the BGR frame; otherwise the gray frame
            (which the pipeline makes once per frame for the crops too) is all it needs.
    """

    name: str
    min_face: int
    needs_color: bool

    def detect(self, frame: np.ndarray) -> list[Box]:
        """Return face boxes, clipped to the frame, largest first."""
        ...


def largest_first(boxes: list[Box]) -> list[Box]:
    """Return ``boxes`` largest first (then left to right, top to bottom: a stable order)."""
    return sorted(boxes, key=lambda b: (-b.area, b.x, b.y))


class HaarDetector:
    """OpenCV's bundled frontal-face Haar cascade (opencv-python 4.x ships it)."""

    name = "haar"
    needs_color = False

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
        boxes = [Box(int(x), int(y), int(w), int(h)) for x, y, w, h in rects]
        return largest_first([box.clipped(width, height) for box in boxes])


class YuNetDetector:
    """YuNet, a small CNN with more recall than Haar.

    A ``.tflite`` conversion runs on the TFLite interpreter
    (:class:`~fer_edge.yunetlite.LiteYuNet`), the zoo's ONNX file through
    ``cv2.FaceDetectorYN``; both decode to the same boxes, landmarks and scores.
    """

    name = "yunet"
    needs_color = True

    def __init__(
        self,
        model_path: str | os.PathLike[str],
        min_face: int = 40,
        score_threshold: float = YUNET_SCORE_THRESHOLD,
        nms_threshold: float = 0.3,
        threads: int | None = None,
        runtime: str = "auto",
    ):
        """Load a YuNet model: ``.tflite`` on the TFLite interpreter, anything else by OpenCV.

        Args:
            model_path: the model file.
            min_face: smallest face side in pixels.
            score_threshold: minimum score.
            nms_threshold: IoU above which overlapping boxes are one face.
            threads: interpreter threads for a ``.tflite`` model (``None``: the usable cores,
                up to 4); OpenCV's DNN module uses its own.
            runtime: the TFLite runtime for a ``.tflite`` model (see
                :func:`fer_edge.runtime.load_runtime`).

        Raises:
            FerEdgeError: the file is missing or cannot be loaded as YuNet.
        """
        path = Path(model_path)
        if not path.is_file():
            raise FerEdgeError(f"--detector-model: {path} does not exist")
        self._net: cv2.FaceDetectorYN | LiteYuNet
        if path.suffix.lower() == ".tflite":
            self._net = LiteYuNet(
                path, score_threshold, nms_threshold, threads=threads, runtime=runtime
            )
        else:
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

    def last_macs(self) -> float | None:
        """Return the network's MACs at the size of the last frame (``None``: unknown).

        Only the ``.tflite`` route counts them; OpenCV's DNN module does not say.
        """
        return self._net.macs() if isinstance(self._net, LiteYuNet) else None

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
        # Rows are x, y, w, h, five landmark (x, y) pairs, score.
        for row in faces:
            if not np.isfinite(row).all():  # seen on degenerate inputs, e.g. 960x7 px
                continue
            points = tuple((float(row[i]), float(row[i + 1])) for i in range(4, 14, 2))
            box = Box(
                int(round(row[0])),
                int(round(row[1])),
                int(round(row[2])),
                int(round(row[3])),
                float(row[-1]),
                points,
            ).clipped(width, height)
            if box.area and max(box.w, box.h) >= self.min_face:
                boxes.append(box)
        return largest_first(boxes)


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
        self.needs_color = inner.needs_color
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
        return [b.scaled(1.0 / scale).clipped(width, height) for b in self.inner.detect(small)]


def suppress_duplicates(
    boxes: Sequence[Box], iou_threshold: float = NMS_IOU, nested: float = NESTED_FRACTION
) -> list[Box]:
    """Keep one box per face: greedy non-maximum suppression that also removes nested boxes.

    Boxes are taken best first (score, then area: Haar boxes all score 1.0, and its duplicates
    are a smaller box inside the face box). A box is dropped when it overlaps a kept box by
    more than ``iou_threshold`` IoU, or when at least ``nested`` of the smaller one's area lies
    inside the other (a box around an eye or a mouth inside the face box has a low IoU with it,
    so NMS alone keeps it).

    Args:
        boxes: one frame's detections.
        iou_threshold: overlap above which two boxes are the same face.
        nested: share of the smaller box's area inside the larger that makes it a duplicate.

    Returns:
        The kept boxes, best first.
    """
    kept: list[Box] = []
    for box in sorted(boxes, key=lambda b: (-b.score, -b.area, b.x, b.y)):
        duplicate = False
        for other in kept:
            inter = other.intersection(box)
            smaller = min(box.area, other.area)
            if box.iou(other) > iou_threshold or (smaller and inter >= nested * smaller):
                duplicate = True
                break
        if not duplicate:
            kept.append(box)
    return kept


class WrappedDetector:
    """A detector around another one: the name, colour need and minimum face are the inner's."""

    def __init__(self, inner: FaceDetector):
        """Wrap ``inner``."""
        self.inner = inner
        self.name = inner.name
        self.needs_color = inner.needs_color

    @property
    def min_face(self) -> int:
        """The wrapped detector's minimum face side in pixels."""
        return self.inner.min_face

    @min_face.setter
    def min_face(self, value: int) -> None:
        self.inner.min_face = value


class CleanDetector(WrappedDetector):
    """Drop duplicate, nested and too-small boxes from another detector's output.

    Haar fires several times on one face (a second, smaller box inside the face box) and on
    small textured spots (street lights out of focus); YuNet rarely, but it happens. The minimum
    size is relative to the frame, so it scales with the camera resolution.
    """

    def __init__(
        self,
        inner: FaceDetector,
        min_face_fraction: float = MIN_FACE_FRACTION,
        iou_threshold: float = NMS_IOU,
        nested: float = NESTED_FRACTION,
    ):
        """Wrap ``inner``; see :func:`suppress_duplicates` for the two thresholds."""
        super().__init__(inner)
        self.min_face_fraction = float(min_face_fraction)
        self.iou_threshold = float(iou_threshold)
        self.nested = float(nested)

    def detect(self, frame: np.ndarray) -> list[Box]:
        """Return the cleaned face boxes in ``frame``'s pixels, largest first."""
        floor = self.min_face_fraction * min(frame.shape[:2])
        boxes = [b for b in self.inner.detect(frame) if max(b.w, b.h) >= floor]
        return largest_first(suppress_duplicates(boxes, self.iou_threshold, self.nested))


def make_detector(
    name: str,
    model_path: str | os.PathLike[str] | None = None,
    min_face: int = 40,
    score_threshold: float | None = None,
    detect_width: int | None = None,
    min_face_fraction: float = MIN_FACE_FRACTION,
    threads: int | None = None,
    runtime: str = "auto",
    detect_every: int = 1,
    roi_size: int | None = None,
) -> TrackingDetector:
    """Build the detector named by ``--detector``, with duplicate and small-box removal.

    The result counts its work (:class:`fer_edge.tracking.DetectionCost`); with
    ``detect_every`` above 1 it also tracks faces between full-frame passes.

    Args:
        name: ``haar`` or ``yunet``.
        model_path: the YuNet ``.tflite`` or ONNX file (``None``: the bundled ``.tflite``).
        min_face: smallest face side in frame pixels.
        score_threshold: YuNet's minimum score (default :data:`YUNET_SCORE_THRESHOLD`).
        detect_width: detect on frames scaled down to this width (``None`` or 0: full size).
        min_face_fraction: smallest face side as a fraction of the frame's shorter side.
        threads: TFLite interpreter threads for YuNet (``None``: the usable cores, up to 4).
        runtime: the TFLite runtime for YuNet (``auto``, ``litert``, ...).
        detect_every: frames between full-frame passes (1: every frame, no tracking).
        roi_size: side of the ROI passes' image in pixels (``None``: the tracker's default).

    Raises:
        FerEdgeError: an unknown name, a bad size, or an unusable YuNet model file.
    """
    if min_face < 1:
        raise FerEdgeError(f"--min-face: must be a positive pixel count, got {min_face}")
    if detect_width and detect_width < 32:
        raise FerEdgeError(f"--detect-width: must be at least 32 pixels, got {detect_width}")
    if score_threshold is not None and not 0.0 < score_threshold < 1.0:
        raise FerEdgeError(f"--detector-threshold: must be in (0, 1), got {score_threshold}")
    if name not in DETECTORS:
        raise FerEdgeError(
            f"--detector: unknown detector {name!r}; choose from {', '.join(DETECTORS)}"
        )
    threshold = YUNET_SCORE_THRESHOLD if score_threshold is None else score_threshold
    path = default_yunet_model() if model_path is None and name == "yunet" else model_path

    def raw(threads: int | None, threshold: float) -> FaceDetector:
        if name == "haar":
            return HaarDetector(min_face)
        assert path is not None
        return YuNetDetector(path, min_face, threshold, threads=threads, runtime=runtime)

    detector: FaceDetector = raw(threads, threshold)
    if detect_width:
        detector = DownscaledDetector(detector, detect_width)
    detector = CleanDetector(detector, min_face_fraction)
    # Imported here: the tracker builds on this module's boxes and duplicate removal.
    from fer_edge.tracking import DEFAULT_ROI_SIZE, TrackingDetector

    # The ROI network gets the same threads: at 128 px two threads took 0.38 ms against 0.51
    # for one on the idle 2-core test machine.
    return TrackingDetector(
        detector,
        raw(threads, max(0.05, threshold - ROI_SCORE_MARGIN)) if detect_every > 1 else None,
        detect_every,
        DEFAULT_ROI_SIZE if roi_size is None else roi_size,
        min_face_fraction=min_face_fraction,
        confirm_score=threshold if name == "yunet" else 0.0,
    )
