"""Training: registry models, a real (short) training run, reports, resume, eval."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from fer_edge.cli import main
from fer_edge.errors import FerEdgeError
from fer_edge.modelmeta import read_meta
from fer_edge.synthetic import write_folder_dataset

FAST_FAMILIES = [
    "mlp",
    "cnn-basic",
    "cnn-4stage",
    "cnn-deep",
    "resnet",
    "edge",
    "vgg16",
    "resnet50",
]


def _fit_one_step(model, channels):
    from fer_edge.tfcompat import tf_and_keras

    _, keras = tf_and_keras()
    model.compile(keras.optimizers.Adam(1e-3), "categorical_crossentropy")
    x = np.random.default_rng(0).random((4, 48, 48, channels), dtype=np.float32)
    history = model.fit(x, np.eye(7, dtype=np.float32)[[0, 1, 2, 3]], epochs=1, verbose=0)
    return history.history["loss"][0]


@pytest.mark.parametrize("name", FAST_FAMILIES)
def test_registry_model_builds_fits_and_survives_qat(name):
    from fer_edge.convert.qat import qat_model
    from fer_edge.train.models import REGISTRY, build_model, count_macs

    family = REGISTRY[name]
    model = build_model(name, (48, 48, family.channels), 7)
    assert model.output_shape == (None, 7)
    assert count_macs(model) > 0
    assert np.isfinite(_fit_one_step(model, family.channels))
    qat = qat_model(model)
    assert any("quant" in layer.name for layer in qat.layers)
    assert np.isfinite(_fit_one_step(qat, family.channels))


@pytest.mark.slow
def test_efficientnet_survives_qat():
    from fer_edge.convert.qat import qat_model
    from fer_edge.train.models import build_model

    model = build_model("efficientnetb0", (48, 48, 3), 7)
    # Rescaling/Normalization were removed (not quantisable); preprocessing owns scaling.
    assert not any(type(layer).__name__ in {"Rescaling", "Normalization"} for layer in model.layers)
    assert np.isfinite(_fit_one_step(qat_model(model), 3))


def test_mac_count_by_hand():
    from fer_edge.tfcompat import tf_and_keras
    from fer_edge.train.models import count_macs

    _, keras = tf_and_keras()
    inputs = keras.Input((48, 48, 1))
    x = keras.layers.Conv2D(8, 3, padding="same")(inputs)  # 48*48*9*1*8 = 165888
    x = keras.layers.DepthwiseConv2D(3, strides=2, padding="same")(x)  # 24*24*9*8 = 41472
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(7)(x)  # 8*7 = 56
    assert count_macs(keras.Model(inputs, outputs)) == 165888 + 41472 + 56


def test_edge_fits_the_pi_budget():
    from fer_edge.train.models import build_model, count_macs

    assert count_macs(build_model("edge")) <= 50_000_000


def test_unknown_model_is_a_clear_error():
    from fer_edge.train.models import build_model

    with pytest.raises(FerEdgeError, match="--model: unknown model 'vgg99'; choose from mlp"):
        build_model("vgg99")


def test_short_training_reaches_a_real_accuracy_floor(trained_run):
    result, _ = trained_run
    # 7 oriented-grating classes: chance is 14%.
    assert result.metrics is not None and result.metrics.accuracy >= 0.8
    assert result.select_metrics.accuracy >= 0.8
    assert 1 <= result.best_epoch <= result.epochs_run == 6


def test_sgd_nesterov_with_weight_decay_learns_and_is_kept_in_the_checkpoint(tmp_path):
    from fer_edge.tfcompat import tf_and_keras
    from fer_edge.train.inputs import AugmentOptions
    from fer_edge.train.options import TrainOptions
    from fer_edge.train.trainer import train

    root = write_folder_dataset(tmp_path / "data", {"train": 120, "val": 20})
    options = TrainOptions(
        data=str(root),
        out=str(tmp_path / "sgd"),
        model="edge",
        model_options={"width": 0.5},
        epochs=6,
        batch_size=16,
        learning_rate=0.05,
        schedule="plateau",
        select_fraction=0.15,
        augment=AugmentOptions(flip=False, rotation=0, shift=0.05, zoom=0.05),
        optimizer="sgd",
        weight_decay=1e-4,
    )
    result = train(options, verbose=0)
    # 7 oriented-grating classes: chance is 14%.
    assert result.metrics is not None and result.metrics.accuracy >= 0.8
    _, keras = tf_and_keras()
    last = keras.models.load_model(result.out / "checkpoints" / "last.keras")
    config = last.optimizer.get_config()
    assert config["name"] == "SGD" and config["nesterov"] and config["momentum"] == 0.9
    assert config["weight_decay"] == pytest.approx(1e-4)
    state = json.loads((result.out / "state.json").read_text())
    assert state["options"]["optimizer"] == "sgd"


def test_run_folder_holds_reports_that_agree(trained_run):
    result, options = trained_run
    out = result.out
    for name in (
        "model.keras",
        "history.json",
        "metrics.json",
        "class_distribution.png",
        "training_curves.png",
        "confusion_matrix.png",
        "checkpoints/best.keras",
        "checkpoints/last.keras",
    ):
        assert (out / name).is_file(), name
    assert any((out / "logs").rglob("*tfevents*"))
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["metrics"]["accuracy"] == pytest.approx(result.metrics.accuracy)
    assert metrics["params"] == result.params and metrics["macs"] == result.macs
    assert set(metrics["metrics"]["per_class"]) == set(read_meta(out / "model.keras").labels)
    confusion_png = json.loads(Image.open(out / "confusion_matrix.png").text["fer_edge"])
    assert confusion_png["confusion"] == metrics["metrics"]["confusion"]
    history = json.loads((out / "history.json").read_text())
    curves_png = json.loads(Image.open(out / "training_curves.png").text["fer_edge"])
    assert curves_png["val_accuracy"] == pytest.approx(history["val_accuracy"])
    assert len(history["loss"]) == 6
    dist_png = json.loads(Image.open(out / "class_distribution.png").text["fer_edge"])
    assert dist_png["val"] == metrics["data"]["counts"]["val"]
    assert not list(out.rglob("*.tmp*")), "no temporary files left behind"


def test_eval_command_matches_metrics_json(trained_run):
    result, options = trained_run
    res = CliRunner().invoke(
        main, ["eval", str(result.model_path), "--data", options.data, "--split", "val"]
    )
    assert res.exit_code == 0, res.output
    accuracy = json.loads((result.out / "metrics.json").read_text())["metrics"]["accuracy"]
    assert f"accuracy {accuracy:.2%}" in res.output
    assert "confusion (rows true, columns predicted):" in res.output


def test_existing_run_needs_resume(trained_run):
    result, options = trained_run
    res = CliRunner().invoke(main, ["train", "--data", options.data, "--out", str(result.out)])
    assert res.exit_code != 0
    assert "already holds a run; pass --resume" in res.output
    assert "Traceback" not in res.output


def test_bad_train_flags_are_one_line_errors(tmp_path):
    res = CliRunner().invoke(
        main, ["train", "--data", str(tmp_path / "nope"), "--out", str(tmp_path / "r")]
    )
    assert res.exit_code != 0 and "does not exist" in res.output
    res = CliRunner().invoke(
        main, ["train", "--data", str(tmp_path), "--model", "nope", "--out", str(tmp_path / "r")]
    )
    assert res.exit_code != 0 and "--model: unknown model 'nope'" in res.output
    res = CliRunner().invoke(
        main, ["train", "--data", str(tmp_path), "--no-augment", "--shift", "0.2", "--out", "r"]
    )
    assert res.exit_code != 0 and "--shift: does not apply with --no-augment" in res.output


def test_interrupt_then_resume_continues_from_the_saved_epoch(tmp_path):
    data = write_folder_dataset(tmp_path / "data", {"train": 30, "val": 6})
    out = tmp_path / "run"
    cmd = [
        sys.executable,
        "-m",
        "fer_edge",
        "train",
        "--data",
        str(data),
        "--out",
        str(out),
        "--model",
        "edge",
        "--model-option",
        "width=0.25",
        "--epochs",
        "40",
        "--batch-size",
        "32",
        "--no-augment",
    ]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    state = out / "state.json"
    deadline = time.time() + 600
    while time.time() < deadline and proc.poll() is None:
        if state.exists() and json.loads(state.read_text())["epoch"] >= 1:
            break
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, err[-2000:]
    assert "continue with: fer-edge train --out" in err
    assert "Traceback" not in err
    done = json.loads(state.read_text())["epoch"]
    assert 1 <= done < 40
    history = json.loads((out / "history.json").read_text())
    assert len(history["loss"]) == done

    from fer_edge.train.options import TrainOptions
    from fer_edge.train.runfolder import load_options_for_resume
    from fer_edge.train.trainer import train

    saved = load_options_for_resume(out)
    # Resume the same run, shortened so the test stays quick: epochs done+2.
    options = TrainOptions.from_dict({**saved.to_dict(), "epochs": done + 2})
    result = train(options, resume=True, verbose=0)
    history = json.loads((out / "history.json").read_text())
    assert result.epochs_run == done + 2
    assert len(history["loss"]) == done + 2
    assert json.loads(state.read_text())["epoch"] == done + 2
    # The cosine schedule was re-planned for the new total: it ends decayed (to 1% of the
    # peak), not a tenth of the way down the 40-epoch curve.
    assert history["lr"][-1] < 0.05 * history["lr"][0]
