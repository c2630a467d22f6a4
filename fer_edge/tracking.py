"""Track faces between detections: a full-frame pass now and then, small ROI passes between.

On a Raspberry Pi the loop's time goes to face detection: YuNet over a whole 640x480 frame is
258 M MACs, the int8 classifier 33 M per face. Faces in front of a camera move a few pixels
per frame, so :class:`TrackingDetector` runs the full-frame detector only

- on the first frame (and after :meth:`~TrackingDetector.reset`, e.g. the next photo),
- every ``detect_every`` frames,
- when a tracked face is lost (its ROI pass found nothing; the same frame gets a full pass),
- when the picture changes outside the tracked faces (a face entering, a cut, a camera pan):
  a gray thumbnail of the frame is compared with the previous frame's,

and between those, for each tracked face, the detector runs on a square region around it
(``roi_scale`` times the box side, scaled to ``roi_size`` pixels: 13.8 M MACs at 128 px).
A changed place where the full-frame pass found no face (a hand, or a face the detector
missed on that frame) is not a reason for another full pass: ROI passes keep looking there
until the next periodic pass. With no faces and no change, a frame costs only the thumbnail.

Worst-case delay for a new face: one that comes into view changes the picture, so it is
looked for on the frame it appears in; one that appears without changing the thumbnail
(a slow fade-in) is found at most ``detect_every - 1`` frames after a full-frame pass would
have found it.

What each kind of pass cost is counted in :class:`DetectionCost` (the run summary and the
benchmarks report it).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from fer_edge.detect import (
    Box,
    FaceDetector,
    WrappedDetector,
    largest_first,
    suppress_duplicates,
)
from fer_edge.errors import FerEdgeError

#: Frames between full-frame passes (1: every frame, tracking off).
DEFAULT_DETECT_EVERY = 10
#: Side of the square image an ROI pass runs on, in pixels (a multiple of 32: YuNet's stride).
#: With :data:`ROI_SCALE` a face is 91 px there. Chosen on mp4 scenes of FER2013 validation
#: faces held 60 frames each at 640x480 (faces found; MACs per frame; a full pass every frame:
#: 1,585 of 1,800 with one face at a time, 2,394 of 2,700 with three, 258 M):
#:
#: ===========  ================  =================
#: size, scale  one face          three faces
#: ===========  ================  =================
#: 192, 1.6     1,621; 59.5 M     2,406; 132.5 M
#: 160, 1.6     --                2,386; 109.0 M
#: 128, 1.4     1,599; 44.0 M     2,423; 86.2 M
#: 128, 1.3     1,588; 44.4 M     2,441; 85.1 M
#: 96, 1.4      --                2,367; 94.7 M (lost 153 times)
#: ===========  ================  =================
#:
#: A tracked face far smaller than the full pass saw it scores lower and is lost (160 px at
#: scale 2.0, the face at 80 px: 2,364 with three faces); a tighter square keeps it larger.
#: (Measured before changed places were followed; the defaults as they are now: the tracking
#: section of benchmarks/README.md.)
DEFAULT_ROI_SIZE = 128
#: ROI side as a multiple of the tracked box's longer side: room for the face to move by 0.2
#: of its size between two frames (29 px for a 144 px face); a faster face is lost and found
#: again by the full-frame pass of that frame.
ROI_SCALE = 1.4
#: Changes within a square this many times a tracked face's box are the face's own (its
#: movement, hair, neck, shoulders), not a new face. A face that appears that close to another
#: is found by the next periodic pass.
OWN_CHANGE_SCALE = 2.5
#: An ROI box must overlap the tracked box by this IoU to continue its track (a second face
#: reaching into the region is not taken for the first).
ROI_MATCH_IOU = 0.2
#: The change thumbnail is the frame scaled down by this factor (each thumbnail pixel averages
#: 16 of its 64 frame pixels, which keeps camera noise far below :data:`MOTION_LEVEL`).
MOTION_SCALE = 8
#: A thumbnail pixel changed when its gray level moved by at least this much.
MOTION_LEVEL = 16
#: A looked-at change covers this much around it (3 thumbnail pixels, 24 frame pixels, each
#: way): a face that drifts there is still the change that was looked at.
_LOOKED_KERNEL = np.ones((7, 7), np.uint8)
#: Changed places without a face kept for ROI passes at most (the largest first).
MAX_CANDIDATES = 3
#: Side of the square looked at around such a place, as a multiple of the change's extent.
#: The change already spans the face and its movement; a tight square keeps the face large in
#: the ROI image. On faces sliding in and out at 6-15 px per frame (2,116 shown at least 75%;
#: a full pass every frame found 1,873): 1.25 found 1,851, 1.0 1,858, 0.9 1,869.
CANDIDATE_SCALE = 0.9
#: Changed thumbnail pixels this close (one pixel apart) are one changed place.
_JOIN_KERNEL = np.ones((3, 3), np.uint8)
#: Why a full-frame pass ran (the summary counts each).
TRIGGERS: tuple[str, ...] = ("start", "periodic", "lost", "change")


def detector_macs(detector: Any) -> float | None:
    """Return the MACs of ``detector``'s last call, when it (or what it wraps) can tell."""
    while detector is not None:
        last = getattr(detector, "last_macs", None)
        if last is not None:
            value: float | None = last()
            return value
        detector = getattr(detector, "inner", None)
    return None


@dataclass
class PassCost:
    """What one kind of detection pass cost over a run.

    Attributes:
        count: passes run.
        seconds: their total wall time.
        macs: their total multiply-accumulates (``None``: the detector cannot tell, e.g. Haar).
    """

    count: int = 0
    seconds: float = 0.0
    macs: float | None = 0.0

    def add(self, seconds: float, macs: float | None) -> None:
        """Count one pass."""
        self.count += 1
        self.seconds += seconds
        self.macs = None if macs is None or self.macs is None else self.macs + macs

    @property
    def mean_ms(self) -> float:
        """Mean milliseconds per pass (0 without passes)."""
        return 1000.0 * self.seconds / self.count if self.count else 0.0


@dataclass
class DetectionCost:
    """Detection work of a run, split by kind of pass.

    Attributes:
        frames: frames the detector was given.
        full: full-frame passes.
        roi: ROI passes (one per tracked face per frame between full passes).
        check_seconds: time spent on the change thumbnails.
        triggers: full-frame passes by reason (see :data:`TRIGGERS`).
        detect_every: the ``--detect-every`` the run used.
        roi_size: the ``--roi`` size the run used.
    """

    frames: int = 0
    full: PassCost = field(default_factory=PassCost)
    roi: PassCost = field(default_factory=PassCost)
    check_seconds: float = 0.0
    triggers: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TRIGGERS, 0))
    detect_every: int = 1
    roi_size: int = DEFAULT_ROI_SIZE

    @property
    def ms_per_frame(self) -> float:
        """Mean detection milliseconds per frame: every pass and check, over every frame."""
        total = self.full.seconds + self.roi.seconds + self.check_seconds
        return 1000.0 * total / self.frames if self.frames else 0.0

    @property
    def macs_per_frame(self) -> float | None:
        """Mean detector MACs per frame (``None``: unknown)."""
        if self.full.macs is None or self.roi.macs is None or not self.frames:
            return None
        return (self.full.macs + self.roi.macs) / self.frames

    def to_dict(self) -> dict[str, Any]:
        """Return plain numbers for the JSON summary."""
        macs = self.macs_per_frame
        return {
            "frames": self.frames,
            "detect_every": self.detect_every,
            "roi_size": self.roi_size,
            "ms_per_frame": round(self.ms_per_frame, 4),
            "macs_per_frame": None if macs is None else round(macs),
            "full": {"count": self.full.count, "mean_ms": round(self.full.mean_ms, 4)},
            "roi": {"count": self.roi.count, "mean_ms": round(self.roi.mean_ms, 4)},
            "check_ms": round(1000.0 * self.check_seconds, 3),
            "triggers": dict(self.triggers),
        }

    def describe(self) -> str:
        """Return the summary line: passes by kind, ms each, per-frame means."""
        macs = self.macs_per_frame
        per_frame = f"{self.ms_per_frame:.2f} ms" + (
            f" and {macs / 1e6:.1f} M MACs" if macs is not None else ""
        )
        why = ", ".join(f"{k} {v}" for k, v in self.triggers.items() if v)
        tracking = (
            f"every {self.detect_every} frames or on change, ROI {self.roi_size} px"
            if self.detect_every > 1
            else "full frame every frame"
        )
        return (
            f"detection ({tracking}): {per_frame} per frame; "
            f"full-frame {self.full.count} x {self.full.mean_ms:.2f} ms"
            + (f" ({why})" if why else "")
            + f", ROI {self.roi.count} x {self.roi.mean_ms:.2f} ms"
        )


def roi_square(box: Box, scale: float, width: int, height: int) -> tuple[int, int, int, int]:
    """Return the region ``(x0, y0, x1, y1)`` around ``box``, clipped to the frame.

    The region is a square, ``scale`` times the box's longer side, about the box's centre.
    """
    side = scale * max(box.w, box.h)
    cx, cy = box.x + box.w / 2.0, box.y + box.h / 2.0
    x0, y0 = max(0, int(cx - side / 2)), max(0, int(cy - side / 2))
    x1, y1 = min(width, int(np.ceil(cx + side / 2))), min(height, int(np.ceil(cy + side / 2)))
    return x0, y0, x1, y1


class TrackingDetector(WrappedDetector):
    """A full-frame detector run now and then, and an ROI detector on tracked faces between.

    Looks like any :class:`~fer_edge.detect.FaceDetector` to the pipeline; see the module
    docstring for when each pass runs.
    """

    def __init__(
        self,
        full: FaceDetector,
        roi: FaceDetector | None,
        detect_every: int = DEFAULT_DETECT_EVERY,
        roi_size: int = DEFAULT_ROI_SIZE,
        roi_scale: float = ROI_SCALE,
        min_face_fraction: float = 0.0,
        confirm_score: float = 0.0,
    ):
        """Combine two detectors of the same kind (two instances: each keeps its input size).

        Args:
            full: the full-frame detector (with its downscaling and duplicate removal).
            roi: the detector for ROI passes; it sees ``roi_size`` x ``roi_size`` images
                (``None`` with ``detect_every`` 1: every frame gets a full-frame pass).
            detect_every: frames between full-frame passes, at least 1.
            roi_size: ROI image side in pixels, a multiple of 32 from 64 to 320.
            roi_scale: ROI side as a multiple of the tracked box's longer side.
            min_face_fraction: smallest face side as a fraction of the frame's shorter side,
                for ROI boxes (the full detector applies its own).
            confirm_score: the score a face found by an ROI pass in a changed place (not a
                tracked face) needs: the full-frame pass's threshold, as it is a new face.

        Raises:
            FerEdgeError: ``detect_every`` or ``roi_size`` out of range.
        """
        if detect_every < 1 or (roi is None and detect_every != 1):
            raise FerEdgeError(f"--detect-every: must be at least 1, got {detect_every}")
        if not 64 <= roi_size <= 320 or roi_size % 32:
            raise FerEdgeError(f"--roi: must be a multiple of 32 from 64 to 320, got {roi_size}")
        super().__init__(full)
        self.roi_detector = roi
        self.detect_every = int(detect_every)
        self.roi_size = int(roi_size)
        self.roi_scale = float(roi_scale)
        self.min_face_fraction = float(min_face_fraction)
        self.confirm_score = float(confirm_score)
        self.cost = DetectionCost(detect_every=self.detect_every, roi_size=self.roi_size)
        channels = (3,) if roi is None or roi.needs_color else ()
        self._canvas = np.zeros((self.roi_size, self.roi_size, *channels), np.uint8)
        self._min_roi_face = roi.min_face if roi is not None else 0
        self.reset()

    def reset(self) -> None:
        """Forget the tracked faces: the next frame gets a full-frame pass."""
        self._tracks: list[Box] = []
        self._thumb: np.ndarray | None = None
        self._looked = np.zeros((1, 1), bool)  # thumbnail pixels a full pass saw change
        self._candidates: list[Box] = []  # changed places the full-frame pass found no face in
        self._since_full = 0
        self._started = False

    def detect(self, frame: np.ndarray) -> list[Box]:
        """Return the faces of ``frame``, largest first, as the full detector would."""
        self.cost.frames += 1
        if self.detect_every == 1:
            return self._full(frame, "start" if not self._started else "periodic")
        height, width = frame.shape[:2]
        t0 = time.perf_counter()
        fresh, seen = self._changed(frame)
        self.cost.check_seconds += time.perf_counter() - t0
        if not self._started:
            return self._full(frame, "start")
        if self._since_full >= self.detect_every - 1:
            return self._full(frame, "periodic")
        if fresh is not None:
            boxes = self._full(frame, "change")
            room = MAX_CANDIDATES - len(self._candidates)
            self._candidates += self._regions(fresh, boxes, width, height)[:room]
            return boxes
        if seen is not None:
            # A change already looked at moved on (a face coming into view, a hand): follow it.
            self._candidates = self._regions(seen, [], width, height)[:MAX_CANDIDATES]
        boxes = []
        for track in self._tracks:
            box = self._roi_pass(frame, track, self.roi_scale, track, 0.0)
            if box is None:
                return self._full(frame, "lost")
            boxes.append(box)
        for region in list(self._candidates):
            box = self._roi_pass(frame, region, CANDIDATE_SCALE, None, self.confirm_score)
            if box is not None:  # a face the full-frame pass missed, now tracked
                self._candidates.remove(region)
                boxes.append(box)
        self._since_full += 1
        self._tracks = largest_first(suppress_duplicates(boxes))
        return list(self._tracks)

    def _full(self, frame: np.ndarray, why: str) -> list[Box]:
        t0 = time.perf_counter()
        boxes = self.inner.detect(frame)
        self.cost.full.add(time.perf_counter() - t0, detector_macs(self.inner))
        self.cost.triggers[why] += 1
        if why in ("periodic", "change") and self.detect_every > 1:
            # Hysteresis: a tracked face the full-frame pass scored under its threshold this
            # frame is still followed (an ROI pass at the tracking threshold), not dropped.
            for track in self._tracks:
                if all(box.iou(track) < ROI_MATCH_IOU for box in boxes):
                    kept = self._roi_pass(frame, track, self.roi_scale, track, 0.0)
                    if kept is not None:
                        boxes = [*boxes, kept]
            boxes = largest_first(suppress_duplicates(boxes))
        if why != "change":
            # The whole frame was looked at anew.
            self._looked = np.zeros_like(self._looked)
            self._candidates = []
        self._started = True
        self._since_full = 0
        self._tracks = list(boxes)
        return boxes

    def _regions(self, changed: np.ndarray, faces: list[Box], width: int, height: int):
        """Return the changed places in ``changed`` away from ``faces``, largest first.

        Each is where the change (a thumbnail mask) lies, in frame pixels: a candidate for
        ROI passes. A face the detector misses on one frame it often finds on the next (a
        turn of the head, a blink, a face coming fully into view); the ROI detector keeps
        looking there, at the full-frame score threshold, until the next periodic pass,
        rather than a full-frame pass per frame.
        """
        s = MOTION_SCALE
        changed = changed.copy()
        _clear_own_change(changed, faces, width, height)  # what changed there is theirs
        # Joined across small gaps: a moving face changes along its edges and features.
        joined = cv2.dilate(changed.astype(np.uint8), _JOIN_KERNEL)
        count, _, stats, _ = cv2.connectedComponentsWithStats(joined, connectivity=8)
        blobs = sorted(np.asarray(stats)[1:count].tolist(), key=lambda b: -b[cv2.CC_STAT_AREA])
        regions = [
            Box(x * s, y * s, w * s, h * s).clipped(width, height) for x, y, w, h, _ in blobs
        ]
        return [r for r in regions if max(r.w, r.h) >= self.min_face]

    def _changed(self, frame: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None]:
        """Return where the picture changed outside the tracked faces since the last frame.

        Two thumbnail masks, each ``None`` when the change is too small to be a face: the
        fresh change, and the change in places a full-frame pass already looked at.

        A change that a full-frame pass has already looked at without finding a face there
        (a hand, a face the detector cannot find) is not a change again until the next
        periodic pass: otherwise it would cost a full-frame pass every frame.
        """
        height, width = frame.shape[:2]
        tw, th = max(1, width // MOTION_SCALE), max(1, height // MOTION_SCALE)
        # Two steps, 4x faster than one INTER_AREA resize of the colour frame: each
        # thumbnail pixel still averages 16 of its 64 frame pixels.
        half = cv2.resize(frame, (2 * tw, 2 * th), interpolation=cv2.INTER_LINEAR)
        thumb = cv2.resize(half, (tw, th), interpolation=cv2.INTER_AREA)
        if thumb.ndim == 3:
            thumb = cv2.cvtColor(thumb, cv2.COLOR_BGR2GRAY)
        previous, self._thumb = self._thumb, thumb
        if previous is None or previous.shape != thumb.shape:
            self._looked = np.zeros(thumb.shape[:2], bool)
            return np.ones(thumb.shape[:2], bool), None
        moved = cv2.absdiff(thumb, previous) >= MOTION_LEVEL
        # What changes around a tracked face is its own business: the ROI pass follows it.
        _clear_own_change(moved, self._tracks, width, height)
        # A change the size of a quarter of the smallest face (in thumbnail pixels) or more.
        least = max(4, round((self.min_face / MOTION_SCALE) ** 2 / 4))
        fresh, seen = moved & ~self._looked, moved & self._looked
        if int(np.count_nonzero(fresh)) >= least:
            self._looked |= cv2.dilate(fresh.astype(np.uint8), _LOOKED_KERNEL).astype(bool)
            return fresh, None
        return None, (seen if int(np.count_nonzero(seen)) >= least else None)

    def _roi_pass(
        self, frame: np.ndarray, around: Box, scale: float, track: Box | None, min_score: float
    ) -> Box | None:
        """Look for a face in the square ``scale`` times ``around``; ``None`` if none is there.

        With a ``track``, the face must overlap it (:data:`ROI_MATCH_IOU`) and the best
        overlap wins; without one, the best score of at least ``min_score`` whose centre
        lies in ``around``.
        """
        assert self.roi_detector is not None  # detect_every > 1
        t0 = time.perf_counter()
        height, width = frame.shape[:2]
        x0, y0, x1, y1 = roi_square(around, scale, width, height)
        zoom = self.roi_size / max(x1 - x0, y1 - y0)
        w = min(self.roi_size, round((x1 - x0) * zoom))
        h = min(self.roi_size, round((y1 - y0) * zoom))
        region = frame[y0:y1, x0:x1]
        if region.ndim == 3 and self._canvas.ndim == 2:
            region = cv2.cvtColor(region, cv2.COLOR_BGR2GRAY)
        # A fixed-size canvas: the ROI detector keeps one input size (no re-allocation), and
        # the part outside the region stays black. Bilinear also when shrinking: INTER_AREA
        # took 0.34 ms of a 1.2 ms pass at 160 px.
        self._canvas.fill(0)
        self._canvas[:h, :w] = cv2.resize(region, (w, h), interpolation=cv2.INTER_LINEAR)
        self.roi_detector.min_face = max(1, round(self._min_roi_face * zoom))
        found = self.roi_detector.detect(self._canvas)
        floor = self.min_face_fraction * min(width, height)
        best, best_key = None, ROI_MATCH_IOU if track is not None else min_score
        for candidate in found:
            box = _from_roi(candidate, zoom, x0, y0).clipped(width, height)
            if max(box.w, box.h) < floor:
                continue
            if track is not None:
                key = box.iou(track)
            else:
                cx, cy = box.x + box.w / 2, box.y + box.h / 2
                inside = (
                    around.x <= cx <= around.x + around.w and around.y <= cy <= around.y + around.h
                )
                key = box.score if inside else -1.0
            if key >= best_key:
                best, best_key = box, key
        self.cost.roi.add(time.perf_counter() - t0, detector_macs(self.roi_detector))
        return best


def _clear_own_change(mask: np.ndarray, faces: list[Box], width: int, height: int) -> None:
    """Clear, in a change thumbnail, the square :data:`OWN_CHANGE_SCALE` times each face.

    What changes there (the face moving, its hair, neck and shoulders) is the face's own,
    not a new face.
    """
    s = MOTION_SCALE
    for face in faces:
        x0, y0, x1, y1 = roi_square(face, OWN_CHANGE_SCALE, width, height)
        mask[y0 // s : -(-y1 // s), x0 // s : -(-x1 // s)] = False


def _from_roi(box: Box, scale: float, x0: int, y0: int) -> Box:
    """Map a box found in an ROI image back to frame pixels."""
    points = None
    if box.landmarks is not None:
        points = tuple((x0 + x / scale, y0 + y / scale) for x, y in box.landmarks)
    return Box(
        round(x0 + box.x / scale),
        round(y0 + box.y / scale),
        round(box.w / scale),
        round(box.h / scale),
        box.score,
        points,
    )
