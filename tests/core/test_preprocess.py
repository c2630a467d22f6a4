import numpy as np
import pytest

from fer_edge.preprocess import (
    InputSpec,
    dequantize,
    normalize,
    preprocess,
    quantize,
    resize_face,
)


@pytest.mark.parametrize(
    "shape", [(48, 48), (120, 90), (20, 30), (64, 64, 3), (64, 64, 4), (30, 30, 1)]
)
def test_any_crop_becomes_a_48x48_gray_float_batch(shape):
    rng = np.random.default_rng(0)
    crop = rng.integers(0, 256, shape, dtype=np.uint8)
    x = preprocess(crop)
    assert x.shape == (1, 48, 48, 1) and x.dtype == np.float32
    assert x.min() >= 0.0 and x.max() <= 1.0


def test_values_map_to_unit_range_exactly():
    crop = np.array([[0, 255], [51, 102]], np.uint8)
    x = normalize(crop)
    assert x.shape == (2, 2, 1)
    np.testing.assert_allclose(x[..., 0], [[0.0, 1.0], [0.2, 0.4]], rtol=1e-6)


def test_bgr_uses_luma_weights():
    bgr = np.zeros((48, 48, 3), np.uint8)
    bgr[..., 2] = 255  # pure red: luma 0.299 * 255 = 76
    assert int(resize_face(bgr)[0, 0]) == 76


def test_three_channel_spec_repeats_gray():
    spec = InputSpec(32, 32, channels=3)
    x = preprocess(np.full((40, 40), 128, np.uint8), spec)
    assert x.shape == (1, 32, 32, 3)
    assert np.all(x[..., 0] == x[..., 2])


def test_int8_input_quantisation_by_hand():
    # scale 1/255, zero point -128: pixel p -> round(p/255 / (1/255)) - 128 = p - 128
    crop = np.array([[0, 1, 128, 255]], np.uint8).repeat(48, 0)
    crop = np.tile(crop, (1, 12))
    q = preprocess(crop, dtype=np.int8, quantization=(1 / 255, -128))
    assert q.dtype == np.int8
    assert q[0, 0, :4, 0].tolist() == [-128, -127, 0, 127]


def test_quantize_clips_and_rounds():
    q = quantize(np.array([-10.0, 0.26, 0.74, 10.0]), 0.5, 3, np.int8)
    assert q.tolist() == [-17, 4, 4, 23]
    assert quantize(np.array([1e6]), 0.5, 0, np.int8).tolist() == [127]
    assert quantize(np.array([1e6]), 0.5, 0, np.uint8).tolist() == [255]


def test_dequantize_widens_before_subtracting():
    # uint8 200 - zero point 250 would wrap around without widening.
    assert dequantize(np.array([200], np.uint8), 0.5, 250).tolist() == [-25.0]
    # int8 output of a softmax: scale 1/256, zero point -128.
    out = dequantize(np.array([-128, 0, 127], np.int8), 1 / 256, -128)
    np.testing.assert_allclose(out, [0.0, 0.5, 255 / 256])
    assert dequantize(np.array([0.25], np.float32), 0.0, 0).tolist() == [0.25]


def test_integer_input_without_scale_is_refused():
    with pytest.raises(ValueError, match="scale"):
        preprocess(np.zeros((48, 48), np.uint8), dtype=np.int8, quantization=(0.0, 0))
