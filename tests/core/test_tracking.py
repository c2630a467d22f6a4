"""Tracking between detections: real YuNet on composed frames, full-frame and ROI passes."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from fer_edge.bench.facevideo import background
from fer_edge.detect import Box, make_detector
from fer_edge.errors import FerEdgeError
from fer_edge.tracking import DetectionCost, TrackingDetector, roi_square

from ..conftest import run_cli

EVERY = 8


def paste(frame: np.ndarray, face: np.ndarray, x: int, y: int, alpha: float = 1.0) -> Box:
    """Paste a gray face (blended by ``alpha``) into a BGR frame; return where it went."""
    side = face.shape[0]
    region = frame[y : y + side, x : x + side].astype(np.float32)
    color = cv2.cvtColor(face, cv2.COLOR_GRAY2BGR).astype(np.float32)
    frame[y : y + side, x : x + side] = (alpha * color + (1 - alpha) * region).astype(np.uint8)
    return Box(x, y, side, side)


@pytest.fixture(scope="module")
def face(astronaut_face) -> np.ndarray:
    return cv2.resize(astronaut_face, (150, 150), interpolation=cv2.INTER_AREA)


@pytest.fixture(scope="module")
def scene() -> np.ndarray:
    return background(640, 480, seed=3)


def drifting(face: np.ndarray, scene: np.ndarray, frames: int, start: int = 0):
    """Yield ``(frame, truth box or None)``: empty until ``start``, then a drifting face."""
    for i in range(frames):
        image = scene.copy()
        box = None
        if i >= start:
            box = paste(image, face, 200 + 3 * (i - start), 150 + (i - start) % 5)
        yield image, box


def test_a_drifting_face_is_tracked_by_roi_passes_at_a_fraction_of_the_work(face, scene):
    tracker = make_detector("yunet", threads=1, detect_every=EVERY)
    full = make_detector("yunet", threads=1)
    for image, truth in drifting(face, scene, 40):
        tracked, reference = tracker.detect(image), full.detect(image)
        assert len(tracked) == len(reference) == 1
        # The face photo has a margin: its box lies inside where it was pasted.
        assert tracked[0].intersection(truth) >= 0.9 * tracked[0].area
        assert tracked[0].iou(reference[0]) > 0.8
        assert tracked[0].landmarks is not None
        # Landmarks continue inside the box (mapped back from the ROI image).
        xs = [x for x, _ in tracked[0].landmarks]
        assert tracked[0].x < min(xs) <= max(xs) < tracked[0].x + tracked[0].w
    cost = tracker.cost
    assert cost.frames == 40
    assert cost.full.count == 40 // EVERY  # the first frame, then every EVERY-th
    assert cost.triggers == {"start": 1, "periodic": 4, "lost": 0, "change": 0}
    assert cost.roi.count == 40 - cost.full.count
    assert full.cost.full.count == 40 and full.cost.roi.count == 0
    # MACs counted from the graph: 640x480 is 258 M; a 128 px ROI 13.8 M.
    assert full.cost.macs_per_frame == pytest.approx(258.17e6, rel=1e-3)
    assert cost.macs_per_frame is not None
    assert cost.macs_per_frame < 0.3 * full.cost.macs_per_frame


def test_a_face_that_appears_is_reported_on_that_frame(face, scene):
    """A face that comes into view changes the picture: a full-frame pass runs at once."""
    tracker = make_detector("yunet", threads=1, detect_every=30)
    for i, (image, truth) in enumerate(drifting(face, scene, 20, start=7)):
        boxes = tracker.detect(image)
        assert len(boxes) == (truth is not None), i
    assert tracker.cost.triggers["change"] == 1
    assert tracker.cost.full.count == 2  # the first frame and the face's


def test_a_face_fading_in_is_at_most_detect_every_minus_1_frames_late(face, scene):
    """The worst case: a face that never changes the picture enough (a slow fade-in)."""
    frames = []
    for i in range(40):
        image = scene.copy()
        paste(image, face, 240, 160, alpha=min(1.0, i / 40))  # under 7 gray levels per frame
        frames.append(image)
    full = make_detector("yunet", threads=1)
    first = next(i for i, image in enumerate(frames) if full.detect(image))
    assert 0 < first < 30
    tracker = make_detector("yunet", threads=1, detect_every=EVERY)
    reported = next(i for i, image in enumerate(frames) if tracker.detect(image))
    assert tracker.cost.triggers["change"] == 0  # found by a periodic pass, as designed
    assert first <= reported <= first + EVERY - 1


def test_a_face_that_leaves_is_dropped_on_that_frame(face, scene):
    tracker = make_detector("yunet", threads=1, detect_every=EVERY)
    frames = [image for image, _ in drifting(face, scene, 5)]
    for image in frames:
        assert len(tracker.detect(image)) == 1
    assert tracker.detect(scene.copy()) == []
    assert tracker.cost.triggers["lost"] == 1
    # Nothing changes and nobody is there: no pass at all until the next periodic one.
    passes = tracker.cost.full.count + tracker.cost.roi.count
    for _ in range(EVERY - 3):
        assert tracker.detect(scene.copy()) == []
    assert tracker.cost.full.count + tracker.cost.roi.count == passes


def test_two_faces_keep_their_own_tracks(face, scene):
    tracker = make_detector("yunet", threads=1, detect_every=EVERY)
    for i in range(24):
        image = scene.copy()
        left = paste(image, face, 60 + i, 160)
        right = paste(image, face, 400 - i, 170)
        boxes = tracker.detect(image)
        assert len(boxes) == 2
        for pasted in (left, right):
            assert max(b.intersection(pasted) / b.area for b in boxes) >= 0.9
    assert tracker.cost.roi.count == 2 * (24 - tracker.cost.full.count)


def test_reset_starts_with_a_full_frame_pass(face, scene):
    tracker = make_detector("yunet", threads=1, detect_every=EVERY)
    image, _ = next(drifting(face, scene, 1))
    tracker.detect(image)
    tracker.reset()
    tracker.detect(image)
    assert tracker.cost.triggers["start"] == 2


def test_roi_square_is_clipped_to_the_frame():
    assert roi_square(Box(100, 100, 50, 40), 2.0, 640, 480) == (75, 70, 175, 170)
    assert roi_square(Box(0, 0, 50, 50), 2.0, 640, 480) == (0, 0, 75, 75)
    assert roi_square(Box(600, 440, 40, 40), 2.0, 640, 480) == (580, 420, 640, 480)


def test_cost_reads_as_one_line():
    cost = DetectionCost(frames=10, detect_every=5)
    cost.full.add(0.010, 258e6)
    cost.full.add(0.010, 258e6)
    for _ in range(8):
        cost.roi.add(0.0005, 13.8e6)
    cost.triggers["start"] = cost.triggers["periodic"] = 1
    assert cost.ms_per_frame == pytest.approx(2.4)
    assert cost.macs_per_frame == pytest.approx(62.64e6)
    line = cost.describe()
    assert "2.40 ms and 62.6 M MACs per frame" in line
    assert "full-frame 2 x 10.00 ms (start 1, periodic 1), ROI 8 x 0.50 ms" in line
    assert cost.to_dict()["roi"] == {"count": 8, "mean_ms": 0.5}
    haar = DetectionCost(frames=1)
    haar.full.add(0.01, None)
    assert haar.macs_per_frame is None and "MACs" not in haar.describe()


def test_bad_values_are_refused():
    with pytest.raises(FerEdgeError, match="--detect-every"):
        make_detector("yunet", detect_every=0)
    with pytest.raises(FerEdgeError, match="--roi"):
        make_detector("yunet", detect_every=5, roi_size=100)
    full = make_detector("haar")
    with pytest.raises(FerEdgeError, match="--detect-every"):
        TrackingDetector(full.inner, None, detect_every=3)


@pytest.mark.parametrize(
    ("flag", "value"), [("--detect-every", "0"), ("--roi", "33"), ("--roi", "1024")]
)
def test_cli_names_the_flag(flag, value, tmp_path, astronaut_face):
    image = tmp_path / "face.png"
    cv2.imwrite(str(image), astronaut_face)
    result = run_cli("run", "-s", str(image), flag, value)
    assert result.exit_code == 2 or result.exit_code == 1
    assert flag in result.output and "Traceback" not in result.output


def test_detect_every_1_is_a_full_frame_pass_every_frame(face, scene):
    detector = make_detector("yunet", threads=1)
    frames = [image for image, _ in drifting(face, scene, 4)] + [scene.copy()] * 2
    assert [len(detector.detect(image)) for image in frames] == [1, 1, 1, 1, 0, 0]
    cost = detector.cost
    assert (cost.full.count, cost.roi.count, cost.check_seconds) == (6, 0, 0.0)
    assert cost.triggers == {"start": 1, "periodic": 5, "lost": 0, "change": 0}
    assert "full frame every frame" in cost.describe()


def test_a_face_sliding_in_from_the_edge_is_reported_within_a_frame_of_a_full_pass(face, scene):
    """The common entrance: a face moves into view from the side, 10 px per frame."""
    frames = []
    for i in range(30):
        image = scene.copy()
        x = -150 + 10 * i
        if x + 150 > 0:
            visible = face[:, max(0, -x) :]
            image[160:310, max(0, x) : x + 150] = cv2.cvtColor(visible, cv2.COLOR_GRAY2BGR)
        frames.append(image)
    full = make_detector("yunet", threads=1)
    first = next(i for i, image in enumerate(frames) if full.detect(image))
    tracker = make_detector("yunet", threads=1, detect_every=30)
    found = [bool(tracker.detect(image)) for image in frames]
    reported = found.index(True)
    assert first > 0 and reported <= first + 1
    assert all(found[reported:])  # once found, followed to the end
