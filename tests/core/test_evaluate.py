"""The one evaluation path: a model with labels out of canonical order scores the same in
``fer-edge eval``, ``fer-edge convert`` and ``fer-edge bench``, and matches a hand count."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fer_edge.classifier import FaceClassifier
from fer_edge.data import load_dataset
from fer_edge.labels import FER2013_CLASSES
from fer_edge.modelmeta import ModelMeta

#: A label order unlike the canonical one (reversed, happy first).
SHUFFLED = ("happy", "neutral", "surprise", "sad", "fear", "disgust", "angry")


@pytest.fixture(scope="module")
def shuffled_model(tiny_dataset, tmp_path_factory) -> Path:
    """A tiny CNN trained on the gratings with its outputs in SHUFFLED order."""
    from fer_edge.convert.tiny import build_tiny_cnn, export_pair, fit_tiny

    train = load_dataset(tiny_dataset, splits=("train",)).split("train")
    to_shuffled = np.array([SHUFFLED.index(c) for c in FER2013_CLASSES])
    model = build_tiny_cnn((8, 16), padding="same")
    fit_tiny(model, train.images, to_shuffled[train.labels], epochs=15, learning_rate=1e-2)
    out = tmp_path_factory.mktemp("shuffled")
    return export_pair(model, out, "shuffled", train.images, ModelMeta(SHUFFLED, name="s"))["int8"]


def _hand_count(model: Path, data: Path) -> float:
    """Accuracy counted by class name, independent of any label bookkeeping."""
    classifier = FaceClassifier(model)
    val = load_dataset(data, splits=("val",))
    part = val.split("val")
    probs = classifier.probabilities_batch(part.images)
    predicted = [classifier.labels[i] for i in np.argmax(probs, axis=1)]
    truth = [val.classes[i] for i in part.labels]
    return float(np.mean([p == t for p, t in zip(predicted, truth, strict=True)]))


def test_shuffled_labels_score_the_same_through_eval_convert_and_bench(
    shuffled_model, tiny_dataset
):
    from fer_edge.bench.measure import BenchOptions, bench
    from fer_edge.convert.dataset import load_for_model
    from fer_edge.evaluate import eval_set_of, evaluate, evaluate_model
    from fer_edge.modelmeta import read_meta

    expected = _hand_count(shuffled_model, tiny_dataset)
    # A trained model: well above the 1/7 a label mix-up would leave.
    assert expected >= 0.6

    by_eval = evaluate_model(shuffled_model, tiny_dataset, "val").accuracy

    meta = read_meta(shuffled_model)
    dataset = load_for_model(tiny_dataset, meta, classes=None, model_path=shuffled_model)
    val = eval_set_of(dataset.split("val"), dataset.classes)
    by_convert = evaluate(FaceClassifier(shuffled_model), val).accuracy

    report = bench(BenchOptions(models=(shuffled_model,), data=(tiny_dataset,)))
    by_bench = report.evaluations[0].metrics.accuracy

    assert by_eval == pytest.approx(expected)
    assert by_convert == pytest.approx(expected)
    assert by_bench == pytest.approx(expected)


def test_eval_cli_prints_the_same_accuracy(shuffled_model, tiny_dataset):
    from click.testing import CliRunner

    from fer_edge.cli import main

    expected = _hand_count(shuffled_model, tiny_dataset)
    result = CliRunner().invoke(main, ["eval", str(shuffled_model), "--data", str(tiny_dataset)])
    assert result.exit_code == 0, result.output
    assert f"accuracy {expected:.2%}" in result.output
