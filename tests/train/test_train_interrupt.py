"""Interrupting and resuming `fer-edge train` (issue 16): nothing half-done counts as done.

A stop mid-epoch must leave the last *finished* epoch as the checkpoint, and ``--resume`` must
train the interrupted epoch again. The optimizer's step counter inside each checkpoint tells
how many batches really went into it, so the tests check it against the epochs recorded.
The stop is a real SIGTERM sent to this process at a chosen batch (Ctrl-C takes the same
path; test_train.py sends one to a subprocess).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
from pathlib import Path

import pytest
from click.testing import CliRunner

from fer_edge.cli import main
from fer_edge.synthetic import write_folder_dataset

INTERRUPT_EPOCH = 1  # zero-based: the signal lands in the second epoch
INTERRUPT_BATCH = 2
# 27 of the 30 faces per class are fitted (10% go to selection): 7 full batches of 27, so
# TensorFlow traces one batch shape, not two.
BATCH = 27


def _keras():
    from fer_edge.tfcompat import tf_and_keras

    return tf_and_keras()[1]


def _options(data: Path, out: Path, epochs: int):
    from fer_edge.train.inputs import NO_AUGMENT
    from fer_edge.train.options import TrainOptions

    return TrainOptions(
        data=str(data),
        out=str(out),
        model="edge",
        model_options={"width": 0.25},
        epochs=epochs,
        batch_size=BATCH,
        augment=NO_AUGMENT,
    )


def _interrupting_tensorboard(keras, batches: list[int]):
    """The trainer's TensorBoard callback, plus a SIGTERM at a chosen batch of a chosen epoch."""

    class Interrupting(keras.callbacks.TensorBoard):
        def on_epoch_begin(self, epoch, logs=None):
            super().on_epoch_begin(epoch, logs)
            self.epoch_now = epoch
            batches.append(0)

        def on_train_batch_end(self, batch, logs=None):
            super().on_train_batch_end(batch, logs)
            batches[-1] += 1
            if self.epoch_now == INTERRUPT_EPOCH and batch == INTERRUPT_BATCH:
                # The trainer's handler takes it. Without one, SIGTERM would end pytest
                # itself: Ctrl-C then stands in, and the exit-code check fails instead.
                handled = signal.getsignal(signal.SIGTERM) not in (signal.SIG_DFL, None)
                os.kill(os.getpid(), signal.SIGTERM if handled else signal.SIGINT)

    return Interrupting


def _iterations(path: Path) -> int:
    model = _keras().models.load_model(path, compile=True)
    return int(model.optimizer.iterations.numpy())


def _last_checkpoint(out: Path) -> Path:
    state = json.loads((out / "state.json").read_text())
    return out / "checkpoints" / state.get("last", "last.keras")


@pytest.fixture(scope="module")
def interrupted(tmp_path_factory):
    """`fer-edge train --epochs 3` stopped by SIGTERM at batch 3 of epoch 2.

    Returns ``(data, out, steps per epoch, CLI result)``.
    """
    root = tmp_path_factory.mktemp("interrupt")
    data = write_folder_dataset(root / "data", {"train": 30, "val": 6})
    out = root / "run"
    keras = _keras()
    batches: list[int] = []
    real = keras.callbacks.TensorBoard
    keras.callbacks.TensorBoard = _interrupting_tensorboard(keras, batches)
    args = [
        "train", "--data", str(data), "--out", str(out), "--model", "edge",
        "--model-option", "width=0.25", "--epochs", "3", "--batch-size", str(BATCH),
        "--no-augment",
    ]  # fmt: skip
    try:
        result = CliRunner().invoke(main, args)
    finally:
        keras.callbacks.TensorBoard = real
    steps = batches[0]
    assert steps > INTERRUPT_BATCH + 1 and batches[1] == INTERRUPT_BATCH + 1
    return data, out, steps, result


def test_sigterm_stops_like_ctrl_c(interrupted):
    *_, result = interrupted
    assert result.exit_code == 143, result.output
    assert "continue with: fer-edge train --out" in result.stderr
    assert result.stderr.strip().splitlines()[-1] == "interrupted"


def test_a_stop_mid_epoch_keeps_the_last_finished_epoch(interrupted):
    _, out, steps, _ = interrupted
    state = json.loads((out / "state.json").read_text())
    history = json.loads((out / "history.json").read_text())
    assert state["epoch"] == INTERRUPT_EPOCH
    assert all(len(values) == INTERRUPT_EPOCH for values in history.values())
    # The checkpoint holds exactly the finished epochs, not the batches of the cut one.
    assert _iterations(_last_checkpoint(out)) == INTERRUPT_EPOCH * steps


def test_a_stopped_runs_checkpoint_is_evaluated_as_it_is(interrupted, tmp_path):
    from fer_edge.modelmeta import read_meta

    data, out, _, _ = interrupted
    best = out / "checkpoints" / json.loads((out / "state.json").read_text())["best"]
    meta = read_meta(best)
    assert meta.name == "edge" and meta.extra["epoch"] == INTERRUPT_EPOCH
    assert len(meta.labels) == 7 and meta.extra["params"] > 0
    report = tmp_path / "eval.json"
    result = CliRunner().invoke(
        main, ["eval", str(best), "--data", str(data), "--json", str(report)]
    )
    assert result.exit_code == 0, result.output
    metrics = json.loads(report.read_text())
    assert metrics["count"] == 7 * 6 and 0.0 <= metrics["accuracy"] <= 1.0


def test_resume_trains_the_interrupted_epoch_again(interrupted, tmp_path, capsys):
    from fer_edge.train.trainer import train

    data, original, steps, _ = interrupted
    out = tmp_path / "run"
    shutil.copytree(original, out)
    result = train(_options(data, out, 3), resume=True, verbose=0)
    assert f"epochs {INTERRUPT_EPOCH + 1}-3" in capsys.readouterr().err
    assert result.epochs_run == 3
    history = json.loads((out / "history.json").read_text())
    assert all(len(values) == 3 for values in history.values())
    assert _iterations(_last_checkpoint(out)) == 3 * steps
    assert (out / "model.keras").is_file()


def _to_old_format(out: Path) -> None:
    """Rewrite a run folder as fer-edge wrote it before issue 16: checkpoints/last.keras and
    best.keras, and a state.json that names no checkpoint."""
    state = json.loads((out / "state.json").read_text())
    checkpoints = out / "checkpoints"
    for key, name in (("last", "last.keras"), ("best", "best.keras")):
        shutil.copyfile(checkpoints / state.pop(key), checkpoints / (name + ".tmp"))
    for path in checkpoints.glob("epoch-*.keras"):
        path.unlink()
    for name in ("last.keras", "best.keras"):
        (checkpoints / (name + ".tmp")).replace(checkpoints / name)
    (out / "state.json").write_text(json.dumps(state, indent=2) + "\n")


def _half_epoch_as_old_code_wrote_it(out: Path, steps: int) -> None:
    """Before issue 16 a stop in epoch 2 wrote epoch 2, with a checkpoint of part of it."""
    last = out / "checkpoints" / "last.keras"
    model = _keras().models.load_model(last, compile=True)
    model.optimizer.iterations.assign(steps + INTERRUPT_BATCH + 1)
    model.save(last)
    state = json.loads((out / "state.json").read_text())
    state["epoch"] = INTERRUPT_EPOCH + 1
    (out / "state.json").write_text(json.dumps(state))
    history = json.loads((out / "history.json").read_text())
    (out / "history.json").write_text(json.dumps({k: v + v[-1:] for k, v in history.items()}))


def test_old_state_files_are_read_and_a_recorded_half_epoch_is_found(interrupted, tmp_path,
                                                                     capsys):  # fmt: skip
    from fer_edge.train.runfolder import RunPaths, epochs_in, load_options_for_resume

    _, original, steps, _ = interrupted
    out = tmp_path / "run"
    shutil.copytree(original, out)
    _to_old_format(out)
    paths = RunPaths(out)
    assert load_options_for_resume(out).epochs == 3
    state = json.loads(paths.state.read_text())
    assert paths.checkpoint(state, "last") == paths.last
    assert paths.checkpoint(state, "best") == paths.best
    model = _keras().models.load_model(paths.last, compile=True)
    assert epochs_in(model, state["epoch"], steps) == INTERRUPT_EPOCH
    assert capsys.readouterr().err == ""

    _half_epoch_as_old_code_wrote_it(out, steps)
    state = json.loads(paths.state.read_text())
    model = _keras().models.load_model(paths.last, compile=True)
    assert epochs_in(model, state["epoch"], steps) == INTERRUPT_EPOCH
    assert f"epoch {INTERRUPT_EPOCH + 1} is trained again" in capsys.readouterr().err


@pytest.mark.slow
def test_resume_reads_a_state_written_before_issue_16(interrupted, tmp_path):
    from fer_edge.train.runfolder import load_options_for_resume
    from fer_edge.train.trainer import train

    data, original, steps, _ = interrupted
    out = tmp_path / "run"
    shutil.copytree(original, out)
    _to_old_format(out)
    assert load_options_for_resume(out).epochs == 3
    result = train(_options(data, out, 3), resume=True, verbose=0)
    assert result.epochs_run == 3
    assert _iterations(_last_checkpoint(out)) == 3 * steps
    assert all(len(v) == 3 for v in json.loads((out / "history.json").read_text()).values())


@pytest.mark.slow
def test_resume_repairs_a_half_epoch_recorded_as_finished_by_old_code(
    interrupted, tmp_path, capsys
):
    from fer_edge.train.trainer import train

    data, original, steps, _ = interrupted
    out = tmp_path / "run"
    shutil.copytree(original, out)
    _to_old_format(out)
    _half_epoch_as_old_code_wrote_it(out, steps)

    result = train(_options(data, out, 3), resume=True, verbose=0)
    err = capsys.readouterr().err
    assert f"epoch {INTERRUPT_EPOCH + 1} is trained again" in err, err
    assert result.epochs_run == 3
    assert all(len(v) == 3 for v in json.loads((out / "history.json").read_text()).values())
    # Epochs 2 and 3 trained in full on top of the partial checkpoint.
    assert _iterations(_last_checkpoint(out)) == 3 * steps + INTERRUPT_BATCH + 1


def test_out_naming_a_file_fails_before_the_data_loads(tmp_path, monkeypatch):
    import fer_edge.train.trainer as trainer

    def no_loading(*args, **kwargs):
        raise AssertionError("the data was loaded before --out was checked")

    monkeypatch.setattr(trainer, "load_dataset", no_loading)
    target = tmp_path / "notes.txt"
    target.write_text("not a run folder")
    data = write_folder_dataset(tmp_path / "data", 2)
    result = CliRunner().invoke(main, ["train", "--data", str(data), "--out", str(target)])
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert result.output.strip().splitlines()[-1].startswith("Error: --out:"), result.output
    assert target.read_text() == "not a run folder"
