"""Training under tf.distribute strategies and mixed precision (CPU only).

The mirrored and multi-worker tests run in subprocesses: logical CPU devices and the
multi-worker runtime must be configured before TensorFlow starts, which in the test process
has long happened.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from fer_edge.cli import main
from fer_edge.errors import FerEdgeError
from fer_edge.synthetic import write_folder_dataset

# The state.json options of a run started before --strategy and --precision existed.
OLD_OPTIONS = {
    "data": "../shared/data/fer2013",
    "out": "runs/edge15-e100",
    "model": "edge",
    "epochs": 100,
    "batch_size": 64,
    "learning_rate": 0.002,
    "schedule": "cosine",
    "patience": 0,
    "classes": None,
    "select_fraction": 0.1,
    "eval_split": "val",
    "class_weight": 0.0,
    "label_smoothing": 0.1,
    "augment": {
        "flip": True,
        "rotation": 10.0,
        "shift": 0.1,
        "zoom": 0.1,
        "brightness": 0.1,
        "contrast": 0.2,
        "erase": 0.25,
        "mixup": 0.0,
    },
    "model_options": {"width": 1.5},
    "weights": None,
    "seed": 0,
}

TINY = ["--model", "edge", "--model-option", "width=0.25", "--batch-size", "32", "--no-augment"]


def _has_bf16() -> bool:
    from fer_edge.train.precision import BF16_CPU_FLAGS, cpu_flags

    return bool(cpu_flags() & BF16_CPU_FLAGS)


needs_bf16 = pytest.mark.skipif(not _has_bf16(), reason="CPU without avx512_bf16 / amx_bf16")


def test_old_state_json_options_get_the_defaults():
    from fer_edge.train.options import TrainOptions

    options = TrainOptions.from_dict(OLD_OPTIONS)
    assert options.strategy == "auto" and options.precision == "float32"
    assert options.model_options == {"width": 1.5} and options.augment.erase == 0.25
    assert TrainOptions.from_dict(options.to_dict()) == options


def test_a_run_from_before_the_strategy_flags_resumes(tmp_path):
    from fer_edge.tfcompat import tf_and_keras
    from fer_edge.train.models import build_model
    from fer_edge.train.options import TrainOptions
    from fer_edge.train.runfolder import load_options_for_resume
    from fer_edge.train.trainer import train

    # A run folder as the previous release wrote it after epoch 1: a compiled checkpoint and
    # a state.json whose options have no strategy or precision.
    _, keras = tf_and_keras()
    data = write_folder_dataset(tmp_path / "data", {"train": 12, "val": 4})
    out = tmp_path / "run"
    (out / "checkpoints").mkdir(parents=True)
    model = build_model("edge", width=0.25)
    model.compile(keras.optimizers.Adam(1e-3), "categorical_crossentropy", metrics=["accuracy"])
    # One finished epoch, as a real checkpoint holds: 77 fit images at batch 32 are 3 steps
    # (resume counts finished epochs by optimizer steps and retrains a partial one).
    x, y = np.zeros((77, 48, 48, 1), np.float32), np.eye(7, dtype=np.float32)[np.arange(77) % 7]
    model.fit(x, y, batch_size=32, epochs=1, verbose=0)
    assert int(model.optimizer.iterations.numpy()) == 3
    for name in ("last", "best"):
        model.save(out / "checkpoints" / f"{name}.keras")
    options = {**OLD_OPTIONS, "data": str(data), "out": str(out), "epochs": 1}
    options.update(batch_size=32, model_options={"width": 0.25})
    state = {"options": options, "epoch": 1, "best_score": 0.1, "best_epoch": 1}
    (out / "state.json").write_text(json.dumps({**state, "wall_time_s": 9.0, "wall_before": 0.0}))
    old_history = {"loss": [2.0], "accuracy": [0.2], "val_loss": [1.9], "val_accuracy": [0.1]}
    (out / "history.json").write_text(json.dumps({**old_history, "lr": [1e-3]}))

    saved = load_options_for_resume(out)
    assert saved.strategy == "auto" and saved.precision == "float32"
    result = train(TrainOptions.from_dict({**saved.to_dict(), "epochs": 2}), resume=True, verbose=0)
    assert result is not None and result.epochs_run == 2
    history = json.loads((out / "history.json").read_text())
    assert len(history["loss"]) == 2
    # The resumed epoch's throughput is in the history (Keras prints it too).
    assert len(history["images_per_s"]) == 1 and history["images_per_s"][0] > 0
    assert (out / "model.keras").is_file() and (out / "metrics.json").is_file()


def test_strategies_on_this_machine():
    from fer_edge.tfcompat import tf_and_keras
    from fer_edge.train.distribute import make_distribution

    tf, _ = tf_and_keras()
    if tf.config.list_physical_devices("GPU"):
        pytest.skip("the test describes a CPU-only machine")
    auto = make_distribution("auto")
    assert (auto.name, auto.replicas, auto.chief) == ("one", 1, True)
    mirrored = make_distribution("mirrored")
    assert isinstance(mirrored.strategy, tf.distribute.MirroredStrategy)
    assert mirrored.replicas == len(tf.config.list_logical_devices("CPU"))
    mirrored.wait_for_all()  # a no-op outside multi-worker runs


@pytest.mark.parametrize(
    ("tf_config", "message"),
    [
        (None, "TF_CONFIG is not set"),
        ("{not json", "TF_CONFIG is not JSON"),
        ('{"cluster": {}, "task": {"type": "worker", "index": 0}}', "no cluster.worker list"),
        (
            '{"cluster": {"worker": ["127.0.0.1:1"]}, "task": {"type": "ps", "index": 0}}',
            "task.type must name a job",
        ),
        (
            '{"cluster": {"worker": ["127.0.0.1:1"]}, "task": {"type": "worker", "index": 3}}',
            "task.index 3 is not an index",
        ),
    ],
)
def test_multi_worker_needs_a_valid_tf_config(monkeypatch, tmp_path, tf_config, message):
    from fer_edge.train.distribute import make_distribution

    if tf_config is None:
        monkeypatch.delenv("TF_CONFIG", raising=False)
    else:
        monkeypatch.setenv("TF_CONFIG", tf_config)
    with pytest.raises(FerEdgeError, match=message):
        make_distribution("multi-worker")
    data = write_folder_dataset(tmp_path / "data", {"train": 2, "val": 1})
    res = CliRunner().invoke(
        main,
        ["train", "--data", str(data), "--out", str(tmp_path / "r"), "--strategy", "multi-worker"],
    )
    assert res.exit_code != 0 and message in res.output
    assert "Traceback" not in res.output
    assert not (tmp_path / "r").exists()


def test_precision_plans():
    from fer_edge.train.precision import plan_precision

    assert plan_precision("float32").policy == "float32"
    gpu = plan_precision("mixed", gpu=True)
    assert (gpu.policy, gpu.float32_layers, gpu.loss_scaling) == ("mixed_float16", (), True)
    cpu = plan_precision("mixed", gpu=False, flags=frozenset({"avx512f", "avx512_bf16"}))
    assert (cpu.policy, cpu.loss_scaling) == ("mixed_bfloat16", False)
    assert cpu.float32_layers == ("DepthwiseConv2D",)
    assert plan_precision("mixed", gpu=False, flags=frozenset({"amx_bf16"})) == cpu
    with pytest.raises(FerEdgeError, match="--precision mixed: this CPU has no native bfloat16"):
        plan_precision("mixed", gpu=False, flags=frozenset({"avx2", "avx512f"}))
    with pytest.raises(FerEdgeError, match="--precision: choose from float32, mixed"):
        plan_precision("half")


def test_mixed_precision_keeps_layers_and_weights_and_a_float32_softmax():
    from fer_edge.tfcompat import tf_and_keras
    from fer_edge.train.models import build_model
    from fer_edge.train.precision import (
        CPU_FLOAT32_LAYERS,
        PrecisionPlan,
        apply_precision,
        is_float32,
        to_float32,
    )

    tf, keras = tf_and_keras()
    model = build_model("edge", width=0.25)
    mixed = apply_precision(model, PrecisionPlan("mixed", "mixed_bfloat16", CPU_FLOAT32_LAYERS))
    assert [layer.name for layer in mixed.layers] == [layer.name for layer in model.layers]
    assert [type(layer) for layer in mixed.layers] == [type(layer) for layer in model.layers]
    policies = {layer.name: layer.dtype_policy.name for layer in mixed.layers}
    assert policies["s1b1_1_pw"] == policies["stem1_conv"] == policies["s1b1_1_pw_bn"]
    assert policies["s1b1_1_pw_bn"] == policies["s1b1_add"] == "mixed_bfloat16"
    assert policies["s1b1_1_dw"] == "float32"
    assert policies["probs"] == "float32" and mixed.output.dtype == tf.float32
    for a, b in zip(model.get_weights(), mixed.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert all(v.dtype == tf.float32 for v in mixed.weights)  # float32 master weights

    x = np.random.default_rng(0).random((8, 48, 48, 1), dtype=np.float32)
    back = to_float32(mixed)
    assert is_float32(back) and not is_float32(mixed) and to_float32(back) is back
    np.testing.assert_allclose(back.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)
    # bfloat16 convolutions change the outputs a little, not the function.
    np.testing.assert_allclose(mixed.predict(x, verbose=0), model.predict(x, verbose=0), atol=0.05)
    assert keras.mixed_precision.global_policy().name == "float32"


def test_convert_refuses_mixed_precision_and_multi_worker(tmp_path):
    model = tmp_path / "model.keras"
    model.write_bytes(b"not read: the flags are checked first")
    res = CliRunner().invoke(
        main, ["convert", str(model), "--data", str(tmp_path), "--precision", "mixed"]
    )
    assert res.exit_code != 0 and "Traceback" not in res.output
    assert "--precision mixed: pruning and quantisation-aware training run in float32" in (
        res.output
    )
    assert len(res.output.strip().splitlines()) == 1
    res = CliRunner().invoke(
        main, ["convert", str(model), "--data", str(tmp_path), "--strategy", "multi-worker"]
    )
    assert res.exit_code != 0 and "Traceback" not in res.output


@needs_bf16
def test_mixed_precision_trains_and_exports_float32_and_int8_tflite(tmp_path):
    from fer_edge.convert.conversion import convert
    from fer_edge.convert.export import to_tflite
    from fer_edge.convert.options import ConvertOptions
    from fer_edge.convert.source import load_source
    from fer_edge.convert.tflite_info import inspect_tflite
    from fer_edge.tfcompat import tf_and_keras
    from fer_edge.train.precision import is_float32

    _, keras = tf_and_keras()
    data = write_folder_dataset(tmp_path / "data", {"train": 12, "val": 4})
    out = tmp_path / "run"
    res = CliRunner().invoke(
        main,
        ["train", "--data", str(data), "--out", str(out), "--epochs", "1", "--precision", "mixed"]
        + TINY,
    )
    assert res.exit_code == 0, res.output
    checkpoint = keras.models.load_model(out / "checkpoints" / "last.keras")
    assert checkpoint.get_layer("s1b1_1_pw").dtype_policy.name == "mixed_bfloat16"
    assert checkpoint.get_layer("probs").dtype_policy.name == "float32"
    shipped = keras.models.load_model(out / "model.keras")
    assert {layer.dtype_policy.name for layer in shipped.layers} == {"float32"}
    assert json.loads((out / "state.json").read_text())["options"]["precision"] == "mixed"

    report = convert(
        ConvertOptions(model=out / "model.keras", data=data, ptq=("int8",), out=tmp_path / "conv")
    )
    by_method = {m.method: m for m in report.models}
    exported = by_method["float"]
    assert (exported.input_dtype, exported.output_dtype) == ("float32", "float32")
    float_info = inspect_tflite(exported.path.read_bytes())
    assert {dtype for _, dtype in float_info.tensors} <= {"float32", "int32"}
    int8 = by_method["ptq-int8"]
    assert (int8.input_dtype, int8.output_dtype) == ("int8", "int8")
    assert inspect_tflite(int8.path.read_bytes()).is_full_integer

    # The mixed checkpoint itself loads for conversion as float32.
    source = load_source(out / "checkpoints" / "last.keras", "fer7")
    assert is_float32(source.model)
    info = inspect_tflite(to_tflite(source.model))
    assert (info.input_dtype, info.output_dtype) == ("float32", "float32")
    assert {dtype for _, dtype in info.tensors} <= {"float32", "int32"}


# --- subprocess runs: two logical CPUs (mirrored), two workers on 127.0.0.1 (multi-worker) ---

MIRRORED_SCRIPT = textwrap.dedent(
    """
    import dataclasses, sys
    from fer_edge.tfcompat import tf_and_keras

    tf, _ = tf_and_keras()
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from fer_edge.cli import main
    from fer_edge.train.runfolder import load_options_for_resume
    from fer_edge.train.trainer import train

    data, out, conv = sys.argv[1:4]
    tiny = sys.argv[4:]
    main(["train", "--data", data, "--out", out, "--epochs", "1", "--strategy", "mirrored", *tiny],
         standalone_mode=False)
    options = load_options_for_resume(out)
    assert options.strategy == "mirrored"
    train(dataclasses.replace(options, epochs=2), resume=True, verbose=2)
    main(["convert", f"{out}/model.keras", "--data", data, "--out", conv, "--int8", "--epochs",
          "1", "--strategy", "mirrored"], standalone_mode=False)
    """
)

RESUME_SCRIPT = textwrap.dedent(
    """
    import dataclasses, sys
    from fer_edge.train.runfolder import load_options_for_resume
    from fer_edge.train.trainer import train

    out = sys.argv[1]
    options = load_options_for_resume(out)
    train(dataclasses.replace(options, out=out, epochs=int(sys.argv[2])), resume=True, verbose=2)
    """
)

#: Upper bound for one subprocess phase (TF start-up and tracing dominate on 2 busy cores).
PHASE_TIMEOUT_S = 900


def _env(**extra: str) -> dict[str, str]:
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **extra}


def _run_all(procs: list[subprocess.Popen]) -> list[tuple[int, str, str]]:
    deadline = time.monotonic() + PHASE_TIMEOUT_S
    results = []
    try:
        for proc in procs:
            out, err = proc.communicate(timeout=max(1.0, deadline - time.monotonic()))
            results.append((proc.returncode, out, err))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    return results


@pytest.mark.slow
def test_mirrored_over_two_cpus_trains_resumes_and_converts_to_int8(tmp_path):
    from fer_edge.convert.tflite_info import inspect_tflite
    from fer_edge.modelmeta import read_meta

    data = write_folder_dataset(tmp_path / "data", {"train": 12, "val": 4})
    out, conv = tmp_path / "run", tmp_path / "conv"
    cmd = [sys.executable, "-c", MIRRORED_SCRIPT, str(data), str(out), str(conv), *TINY]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env()
    )
    [(code, stdout, stderr)] = _run_all([proc])
    assert code == 0, stderr[-3000:]
    assert stderr.count("mirrored: 2 replica(s)") == 2  # the first session and the resumed one
    history = json.loads((out / "history.json").read_text())
    assert len(history["loss"]) == 2
    assert json.loads((out / "state.json").read_text())["epoch"] == 2
    assert (out / "checkpoints" / "last.keras").is_file()
    assert read_meta(out / "model.keras").name == "edge"
    info = inspect_tflite((conv / "edge_qat_int8.tflite").read_bytes())
    assert info.is_full_integer
    assert json.loads((conv / "edge_qat_int8.json").read_text())["method"] == "qat-int8"


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _snapshot(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.mark.slow
def test_multi_worker_on_two_local_processes(tmp_path):
    """Two workers train together; only worker 0 (the chief) writes, in both sessions."""
    data = write_folder_dataset(tmp_path / "data", {"train": 12, "val": 4})
    workers = [f"127.0.0.1:{port}" for port in _free_ports(2)]
    outs = [tmp_path / "chief" / "run", tmp_path / "worker1" / "run"]
    temps = [tmp_path / "chief" / "tmp", tmp_path / "worker1" / "tmp"]

    def start(index: int, args: list[str]) -> subprocess.Popen:
        temps[index].mkdir(parents=True, exist_ok=True)
        config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
        env = _env(TF_CONFIG=json.dumps(config), TMPDIR=str(temps[index]))
        return subprocess.Popen(
            [sys.executable, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )

    train_args = ["-m", "fer_edge", "train", "--data", str(data), "--epochs", "1"]
    train_args += ["--strategy", "multi-worker", *TINY]
    results = _run_all([start(i, [*train_args, "--out", str(outs[i])]) for i in range(2)])
    for code, _, err in results:
        assert code == 0, err[-3000:]
    assert "worker 0 (chief)" in results[0][2] and "multi-worker: 2 replica(s)" in results[0][2]
    assert "this worker is done" in results[1][1]
    chief = outs[0]
    for name in ("model.keras", "metrics.json", "history.json", "checkpoints/best.keras"):
        assert (chief / name).is_file(), name
    assert not outs[1].exists(), "the worker wrote a run folder"
    assert not [p for t in temps for p in t.iterdir()], "temporary checkpoints left behind"
    assert not list(chief.rglob("*.tmp*"))

    # Resume under multi-worker: each worker reads the run from its --out (a copy here, as on a
    # machine without a shared filesystem); the worker's copy must stay as it was.
    shutil.copytree(chief, outs[1])
    before = _snapshot(outs[1])
    resumed = _run_all([start(i, ["-c", RESUME_SCRIPT, str(outs[i]), "2"]) for i in range(2)])
    for code, _, err in resumed:
        assert code == 0, err[-3000:]
    assert _snapshot(outs[1]) == before
    history = json.loads((chief / "history.json").read_text())
    assert len(history["loss"]) == 2
    assert json.loads((chief / "metrics.json").read_text())["epochs_run"] == 2
    assert not [p for t in temps for p in t.iterdir()]
