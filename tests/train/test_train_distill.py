"""``fer-edge train --teacher``: knowledge distillation from one model or an ensemble."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from fer_edge.cli import main
from fer_edge.errors import FerEdgeError
from fer_edge.synthetic import synthetic_images


def _student_args(root, out, *extra):
    return [
        "train",
        "--data",
        str(root),
        "--out",
        str(out),
        "--model",
        "edge",
        "--model-option",
        "width=0.5",
        "--batch-size",
        "16",
        "--lr",
        "3e-3",
        "--select-fraction",
        "0.15",
        "--no-augment",
        *extra,
    ]


def test_distillation_loss_by_hand():
    from fer_edge.tfcompat import tf_and_keras
    from fer_edge.train.distill import DistillOptions, distillation_objects

    tf, _ = tf_and_keras()
    labels = np.array([[0, 1, 0], [1, 0, 0]], np.float32)
    teacher = np.array([[0.2, 0.7, 0.1], [0.5, 0.3, 0.2]], np.float32)
    student = np.array([[0.1, 0.6, 0.3], [0.3, 0.5, 0.2]], np.float32)
    y_true = tf.constant(np.concatenate([labels, teacher], axis=1))
    for alpha, temp in ((0.5, 1.0), (0.3, 4.0), (1.0, 2.0), (0.0, 3.0)):
        objs = distillation_objects(DistillOptions(("t.keras",), alpha, temp), 3, 0.0)
        got = objs["distillation_loss"](y_true, tf.constant(student)).numpy()

        def soft(p, t=temp):
            z = np.exp(np.log(p) / t)
            return z / z.sum(axis=1, keepdims=True)

        ce = -(labels * np.log(student)).sum(axis=1)
        pt, ps = soft(teacher), soft(student)
        kl = (pt * np.log(pt / ps)).sum(axis=1)
        np.testing.assert_allclose(got, alpha * ce + (1 - alpha) * temp**2 * kl, rtol=1e-5)
        accuracy = objs["accuracy"](y_true, tf.constant(student)).numpy()
        np.testing.assert_array_equal(accuracy, [1.0, 0.0])  # on the labels, not the teacher


def test_an_ensemble_averages_its_teachers(tiny_tflite):
    from fer_edge.evaluate import model_probabilities
    from fer_edge.train.distill import DistillOptions, teacher_probabilities

    images, _ = synthetic_images(3)
    a = model_probabilities(tiny_tflite["float"], images, "flip")
    b = model_probabilities(tiny_tflite["int8"], images, "flip")
    both = (str(tiny_tflite["float"]), str(tiny_tflite["int8"]))
    got = teacher_probabilities(DistillOptions(both, tta="flip"), images)
    np.testing.assert_allclose(got, (a + b) / 2, atol=1e-6)
    np.testing.assert_allclose(got.sum(axis=1), 1.0, atol=0.02)  # int8 outputs: 1/256 steps
    # Flip TTA is the mean of the face and its mirror image.
    plain = model_probabilities(tiny_tflite["float"], images, "none")
    mirror = model_probabilities(tiny_tflite["float"], images[:, :, ::-1].copy(), "none")
    np.testing.assert_allclose(a, (plain + mirror) / 2, atol=1e-6)


def test_a_student_learns_from_the_teacher_alone(trained_run, tmp_path):
    """With --distill-alpha 0 the labels carry no weight: all the student knows is the teacher's."""
    teacher, options = trained_run
    root = options.data
    out = tmp_path / "student"
    args = _student_args(root, out, "--epochs", "6", "--teacher", str(teacher.model_path))
    # The generated classes are grating orientations, which a mirror image changes: no flips.
    res = CliRunner().invoke(main, [*args, "--distill-alpha", "0", "--teacher-tta", "none"])
    assert res.exit_code == 0, res.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["metrics"]["accuracy"] >= 0.8
    assert metrics["options"]["distill"]["alpha"] == 0.0
    assert metrics["options"]["distill"]["teachers"] == [str(teacher.model_path)]
    stored = np.load(out / "teacher.npz")
    assert stored["fit"].shape[1] == 7
    assert len(stored["select"]) == metrics["selection_metrics"]["count"]
    history = json.loads((out / "history.json").read_text())
    assert "val_accuracy" in history and len(history["loss"]) == 6


def test_a_distilled_run_resumes_without_asking_the_teacher_again(trained_run, tmp_path):
    from fer_edge.train.options import TrainOptions
    from fer_edge.train.runfolder import load_options_for_resume
    from fer_edge.train.trainer import train

    teacher, options = trained_run
    root = options.data
    out = tmp_path / "student"
    res = CliRunner().invoke(
        main, _student_args(root, out, "--epochs", "1", "--teacher", str(teacher.model_path))
    )
    assert res.exit_code == 0, res.output
    cache = (out / "teacher.npz").stat().st_mtime_ns
    saved = load_options_for_resume(out)
    assert saved.distill is not None and saved.distill.temperature == 4.0
    result = train(TrainOptions.from_dict({**saved.to_dict(), "epochs": 2}), resume=True, verbose=0)
    assert result.epochs_run == 2
    assert (out / "teacher.npz").stat().st_mtime_ns == cache
    assert len(json.loads((out / "history.json").read_text())["val_accuracy"]) == 2


def test_teacher_errors_are_one_line(trained_run, tiny_tflite, tmp_path):
    teacher, options = trained_run
    root = options.data
    teacher_path = str(teacher.model_path)
    cases = [
        (_student_args(root, tmp_path / "a", "--teacher", str(tmp_path / "nope.keras")), "nope"),
        (_student_args(root, tmp_path / "b", "--teacher", str(root)), "neither .keras"),
        (
            _student_args(root, tmp_path / "c", "--classes", "fer4", "--teacher", teacher_path),
            "predicts",
        ),
        (
            ["train", "--out", str(teacher.out), "--resume", "--teacher", str(tiny_tflite["int8"])],
            "--teacher starts a run",
        ),
    ]
    for args, message in cases:
        res = CliRunner().invoke(main, args)
        assert res.exit_code != 0, args
        assert message in res.output and "--teacher" in res.output, res.output
        assert "Traceback" not in res.output
    with pytest.raises(FerEdgeError, match="--distill-temperature"):
        from fer_edge.train.distill import DistillOptions

        DistillOptions(("t.keras",), temperature=0.0)
