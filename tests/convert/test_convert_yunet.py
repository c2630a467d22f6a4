"""The YuNet conversion (fer_edge.convert.yunet): ONNX in, a TFLite twin with OpenCV's outputs."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from fer_edge.bench.facevideo import compose_frames
from fer_edge.detect import default_yunet_model, default_yunet_onnx
from fer_edge.errors import FerEdgeError
from fer_edge.yunetlite import HEADS, STRIDES, LiteYuNet


def _raw_outputs(interp, image: np.ndarray) -> dict[str, np.ndarray]:
    index = interp.get_input_details()[0]["index"]
    interp.resize_tensor_input(index, (1, *image.shape))
    interp.allocate_tensors()
    interp.set_tensor(index, image[None].astype(np.float32))
    interp.invoke()
    by_shape = {tuple(d["shape"][1:]): d["index"] for d in interp.get_output_details()}
    height, width = image.shape[:2]
    return {
        f"{kind}_{stride}": interp.get_tensor(
            by_shape[(height // stride, width // stride, channels)]
        ).reshape(-1, channels)
        for kind, channels in HEADS.items()
        for stride in STRIDES
    }


def test_the_conversion_reproduces_opencvs_network_and_the_bundled_file(tmp_path, astronaut_face):
    from fer_edge.convert.yunet import main
    from fer_edge.runtime import load_runtime

    onnx = default_yunet_onnx()
    out = tmp_path / "yunet.tflite"
    assert main([str(onnx), str(out)]) == 0
    image = next(compose_frames([astronaut_face], frame_size=(320, 256), face_size=160)).image
    net = cv2.dnn.readNet(str(onnx))
    net.setInput(cv2.dnn.blobFromImage(image))
    names = net.getUnconnectedOutLayersNames()
    want = {n: o.reshape(-1, o.shape[-1]) for n, o in zip(names, net.forward(names), strict=True)}
    runtime = load_runtime()
    for model in (out, default_yunet_model()):
        got = _raw_outputs(runtime.interpreter(model_path=str(model)), image)
        for stride in STRIDES:
            score = np.concatenate([want[f"cls_{stride}"], want[f"obj_{stride}"]], axis=1)
            np.testing.assert_allclose(got[f"score_{stride}"], score, atol=1e-4)
            for kind in ("bbox", "kps"):
                np.testing.assert_allclose(
                    got[f"{kind}_{stride}"], want[f"{kind}_{stride}"], atol=1e-3
                )
    # The freshly converted file detects the face like the bundled one.
    boxes = [LiteYuNet(m, 0.6).detect(image)[1] for m in (out, default_yunet_model())]
    assert boxes[0] is not None and boxes[0].shape == boxes[1].shape == (1, 15)
    np.testing.assert_allclose(boxes[0], boxes[1], atol=1e-3)


def test_a_file_that_is_not_onnx_is_a_clear_error(tmp_path):
    from fer_edge.convert.yunet import main, yunet_keras

    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\x00not onnx" * 40)
    with pytest.raises(FerEdgeError, match="junk.onnx: OpenCV cannot read it"):
        yunet_keras(junk)
    assert main([str(junk), str(tmp_path / "out.tflite")]) == 1
    assert not (tmp_path / "out.tflite").exists()
