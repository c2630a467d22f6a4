"""Per-face EMA smoothing and face ids, with hand-computed values and a real moving face."""

from pathlib import Path

import cv2
import numpy as np
import pytest

from fer_edge.bench.facevideo import background
from fer_edge.classifier import FaceClassifier
from fer_edge.detect import Box, make_detector
from fer_edge.device.pipeline import FacePipeline
from fer_edge.device.smoothing import EmaSmoother

FACE = Path(__file__).resolve().parents[1] / "data" / "astronaut_face.png"

A = Box(0, 0, 100, 100)
A_MOVED = Box(10, 5, 100, 100)  # IoU with A = 90*95 / (2*10000 - 90*95) = 0.745
B = Box(300, 0, 100, 100)


def test_ema_by_hand():
    s = EmaSmoother(alpha=0.5)
    np.testing.assert_allclose(s.update([A], [np.array([1.0, 0.0])])[0], [1.0, 0.0])
    np.testing.assert_allclose(s.update([A_MOVED], [np.array([0.0, 1.0])])[0], [0.5, 0.5])
    np.testing.assert_allclose(s.update([A], [np.array([0.0, 1.0])])[0], [0.25, 0.75])
    assert s.tracks[0].frames == 3
    s2 = EmaSmoother(alpha=0.25)
    s2.update([A], [np.array([0.8, 0.2])])
    # 0.25 * [0, 1] + 0.75 * [0.8, 0.2] = [0.6, 0.4]
    np.testing.assert_allclose(s2.update([A], [np.array([0.0, 1.0])])[0], [0.6, 0.4])


def test_a_box_that_does_not_overlap_starts_fresh():
    s = EmaSmoother(alpha=0.5)
    s.update([A], [np.array([1.0, 0.0])])
    np.testing.assert_allclose(s.update([B], [np.array([0.0, 1.0])])[0], [0.0, 1.0])
    # A is forgotten once a frame passes without it.
    np.testing.assert_allclose(s.update([A], [np.array([0.0, 1.0])])[0], [0.0, 1.0])


def test_two_faces_keep_their_own_history_in_any_order():
    s = EmaSmoother(alpha=0.5)
    s.update([A, B], [np.array([1.0, 0.0]), np.array([0.0, 1.0])])
    out = s.update([B, A_MOVED], [np.array([1.0, 0.0]), np.array([1.0, 0.0])])
    np.testing.assert_allclose(out[0], [0.5, 0.5])  # B: 0.5 * [1, 0] + 0.5 * [0, 1]
    np.testing.assert_allclose(out[1], [1.0, 0.0])  # A: same as before


def test_matching_is_one_to_one():
    s = EmaSmoother(alpha=0.5)
    s.update([A], [np.array([1.0, 0.0])])
    # Two new boxes overlap A; only the better overlap inherits its history.
    out = s.update([Box(40, 0, 100, 100), A_MOVED], [np.array([0.0, 1.0])] * 2)
    np.testing.assert_allclose(out[0], [0.0, 1.0])
    np.testing.assert_allclose(out[1], [0.5, 0.5])


def test_alpha_one_is_no_smoothing_and_ranges_are_checked():
    s = EmaSmoother(alpha=1.0)
    s.update([A], [np.array([1.0, 0.0])])
    np.testing.assert_allclose(s.update([A], [np.array([0.2, 0.8])])[0], [0.2, 0.8])
    s.reset()
    assert s.tracks == []
    for bad in (0.0, 1.5):
        with pytest.raises(ValueError, match="alpha"):
            EmaSmoother(alpha=bad)
    with pytest.raises(ValueError, match="boxes"):
        s.update([A], [])


def test_ids_follow_the_association():
    s = EmaSmoother(alpha=1.0)  # alpha 1: ids only, no smoothing
    p = [np.array([1.0, 0.0])]
    s.update([A], p)
    assert s.ids == [1]
    s.update([A_MOVED], p)
    assert s.ids == [1]  # the same face, moved
    s.update([B, A], p * 2)
    assert s.ids == [2, 1]  # a newcomer gets the next id; order follows the boxes
    s.update([B], p)
    s.update([A], p)
    assert s.ids == [3]  # A was gone for a frame: it comes back as a new face
    s.reset()
    s.update([A], p)
    assert s.ids == [4]  # ids are never reused


def test_a_moving_face_keeps_its_id_through_the_pipeline(tiny_tflite):
    # Real detection and classification: a face walking across the frame 12 px per frame.
    face = cv2.imread(str(FACE), cv2.IMREAD_GRAYSCALE)
    face = cv2.cvtColor(cv2.resize(face, (160, 160)), cv2.COLOR_GRAY2BGR)
    pipeline = FacePipeline(make_detector("yunet"), FaceClassifier(tiny_tflite["int8"]))
    ids = []
    for i in range(15):
        frame = background(640, 480, seed=0)
        x, y = 40 + 12 * i, 100 + 4 * i
        frame[y : y + 160, x : x + 160] = face
        if i >= 10:  # a second person steps in and stays
            frame[40:200, 440:600] = face
        (first, *others) = sorted(pipeline.process(frame), key=lambda r: r.box.x)
        ids.append(first.id)
        if i >= 10:
            assert [o.id for o in others] == [2]
    assert ids == [1] * 15


def test_ids_do_not_depend_on_box_order():
    s = EmaSmoother(alpha=0.5)
    s.update([A, B], [np.array([1.0, 0.0])] * 2)
    assert s.ids == [1, 2]
    s.update([B, A_MOVED], [np.array([1.0, 0.0])] * 2)
    assert s.ids == [2, 1]  # each face keeps its id, whatever the order of the boxes
    s.update([A], [np.array([1.0, 0.0])])
    s.update([B], [np.array([1.0, 0.0])])  # B was gone for a frame: a new face
    assert s.ids == [3]
    s.reset()
    s.update([A], [np.array([1.0, 0.0])])
    assert s.ids == [4]  # ids are never reused, also after a reset
