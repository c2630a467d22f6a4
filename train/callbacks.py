"""The trainer's Keras callbacks: per-epoch checkpoints, images/s, and a graceful Ctrl-C."""

from __future__ import annotations

import contextlib
import dataclasses
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fer_edge.atomic import atomic_path
from fer_edge.modelmeta import ModelMeta, add_to_zip_model
from fer_edge.signals import StopRequest, stop_on_signals
from fer_edge.train.runfolder import RunPaths, RunState, link_or_copy


def checkpoint_callback(
    keras: Any, paths: RunPaths, state: RunState, meta: ModelMeta, chief: bool = True
) -> Any:
    """Return the callback that saves each finished epoch and updates and writes ``state``.

    Args:
        keras: the ``tf_keras`` module.
        paths: the run folder.
        state: the run state, changed in place after every finished epoch.
        meta: the metadata each checkpoint carries (plus its ``epoch``).
        chief: whether this worker writes the run folder (the others save to a scratch folder).
    """

    def save(model: Any, path: Path, epoch: int) -> None:
        if chief:
            with atomic_path(path) as tmp:
                model.save(tmp)
                # So that a stopped run's checkpoints can be evaluated and converted as they are.
                add_to_zip_model(
                    tmp, dataclasses.replace(meta, extra={**meta.extra, "epoch": epoch})
                )
            return
        # Every worker must save (reading mirrored batch-norm statistics is a collective op),
        # but only the chief's copy is kept: the others go to a private temporary folder.
        with tempfile.TemporaryDirectory(prefix="fer-edge-worker-") as scratch:
            model.save(Path(scratch) / path.name)

    class Checkpoint(keras.callbacks.Callback):
        """Save each finished epoch, the history and the resume state (see :class:`RunPaths`)."""

        batches = 0

        def on_epoch_begin(self, epoch: int, logs: dict[str, float] | None = None) -> None:
            self.batches = 0

        def on_train_batch_end(self, batch: int, logs: dict[str, float] | None = None) -> None:
            self.batches = batch + 1

        def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
            steps = self.params.get("steps")
            if steps and self.batches < steps:
                # Keras ends an epoch cut short by Ctrl-C like a finished one. It is not:
                # keep the last finished epoch, and --resume trains this one again.
                return
            logs = dict(logs or {})
            logs["lr"] = float(keras.backend.get_value(self.model.optimizer.learning_rate))
            state.add_to_history(logs)
            name = f"epoch-{epoch + 1:04d}.keras"
            save(self.model, paths.checkpoints / name, epoch + 1)
            improved = state.record_epoch(epoch + 1, float(logs.get("val_accuracy", 0.0)), name)
            if not chief:
                return
            state.save(paths)
            link_or_copy(paths.checkpoints / name, paths.last)
            if improved:
                link_or_copy(paths.checkpoints / name, paths.best)
            keep = {state.last, state.best}
            for old in paths.checkpoints.glob("epoch-*.keras"):
                if old.name not in keep:
                    old.unlink(missing_ok=True)

    return Checkpoint()


def throughput_callback(keras: Any, images_per_epoch: int) -> Any:
    """Return a callback that adds the epoch's training images/s to its logs (``images_per_s``).

    Keras prints it with the epoch's loss and accuracy, and the history keeps it. The clock
    runs from the epoch's start to the start of validation, so evaluating the selection split
    does not count.
    """

    class EpochThroughput(keras.callbacks.Callback):
        """Time the training part of every epoch."""

        def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            self.started = time.perf_counter()
            self.trained: float | None = None

        def on_test_begin(self, logs: dict[str, Any] | None = None) -> None:
            if self.trained is None:
                self.trained = time.perf_counter()

        def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            seconds = (self.trained or time.perf_counter()) - self.started
            if logs is not None:
                logs["images_per_s"] = images_per_epoch / max(seconds, 1e-9)

    return EpochThroughput()


@contextlib.contextmanager
def graceful_interrupt(keras: Any) -> Iterator[tuple[Any, StopRequest]]:
    """Turn the first Ctrl-C or SIGTERM into "stop after this batch"; a second one stops at once.

    A KeyboardInterrupt raised inside TensorFlow's C++ code can leave fit() hung at exit, so
    the signal only sets a request (:func:`fer_edge.signals.stop_on_signals`) that a callback
    turns into ``model.stop_training``.

    Yields:
        The callback to pass to ``fit`` and the request it watches.
    """
    with stop_on_signals("\nstopping after this batch (Ctrl-C again to stop now)") as stop:

        class StopOnInterrupt(keras.callbacks.Callback):
            def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
                if stop.requested:
                    self.model.stop_training = True

        yield StopOnInterrupt(), stop
