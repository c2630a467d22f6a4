"""The one face-crop function: box crops, the similarity warp onto the template, real YuNet."""

from pathlib import Path

import cv2
import numpy as np
import pytest

from fer_edge.bench.facevideo import background
from fer_edge.detect import YuNetDetector
from fer_edge.facecrop import (
    FER2013_TEMPLATE,
    AlignTemplate,
    CropOptions,
    alignment_matrix,
    crop_face,
    face_crops,
    similarity_transform,
    square_region,
)
from fer_edge.modelmeta import ModelMeta, embed_in_tflite, read_meta
from fer_edge.preprocess import InputSpec

FACE = Path(__file__).resolve().parents[1] / "data" / "astronaut_face.png"


@pytest.mark.parametrize(
    ("box", "margin", "expected"),
    [
        # side = 30 * 1.2 = 36 about the centre (25, 30)
        ((10, 20, 30, 20), 0.1, (7, 12, 36, 36)),
        # no margin: the longer side, squared about the centre (25, 30)
        ((10, 20, 30, 20), 0.0, (10, 15, 30, 30)),
        # a negative margin crops inside the box: side 30 * 0.8 = 24 about (25, 30)
        ((10, 20, 30, 20), -0.1, (13, 18, 24, 24)),
        # side 30 about (90, 10) spans x 75..105, y -5..25: clipped at the right and top
        ((80, 0, 20, 20), 0.25, (75, 0, 25, 25)),
        # larger than the frame: the whole frame
        ((0, 0, 100, 100), 0.5, (0, 0, 100, 100)),
    ],
)
def test_square_region_margin_square_clip(box, margin, expected):
    assert square_region(box, margin, 100, 100) == expected


def test_box_crop_is_the_region_resized_to_the_input():
    frame = np.random.default_rng(0).integers(0, 256, (100, 100, 3), dtype=np.uint8)
    crop = crop_face(frame, (80, 0, 20, 20), options=CropOptions(mode="box", margin=0.25))
    assert crop.shape == (48, 48) and crop.dtype == np.uint8
    gray = cv2.cvtColor(frame[0:25, 75:100], cv2.COLOR_BGR2GRAY)
    np.testing.assert_array_equal(crop, cv2.resize(gray, (48, 48), interpolation=cv2.INTER_LINEAR))
    wide = crop_face(frame, (10, 10, 60, 60), spec=InputSpec(64, 64))
    assert wide.shape == (64, 64)
    with pytest.raises(ValueError, match="outside"):
        crop_face(frame, (200, 200, 10, 10))


def test_similarity_transform_recovers_a_known_one():
    rng = np.random.default_rng(1)
    src = rng.uniform(0, 100, (5, 2))
    angle, scale, shift = np.radians(25), 0.37, np.array([12.0, -4.0])
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    dst = scale * src @ rotation.T + shift
    matrix = similarity_transform(src, dst)
    np.testing.assert_allclose(matrix, np.hstack([scale * rotation, shift[:, None]]), atol=1e-9)
    assert similarity_transform(np.ones((5, 2)), dst) is None  # all points in one place


def gaussian_dots(points, width, height, sigma):
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    image = np.zeros((height, width))
    for x, y in points:
        image += np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * sigma**2))
    return np.clip(255 * image, 0, 255).astype(np.uint8)


def dot_centres(image):
    """Intensity-weighted centre of each bright blob, ordered like the template (by y, x)."""
    count, labels = cv2.connectedComponents((image > 60).astype(np.uint8))
    yy, xx = np.mgrid[0 : image.shape[0], 0 : image.shape[1]]
    weights = image.astype(np.float64)
    centres = []
    for k in range(1, count):
        w = weights * (labels == k)
        centres.append(((w * xx).sum() / w.sum(), (w * yy).sum() / w.sum()))
    return centres


@pytest.mark.parametrize(
    ("scale", "angle", "size"),
    [(3.2, 15.0, 48), (1.0, -20.0, 48), (4.5, 8.0, 64), (0.8, 0.0, 48)],
)
def test_aligned_crop_puts_the_landmarks_on_the_template(scale, angle, size):
    # Five dots placed where a face of that scale and roll would have its landmarks; after
    # the warp they must sit on the template within a fraction of a pixel, whatever the
    # scale (the large one goes through the anti-aliasing shrink first).
    template = FER2013_TEMPLATE.scaled(size, size)
    theta = np.radians(angle)
    rotation = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    centre = np.array([320.0, 240.0])
    points = (template - size / 2) * (scale * 48 / size) @ rotation.T + centre
    frame = cv2.cvtColor(gaussian_dots(points, 640, 480, 1.6 * scale), cv2.COLOR_GRAY2BGR)
    box = (*(points.min(axis=0) - 20).astype(int), 100, 100)
    crop = crop_face(frame, box, points, InputSpec(size, size))
    assert crop.shape == (size, size)
    got = sorted(dot_centres(crop), key=lambda p: (round(p[1] / 4), p[0]))
    want = sorted(map(tuple, template), key=lambda p: (round(p[1] / 4), p[0]))
    assert len(got) == 5
    np.testing.assert_allclose(got, want, atol=0.35)


def test_degenerate_landmarks_fall_back_to_the_box_crop():
    frame = np.random.default_rng(2).integers(0, 256, (120, 160, 3), dtype=np.uint8)
    box = (40, 30, 60, 60)
    boxed = crop_face(frame, box, options=CropOptions(mode="box"))
    assert alignment_matrix(np.full((5, 2), 50.0), FER2013_TEMPLATE, 48, 48) is None
    np.testing.assert_array_equal(crop_face(frame, box, np.full((5, 2), 50.0)), boxed)
    # The box mode ignores landmarks that are there.
    good = FER2013_TEMPLATE.scaled(48, 48) + 40
    boxed_anyway = crop_face(frame, box, good, options=CropOptions(mode="box"))
    np.testing.assert_array_equal(boxed_anyway, boxed)
    # "both": the aligned crop, then the box crop; without landmarks only the box crop.
    both = face_crops(frame, box, good, options=CropOptions(mode="both"))
    np.testing.assert_array_equal(both[0], crop_face(frame, box, good))
    np.testing.assert_array_equal(both[1], boxed)
    (only,) = face_crops(frame, box, None, options=CropOptions(mode="both"))
    np.testing.assert_array_equal(only, boxed)
    assert CropOptions(mode="both", margin=-0.075).describe() == "both -0.075"
    with pytest.raises(ValueError, match="crop mode"):
        CropOptions(mode="tight")


def test_template_json_round_trip_and_scaling():
    data = FER2013_TEMPLATE.to_dict()
    assert data["landmarks"][0] == "right_eye" and data["size"] == [48, 48]
    assert AlignTemplate.from_dict(data) == FER2013_TEMPLATE
    # Pixel centres map to pixel centres: (x + 0.5) * 2 - 0.5.
    np.testing.assert_allclose(
        FER2013_TEMPLATE.scaled(96, 96), (np.array(FER2013_TEMPLATE.points) + 0.5) * 2 - 0.5
    )
    with pytest.raises(ValueError, match="template"):
        AlignTemplate.from_dict({"points": [[1, 2]] * 3})
    with pytest.raises(ValueError, match="template"):
        AlignTemplate(((1.0, 2.0),) * 4)


def test_the_template_is_symmetric_and_face_shaped():
    (rx, ry), (lx, ly), (nx, ny), (mrx, mry), (mlx, mly) = FER2013_TEMPLATE.points
    assert rx + lx == pytest.approx(47) and mrx + mlx == pytest.approx(47) and nx == 23.5
    assert ry == ly and mry == mly and ry < ny < mry
    assert 14 <= lx - rx <= 22  # FER2013 crops are tight: the eyes are ~18 px apart in 48


def test_a_model_carries_its_own_template(tmp_path, tiny_tflite):
    assert read_meta(tiny_tflite["int8"]).template == FER2013_TEMPLATE  # none stored: default
    own = AlignTemplate(((10.0, 15.0), (38.0, 15.0), (24.0, 26.0), (14.0, 36.0), (34.0, 36.0)),
                        measured="a wider framing")  # fmt: skip
    meta = ModelMeta(("a", "b"), alignment=own)
    assert ModelMeta.from_dict(meta.to_dict()) == meta
    assert "alignment" not in ModelMeta(("a", "b")).to_dict()
    path = tmp_path / "m.tflite"
    path.write_bytes(embed_in_tflite(b"TFL3 fake flatbuffer", meta))
    assert read_meta(path).template == own


def pasted_face_crops(detector, angle, side=220, at=(200, 130)):
    """The aligned and the box crop of the test face pasted with a roll of ``angle`` degrees."""
    face = cv2.resize(cv2.imread(str(FACE), cv2.IMREAD_GRAYSCALE), (side, side))
    rotation = cv2.getRotationMatrix2D((side / 2, side / 2), angle, 1.0)
    tilted = cv2.warpAffine(face, rotation, (side, side), borderMode=cv2.BORDER_REPLICATE)
    frame = background(640, 480, seed=3)
    frame[at[1] : at[1] + side, at[0] : at[0] + side] = cv2.cvtColor(tilted, cv2.COLOR_GRAY2BGR)
    (box,) = detector.detect(frame)
    aligned = crop_face(frame, box.as_list(), box.landmarks)
    boxed = crop_face(frame, box.as_list(), options=CropOptions(mode="box"))
    return aligned, boxed


def similarity(a, b):
    """Normalised cross-correlation of the crops' centres (the face, not the border)."""
    a, b = (x[8:40, 8:40].astype(np.float64) for x in (a, b))
    return float(((a - a.mean()) * (b - b.mean())).mean() / (a.std() * b.std()))


def test_real_yunet_alignment_undoes_head_roll_and_size(yunet_model):
    detector = YuNetDetector(yunet_model, min_face=20, score_threshold=0.5)
    upright_aligned, upright_boxed = pasted_face_crops(detector, 0.0)
    for angle in (10.0, 20.0):
        aligned, boxed = pasted_face_crops(detector, angle)
        # Measured: 0.81 vs 0.61 at 10 degrees, 0.67 vs 0.28 at 20.
        assert similarity(aligned, upright_aligned) > similarity(boxed, upright_boxed) + 0.15
        assert similarity(aligned, upright_aligned) > 0.55
    # A smaller face elsewhere in the frame gives the same aligned crop (0.97).
    small, _ = pasted_face_crops(detector, 0.0, side=150, at=(50, 60))
    assert similarity(small, upright_aligned) > 0.9
