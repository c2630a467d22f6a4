"""Model metadata, runtime choice and the shared classifier, on real TFLite models."""

import json
import subprocess
import sys

import numpy as np
import pytest

from fer_edge.classifier import ClassifierOptions, FaceClassifier
from fer_edge.errors import FerEdgeError
from fer_edge.labels import FER2013_CLASSES
from fer_edge.modelmeta import ModelMeta, embed_in_tflite, read_meta, sidecar_path, strip_meta
from fer_edge.runtime import load_runtime
from fer_edge.synthetic import synthetic_images


def test_metadata_round_trip_inside_tflite(tiny_tflite):
    meta = read_meta(tiny_tflite["int8"])
    assert meta.labels == FER2013_CLASSES
    assert (meta.input.height, meta.input.width, meta.input.channels) == (48, 48, 1)
    assert meta.name == "tiny"


def test_sidecar_fallback_and_missing_metadata(tmp_path, tiny_tflite):
    raw = tiny_tflite["float"].read_bytes()
    bare = tmp_path / "bare.tflite"
    bare.write_bytes(strip_meta(raw))
    assert strip_meta(bare.read_bytes()) == bare.read_bytes()
    assert len(bare.read_bytes()) < len(raw)
    with pytest.raises(FerEdgeError, match="no fer-edge metadata"):
        read_meta(bare)
    meta = ModelMeta(("happy", "sad"), name="card")
    sidecar_path(bare).write_text(json.dumps({"meta": meta.to_dict()}))
    assert read_meta(bare).labels == ("happy", "sad")


def test_embedding_keeps_the_model_loadable(tiny_tflite):
    rt = load_runtime()
    content = tiny_tflite["float"].read_bytes()
    again = embed_in_tflite(content, ModelMeta(FER2013_CLASSES))  # a second archive is harmless
    interp = rt.interpreter(model_content=again)
    assert tuple(interp.get_input_details()[0]["shape"]) == (1, 48, 48, 1)


def test_auto_runtime_prefers_litert():
    assert load_runtime().name == "litert"


@pytest.mark.parametrize(
    ("blocked", "expected"),
    [("['ai_edge_litert']", "tf"), ("['ai_edge_litert', 'tflite_runtime']", "tf")],
)
def test_runtime_falls_back_in_order(blocked, expected):
    code = (
        "import sys\n"
        f"for m in {blocked}: sys.modules[m] = None\n"
        "from fer_edge.runtime import load_runtime\n"
        "print(load_runtime().name)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == expected


def test_no_runtime_names_the_fix():
    code = (
        "import sys\n"
        "for m in ['ai_edge_litert', 'tflite_runtime', 'tensorflow']: sys.modules[m] = None\n"
        "from fer_edge.runtime import load_runtime\n"
        "load_runtime()\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode != 0
    assert "pip install ai-edge-litert" in out.stderr


# ai_edge_litert 2.3 raises from Delegate.__del__ after a failed load: its bug, not ours.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_unknown_runtime_and_missing_edgetpu(tiny_tflite):
    with pytest.raises(FerEdgeError, match="--runtime"):
        load_runtime("onnx")
    with pytest.raises(FerEdgeError, match="libedgetpu.so.1"):
        FaceClassifier(tiny_tflite["int8"], ClassifierOptions(delegate="edgetpu"))


def test_float_and_int8_share_one_classifier(tiny_tflite):
    f32 = FaceClassifier(tiny_tflite["float"], ClassifierOptions(threads=1))
    i8 = FaceClassifier(tiny_tflite["int8"], ClassifierOptions(threads=1))
    assert not f32.is_quantized and f32.input_dtype == np.float32
    assert i8.is_quantized and i8.input_dtype == np.int8
    images, _ = synthetic_images(5)
    pf = f32.probabilities_batch(images)
    pq = i8.probabilities_batch(images)
    assert pf.shape == pq.shape == (35, 7)
    np.testing.assert_allclose(pf.sum(axis=1), 1.0, atol=1e-4)
    # int8 probabilities are within a few quantisation steps of float ones.
    assert np.max(np.abs(pf - pq)) < 0.05
    pred = i8.classify(np.dstack([images[0]] * 3))  # BGR crop of another size path
    assert pred.label in FER2013_CLASSES and pred.score == pytest.approx(pred.probs.max())
    assert set(pred.scores()) == set(FER2013_CLASSES)


def test_classifier_rejects_non_tflite_and_mismatched_meta(tmp_path, tiny_tflite):
    junk = tmp_path / "junk.tflite"
    junk.write_bytes(b"not a model" * 100)
    sidecar_path(junk).write_text(json.dumps({"meta": ModelMeta(FER2013_CLASSES).to_dict()}))
    with pytest.raises(FerEdgeError, match="not a usable TFLite model"):
        FaceClassifier(junk)
    with pytest.raises(FerEdgeError, match="not a .tflite file"):
        FaceClassifier(tmp_path / "model.keras")
    raw = tiny_tflite["float"].read_bytes()
    wrong = tmp_path / "wrong.tflite"
    wrong.write_bytes(embed_in_tflite(strip_meta(raw), ModelMeta(("a", "b"))))
    with pytest.raises(FerEdgeError, match="7 outputs but 2 labels"):
        FaceClassifier(wrong)


def test_tflite_runtime_under_numpy_2_is_refused_with_the_fix(tmp_path):
    # A stand-in tflite_runtime package: the real one cannot be installed beside numpy 2.
    pkg = tmp_path / "tflite_runtime"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "interpreter.py").write_text("Interpreter = object\nload_delegate = print\n")
    code = (
        f"import sys; sys.path.insert(0, {str(tmp_path)!r})\n"
        "from fer_edge.runtime import load_runtime\n"
        "load_runtime('tflite_runtime')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode != 0
    assert "tflite-runtime needs numpy<2" in out.stderr
    assert "pip install tflite-runtime 'numpy<2'" in out.stderr
