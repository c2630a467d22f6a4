"""Quantised input and dequantised output on the device path, checked with hand-computed values."""

from pathlib import Path

import cv2
import numpy as np
import pytest

from fer_edge.classifier import ClassifierOptions, FaceClassifier
from fer_edge.preprocess import dequantize, quantize
from fer_edge.runtime import load_runtime

FACE = Path(__file__).resolve().parents[1] / "data" / "astronaut_face.png"


def test_dequantize_by_hand():
    # int8 softmax output convention: scale 1/256, zero point -128.
    q = np.array([-128, 0, 127], np.int8)
    np.testing.assert_array_equal(dequantize(q, 1 / 256, -128), [0.0, 0.5, 0.99609375])
    # uint8 with a large zero point: 10 - 200 would wrap to 66 in uint8 arithmetic.
    q = np.array([10, 200, 255], np.uint8)
    np.testing.assert_array_equal(dequantize(q, 0.5, 200), [-95.0, 0.0, 27.5])
    # int8 with zero point 100: -128 - 100 = -228 overflows int8.
    np.testing.assert_array_equal(dequantize(np.array([-128], np.int8), 0.25, 100), [-57.0])
    # Float outputs pass through.
    np.testing.assert_array_equal(dequantize(np.array([0.25], np.float32), 0.0, 0), [0.25])


def test_quantize_by_hand():
    x = np.array([0.0, 0.2, 1.0, 2.0, -1.0])
    # round(x * 255) - 128, clipped to int8: 0.2 * 255 = 51.
    np.testing.assert_array_equal(quantize(x, 1 / 255, -128, np.int8), [-128, -77, 127, 127, -128])
    np.testing.assert_array_equal(quantize(x, 1 / 255, 0, np.uint8), [0, 51, 255, 255, 0])


@pytest.fixture(scope="module")
def face():
    return cv2.imread(str(FACE), cv2.IMREAD_GRAYSCALE)


def test_int8_classifier_uses_the_tensors_own_parameters(tiny_tflite, face):
    clf = FaceClassifier(tiny_tflite["int8"], ClassifierOptions(threads=1))
    interp = load_runtime().interpreter(model_path=str(tiny_tflite["int8"]), threads=1)
    (inp,), (out,) = interp.get_input_details(), interp.get_output_details()
    in_scale, in_zero = inp["quantization"]
    out_scale, out_zero = out["quantization"]
    assert inp["dtype"] == np.int8 and out["dtype"] == np.int8
    assert (out_scale, out_zero) == (1 / 256, -128)  # TFLite's int8 softmax output

    tensor = clf.prepare(face)
    gray48 = cv2.resize(face, (48, 48), interpolation=cv2.INTER_AREA)
    by_hand = np.clip(np.round(gray48 / 255.0 / in_scale) + in_zero, -128, 127)
    np.testing.assert_array_equal(tensor[0, :, :, 0], by_hand.astype(np.int8))

    interp.set_tensor(inp["index"], tensor)
    interp.invoke()
    raw = interp.get_tensor(out["index"])[0]
    expected = (raw.astype(np.int64) + 128) / 256.0
    np.testing.assert_array_equal(clf.probabilities(face), expected.astype(np.float32))


def test_float_classifier_passes_floats_through(tiny_tflite, face):
    clf = FaceClassifier(tiny_tflite["float"], ClassifierOptions(threads=1))
    tensor = clf.prepare(face)
    assert tensor.dtype == np.float32 and tensor.shape == (1, 48, 48, 1)
    gray48 = cv2.resize(face, (48, 48), interpolation=cv2.INTER_AREA)
    np.testing.assert_allclose(tensor[0, :, :, 0], gray48 / 255.0, atol=1e-6)
    probs = clf.probabilities(face)
    assert probs.dtype == np.float32 and probs.sum() == pytest.approx(1.0, abs=1e-5)
