"""Test-time augmentation (``--tta flip``) in the classifier, eval, bench and run."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

from fer_edge.classifier import ClassifierOptions, FaceClassifier
from fer_edge.cli import main
from fer_edge.synthetic import synthetic_images


@pytest.mark.parametrize("kind", ["float", "int8"])
def test_flip_averages_the_face_and_its_mirror(tiny_tflite, kind):
    plain = FaceClassifier(tiny_tflite[kind], ClassifierOptions(tta="none"))
    flip = FaceClassifier(tiny_tflite[kind], ClassifierOptions(tta="flip"))
    assert (plain.tta, flip.tta) == ("none", "flip")
    images, _ = synthetic_images(2)
    for face in images:
        expected = (plain.probabilities(face) + plain.probabilities(face[:, ::-1].copy())) / 2
        np.testing.assert_allclose(flip.probabilities(face), expected, atol=1e-6)


def test_the_model_card_default_and_bad_modes(tiny_tflite, tmp_path):
    from fer_edge.errors import FerEdgeError
    from fer_edge.modelmeta import ModelMeta, embed_in_tflite, read_meta, strip_meta

    meta = read_meta(tiny_tflite["int8"])
    recommended = tmp_path / "flip_default.tflite"
    with_tta = ModelMeta(meta.labels, meta.input, meta.name, {**meta.extra, "tta": "flip"})
    recommended.write_bytes(embed_in_tflite(strip_meta(tiny_tflite["int8"].read_bytes()), with_tta))
    assert FaceClassifier(recommended).tta == "flip"
    assert FaceClassifier(recommended, ClassifierOptions(tta="none")).tta == "none"
    assert FaceClassifier(tiny_tflite["int8"]).tta == "none"
    with pytest.raises(FerEdgeError, match=r"--tta: unknown mode 'rot'"):
        FaceClassifier(tiny_tflite["int8"], ClassifierOptions(tta="rot"))


def test_bench_adds_a_flip_row_per_model_with_gain_and_cost(tiny_tflite, tiny_dataset):
    from fer_edge.bench.config import BenchConfig
    from fer_edge.bench.measure import BenchOptions, bench
    from fer_edge.evaluate import evaluate_model

    config = BenchConfig(warmup=1, repeats=6, rounds=2, threads=(1,), tta=("none", "flip"))
    report = bench(BenchOptions(models=(tiny_tflite["int8"],), data=(tiny_dataset,), config=config))
    rows = {r.model: r for r in report.rows}
    assert set(rows) == {"tiny_int8", "tiny_int8+flip"}
    flip = rows["tiny_int8+flip"]
    assert flip.vs_float is not None and flip.vs_float.float_model == "tiny_int8"
    expected = evaluate_model(tiny_tflite["int8"], tiny_dataset, "val", tta="flip").accuracy
    assert flip.accuracy == pytest.approx(expected)
    assert flip.vs_float.accuracy_delta == pytest.approx(expected - rows["tiny_int8"].accuracy)


def test_cli_flags_take_tta_and_reject_bad_modes(tiny_tflite, tiny_dataset):
    runner = CliRunner()
    ok = runner.invoke(
        main, ["eval", str(tiny_tflite["int8"]), "--data", str(tiny_dataset), "--tta", "flip"]
    )
    assert ok.exit_code == 0, ok.output
    assert "accuracy" in ok.output
    for args in (
        ["eval", str(tiny_tflite["int8"]), "--data", str(tiny_dataset), "--tta", "rot"],
        ["run", "-m", str(tiny_tflite["int8"]), "--source", "x.jpg", "--tta", "rot"],
        ["bench", str(tiny_tflite["int8"]), "--tta", "none,rot", "--no-progress"],
    ):
        result = runner.invoke(main, args)
        assert result.exit_code != 0
        assert "--tta" in result.output and "Traceback" not in result.output
