"""Face detection and cropping on frames with faces pasted at known places (real OpenCV)."""

from pathlib import Path

import cv2
import numpy as np
import pytest

from fer_edge.device.detect import (
    Box,
    DownscaledDetector,
    HaarDetector,
    YuNetDetector,
    crop_box,
    crop_face,
    make_detector,
)
from fer_edge.device.facevideo import (
    background,
    compose_frames,
    detection_rate,
    found,
    sample_faces,
)
from fer_edge.errors import FerEdgeError

# A public-domain NASA photo (see tests/data/astronaut_face.LICENSE.txt).
FACE = Path(__file__).parent / "data" / "astronaut_face.png"


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


@pytest.mark.parametrize(
    ("box", "margin", "expected"),
    [
        # side = 30 * 1.2 = 36 about the centre (25, 30)
        (Box(10, 20, 30, 20), 0.1, Box(7, 12, 36, 36)),
        # no margin: the longer side, squared about the centre (25, 30)
        (Box(10, 20, 30, 20), 0.0, Box(10, 15, 30, 30)),
        # side 30 about (90, 10) spans x 75..105, y -5..25: clipped at the right and top
        (Box(80, 0, 20, 20), 0.25, Box(75, 0, 25, 25)),
        # larger than the frame: the whole frame
        (Box(0, 0, 100, 100), 0.5, Box(0, 0, 100, 100)),
    ],
)
def test_crop_box_margin_square_clip(box, margin, expected):
    assert crop_box(box, margin, 100, 100) == expected


def test_crop_face_is_a_view_of_the_region():
    frame = np.arange(100 * 100 * 3, dtype=np.uint32).reshape(100, 100, 3).astype(np.uint8)
    crop, region = crop_face(frame, Box(80, 0, 20, 20), 0.25)
    assert region == Box(75, 0, 25, 25)
    assert crop.shape == (25, 25, 3)
    np.testing.assert_array_equal(crop, frame[0:25, 75:100])
    with pytest.raises(ValueError, match="outside"):
        crop_face(frame, Box(200, 200, 10, 10), 0.0)


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
    with pytest.raises(FerEdgeError, match="--detector yunet needs --detector-model"):
        make_detector("yunet")
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
