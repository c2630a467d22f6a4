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


def test_the_int8_export_runs_in_litert_and_finds_the_float_models_face(
    tmp_path, fer2013_root, astronaut_face
):
    from fer_edge.convert.yunet import main
    from fer_edge.runtime import load_runtime

    out = tmp_path / "yunet_int8.tflite"
    train = fer2013_root / "train"
    args = ["--int8", str(train), "--calibration-frames", "24"]
    assert main([*args, str(default_yunet_onnx()), str(out)]) == 0
    interp = load_runtime().interpreter(model_path=str(out))
    # Float32 at the edges (what LiteYuNet feeds and decodes), int8 inside.
    edges = interp.get_input_details() + interp.get_output_details()
    assert {d["dtype"] for d in edges} == {np.float32}
    inner = [d["dtype"] for d in interp.get_tensor_details()]
    assert inner.count(np.int8) > len(inner) // 2
    image = next(compose_frames([astronaut_face], frame_size=(320, 256), face_size=160)).image
    found = [LiteYuNet(m, 0.6).detect(image)[1] for m in (out, default_yunet_model())]
    assert found[0] is not None and found[0].shape == found[1].shape == (1, 15)
    (x, y, w, h), (fx, fy, fw, fh) = found[0][0, :4], found[1][0, :4]
    inter = max(0, min(x + w, fx + fw) - max(x, fx)) * max(0, min(y + h, fy + fh) - max(y, fy))
    assert inter / (w * h + fw * fh - inter) > 0.9
    np.testing.assert_allclose(found[0][0, 4:14], found[1][0, 4:14], atol=6.0)


def test_calibration_frames_paste_small_images_and_scale_photos(tmp_path, astronaut_face):
    from fer_edge.convert.yunet import CALIBRATION_SIZES, calibration_frames, main

    cv2.imwrite(str(tmp_path / "face.png"), cv2.resize(astronaut_face, (48, 48)))
    cv2.imwrite(str(tmp_path / "photo.png"), cv2.resize(astronaut_face, (400, 300)))
    (tmp_path / "notes.txt").write_text("not an image")
    frames = calibration_frames(tmp_path, count=5)
    assert len(frames) == 2  # one frame per image, at most
    assert [f.shape[1::-1] for f in frames] == list(CALIBRATION_SIZES[:2])
    assert all(f.dtype == np.uint8 and f.shape[2] == 3 for f in frames)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FerEdgeError, match="holds no image"):
        calibration_frames(empty)
    with pytest.raises(FerEdgeError, match="at least 1"):
        calibration_frames(tmp_path, count=0)
    out = tmp_path / "out.tflite"
    assert main(["--int8", str(empty), str(default_yunet_onnx()), str(out)]) == 1
    assert not out.exists()
