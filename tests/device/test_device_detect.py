"""Face detection on frames with faces pasted at known places (real OpenCV); duplicate removal."""

from pathlib import Path

import cv2
import numpy as np
import pytest

from fer_edge.bench.facevideo import (
    background,
    compose_frames,
    detection_rate,
    found,
    match_faces,
    sample_faces,
)
from fer_edge.detect import (
    YUNET_MODEL,
    YUNET_ONNX,
    Box,
    CleanDetector,
    DownscaledDetector,
    HaarDetector,
    YuNetDetector,
    default_yunet_model,
    default_yunet_onnx,
    make_detector,
    suppress_duplicates,
)
from fer_edge.errors import FerEdgeError

# A public-domain NASA photo (see tests/data/astronaut_face.LICENSE.txt).
FACE = Path(__file__).resolve().parents[1] / "data" / "astronaut_face.png"


def astronaut() -> np.ndarray:
    image = cv2.imread(str(FACE), cv2.IMREAD_GRAYSCALE)
    assert image is not None, FACE
    return image


def detect_all(detector, frames):
    return [detector.detect(f.image) for f in frames]


def test_box_iou_and_clipping_by_hand():
    a, b = Box(0, 0, 10, 10), Box(5, 0, 10, 10)
    assert a.iou(b) == pytest.approx(50 / 150)
    assert a.iou(Box(20, 20, 5, 5)) == 0.0
    assert a.iou(a) == 1.0
    assert Box(-5, 90, 20, 20).clipped(100, 100) == Box(0, 90, 15, 10)
    assert Box(3, 4, 5, 6).as_list() == [3, 4, 5, 6]


@pytest.fixture(scope="module")
def astronaut_frames():
    # Two faces per frame at two sizes, drifting over 3 frames.
    face = astronaut()
    small = list(compose_frames([face, face], face_size=120, per_frame=2, hold=3, seed=1))
    large = list(compose_frames([face], face_size=220, hold=2, seed=2))
    return small + large


def test_haar_finds_the_pasted_faces(astronaut_frames):
    detected = detect_all(HaarDetector(min_face=40), astronaut_frames)
    rate, false_positives = detection_rate([f.boxes for f in astronaut_frames], detected)
    assert rate == 1.0 and false_positives == 0


def test_yunet_finds_the_pasted_faces(astronaut_frames, yunet_model):
    detector = YuNetDetector(yunet_model, min_face=40)
    detected = detect_all(detector, astronaut_frames)
    rate, false_positives = detection_rate([f.boxes for f in astronaut_frames], detected)
    assert rate == 1.0 and false_positives == 0
    assert all(0.0 < b.score <= 1.0 for boxes in detected for b in boxes)
    # A frame of another size re-sizes the network input instead of failing.
    assert len(detector.detect(cv2.resize(astronaut_frames[-1].image, (320, 240)))) == 1


def test_no_faces_in_a_plain_background(yunet_model):
    frame = background(640, 480, seed=3)
    assert HaarDetector().detect(frame) == []
    assert YuNetDetector(yunet_model).detect(frame) == []


def test_min_face_drops_small_faces():
    frame = next(compose_frames([astronaut()], face_size=80, seed=4))
    # The face itself is about 50 px inside an 80 px paste.
    assert len(HaarDetector(min_face=30).detect(frame.image)) == 1
    assert HaarDetector(min_face=90).detect(frame.image) == []


def test_downscaled_detection_reports_full_frame_boxes(astronaut_frames, yunet_model):
    frames = astronaut_frames[-2:]  # the 220 px face
    truth = [f.boxes for f in frames]
    for inner in (HaarDetector(min_face=40), YuNetDetector(yunet_model, min_face=40)):
        full = detect_all(inner, frames)
        small = detect_all(DownscaledDetector(inner, 320), frames)
        assert detection_rate(truth, small) == (1.0, 0)
        for a, b in zip(full, small, strict=True):
            assert a[0].iou(b[0]) > 0.7
    # min_face stays in frame pixels: a 50 px face is too small for 90 at any detection size.
    frame = next(compose_frames([astronaut()], face_size=80, seed=4)).image
    assert DownscaledDetector(HaarDetector(min_face=90), 320).detect(frame) == []
    assert len(DownscaledDetector(HaarDetector(min_face=40), 480).detect(frame)) == 1
    assert make_detector("haar", detect_width=320).name == "haar"
    with pytest.raises(FerEdgeError, match="--detect-width"):
        make_detector("haar", detect_width=8)


def test_gray_frames_work_for_both(yunet_model):
    frame = next(compose_frames([astronaut()], face_size=160, seed=5))
    gray = cv2.cvtColor(frame.image, cv2.COLOR_BGR2GRAY)
    for detector in (HaarDetector(), YuNetDetector(yunet_model)):
        boxes = detector.detect(gray)
        assert len(boxes) == 1 and found(frame.boxes[0], boxes[0])


def test_detector_errors_name_the_flag(tmp_path):
    with pytest.raises(FerEdgeError, match="--detector-model: .* does not exist"):
        make_detector("yunet", tmp_path / "missing.onnx")
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\x00not onnx" * 50)
    with pytest.raises(FerEdgeError, match="cannot load .*junk.onnx"):
        make_detector("yunet", junk)
    with pytest.raises(FerEdgeError, match="--detector: unknown detector 'mtcnn'"):
        make_detector("mtcnn")
    with pytest.raises(FerEdgeError, match="--min-face"):
        make_detector("haar", min_face=0)
    with pytest.raises(FerEdgeError, match="--detector-threshold"):
        make_detector("yunet", score_threshold=1.5)


@pytest.mark.fer2013
def test_real_fer_faces_pasted_into_frames(fer2013_root, yunet_model):
    faces, classes = sample_faces(fer2013_root / "val", 28, seed=0)
    assert len(faces) == 28 and set(classes) == set(
        p.name for p in (fer2013_root / "val").iterdir()
    )
    frames = list(compose_frames(faces, face_size=192, seed=0))
    truth = [f.boxes for f in frames]
    haar_rate, haar_fp = detection_rate(truth, detect_all(HaarDetector(), frames))
    yunet_rate, yunet_fp = detection_rate(truth, detect_all(YuNetDetector(yunet_model), frames))
    # Measured on larger samples: Haar finds about 75% of FER faces, YuNet about 95%.
    assert haar_rate >= 0.55 and yunet_rate >= 0.8
    assert haar_fp <= 2 and yunet_fp <= 2


def test_box_scaled_and_clipped_keep_landmarks():
    points = ((15.0, 30.0), (35.0, 30.0), (25.0, 40.0), (18.0, 50.0), (32.0, 50.0))
    box = Box(10, 20, 30, 40, 0.9, points)
    assert box.scaled(2.0) == Box(20, 40, 60, 80, 0.9, tuple((2 * x, 2 * y) for x, y in points))
    clipped = box.clipped(25, 100)
    assert (clipped.x, clipped.w, clipped.landmarks) == (10, 15, points)


def test_suppress_duplicates_by_hand():
    face = Box(100, 100, 100, 100, 0.9)
    shifted = Box(110, 105, 100, 100, 0.8)  # IoU 0.74 with face: the same face
    inner = Box(120, 110, 40, 40, 0.5)  # an eye-sized box: IoU 0.16, but wholly inside
    other = Box(300, 100, 100, 100, 0.7)  # another face
    touching = Box(195, 100, 100, 100, 0.6)  # 5% of it overlaps face: a neighbour, kept
    assert suppress_duplicates([shifted, inner, touching, face, other]) == [face, other, touching]
    # Without scores (Haar) the larger box wins and the nested one goes.
    haar_face, haar_inner = Box(100, 100, 100, 100), Box(130, 150, 50, 40)
    assert suppress_duplicates([haar_inner, haar_face]) == [haar_face]
    assert suppress_duplicates([]) == []


def test_clean_detector_removes_raw_haar_duplicates(astronaut_frames):
    # min_neighbors=0 returns every raw cascade window: dozens per face.
    raw = HaarDetector(min_face=40, min_neighbors=0)
    clean = CleanDetector(raw)
    for frame in astronaut_frames:
        assert len(raw.detect(frame.image)) > 5 * len(frame.boxes)
        boxes = clean.detect(frame.image)
        assert sorted(m for m in match_faces(frame.boxes, boxes) if m is not None) == list(
            range(len(frame.boxes))
        )
        assert len(boxes) == len(frame.boxes)
        assert boxes == sorted(boxes, key=lambda b: -b.area)


class FixedBoxes:
    """A detector stub returning given boxes, to check the cleaning arithmetic alone."""

    name = "stub"
    needs_color = True

    def __init__(self, boxes):
        self.boxes, self.min_face = boxes, 1

    def detect(self, frame):
        return list(self.boxes)


def test_min_face_is_relative_to_the_frame():
    small, large = Box(10, 10, 30, 30, 0.9), Box(200, 100, 120, 120, 0.8)
    clean = CleanDetector(FixedBoxes([small, large]), min_face_fraction=0.1)
    # 10% of the shorter side: 48 px at 640x480 (the 30 px box goes), 24 px at 320x240.
    assert clean.detect(np.zeros((480, 640, 3), np.uint8)) == [large]
    assert clean.detect(np.zeros((240, 320, 3), np.uint8)) == [large, small]
    clean.min_face = 7
    assert clean.inner.min_face == 7


def test_yunet_gives_five_landmarks_on_the_face(astronaut_frames, yunet_model):
    detector = YuNetDetector(yunet_model, min_face=40)
    for frame in astronaut_frames:
        for box in detector.detect(frame.image):
            assert box.landmarks is not None and len(box.landmarks) == 5
            (rx, ry), (lx, ly), (nx, ny), (mrx, mry), (mlx, mly) = box.landmarks
            assert rx < nx < lx and mrx < mlx  # the subject's right eye is on the image's left
            assert max(ry, ly) < ny < min(mry, mly)  # eyes above the nose above the mouth
            assert all(box.x <= x < box.x + box.w and box.y <= y < box.y + box.h
                       for x, y in box.landmarks)  # fmt: skip


def test_downscaled_landmarks_map_back(astronaut_frames, yunet_model):
    inner = YuNetDetector(yunet_model, min_face=40)
    frame = astronaut_frames[-1].image  # the 220 px face
    (full,) = inner.detect(frame)
    (small,) = DownscaledDetector(inner, 320).detect(frame)
    # Detected at half size, the landmarks land where the full-size ones do, within a sixth of
    # the eye distance (a few pixels of detection noise; unmapped points would be 200 px off).
    eyes = np.linalg.norm(np.subtract(full.landmarks[1], full.landmarks[0]))
    np.testing.assert_allclose(small.landmarks, full.landmarks, atol=eyes / 6)


def test_bundled_yunet_is_the_default(astronaut_frames):
    path = default_yunet_model()
    assert path.name == YUNET_MODEL and path.suffix == ".tflite"
    onnx = default_yunet_onnx()
    assert onnx == path.parent / YUNET_ONNX
    assert path.stat().st_size > 100_000 and onnx.stat().st_size > 100_000
    assert "MIT License" in (path.parent / "LICENSE.face_detection_yunet.txt").read_text()
    detector = make_detector("yunet")
    assert detector.name == "yunet"
    frame = astronaut_frames[-1]
    assert detection_rate([frame.boxes], [detector.detect(frame.image)]) == (1.0, 0)


def test_the_tflite_yunet_decodes_to_opencvs_boxes(astronaut_frames):
    """The bundled conversion on the TFLite interpreter against the zoo's ONNX in OpenCV: the
    same faces, boxes, landmarks and scores, also for sizes that are no multiple of 32."""
    from fer_edge.yunetlite import LiteYuNet

    onnx = default_yunet_onnx()
    reference = cv2.FaceDetectorYN.create(str(onnx), "", (320, 320), 0.3, 0.3, 5000)
    lite = LiteYuNet(default_yunet_model(), 0.3, 0.3, 5000)
    faces = 0
    for frame in astronaut_frames:
        # 630x470 shares 640x480's padded input: its padding must be cleared of the last frame.
        for size in (None, (630, 470), (500, 371), (1280, 720)):
            image = frame.image if size is None else cv2.resize(frame.image, size)
            reference.setInputSize(image.shape[1::-1])
            _, want = reference.detect(image)
            _, got = lite.detect(image)
            if want is None:
                assert got is None
                continue
            assert got is not None and got.shape == want.shape
            np.testing.assert_allclose(got[:, :14], want[:, :14], atol=0.05)  # pixels
            np.testing.assert_allclose(got[:, 14], want[:, 14], atol=1e-4)  # scores
            faces += len(want)
    assert faces >= len(astronaut_frames) * 3


def test_a_tflite_that_is_not_yunet_is_a_one_line_error(tmp_path, tiny_tflite):
    with pytest.raises(FerEdgeError, match="--detector-model: .*not a BGR image like YuNet"):
        make_detector("yunet", tiny_tflite["float"])
    junk = tmp_path / "junk.tflite"
    junk.write_bytes(b"\x00not tflite" * 50)
    with pytest.raises(FerEdgeError, match="--detector-model: .*junk.tflite"):
        make_detector("yunet", junk)
