"""Training: data -> model -> checkpoints -> reports, resumable after an interruption."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fer_edge.atomic import atomic_path, write_json
from fer_edge.data import Dataset, Split, load_dataset, stratified_split
from fer_edge.errors import FerEdgeError
from fer_edge.metrics import ClassificationMetrics, classification_metrics
from fer_edge.modelmeta import ModelMeta, add_to_zip_model
from fer_edge.preprocess import InputSpec
from fer_edge.train import plots
from fer_edge.train.distribute import make_distribution, shard_by_data
from fer_edge.train.models import count_macs, get_family
from fer_edge.train.pipeline import AugmentOptions, class_weights, make_dataset, to_inputs
from fer_edge.train.precision import (
    PrecisionPlan,
    apply_precision,
    plan_precision,
    to_float32,
    wrap_optimizer,
)
from fer_edge.train.tfcompat import tf_and_keras

SCHEDULES = ("cosine", "plateau")


@dataclass(frozen=True)
class TrainOptions:
    """Everything one training run needs; saved in ``state.json`` for ``--resume``.

    Attributes:
        data: dataset folder or FER2013 CSV.
        out: run folder (``runs/NAME``).
        model: registry name (see ``fer-edge train --list-models``).
        epochs: maximum epochs.
        batch_size: global batch size, split evenly across the replicas of ``strategy``.
        learning_rate: peak Adam learning rate (``None``: the model family's default, tuned
            for a batch of 64). It is not rescaled with the batch size: for a batch k times
            larger, about ``sqrt(k)`` times the rate is the usual rule for Adam.
        schedule: ``cosine`` (decay to 1% over all epochs) or ``plateau`` (halve the LR when
            the selection loss stalls for 5 epochs).
        patience: early-stopping patience in epochs on selection accuracy (0: off).
        classes: class subset (``None``: all 7).
        select_fraction: share of train held out (stratified) for checkpoint selection and
            early stopping, so ``eval_split`` is never used for tuning.
        eval_split: the split the final report is computed on (``val`` or ``test``).
        class_weight: class-weight power: 0 off, 0.5 square-root inverse frequency, 1 full.
        label_smoothing: label smoothing of the cross-entropy.
        augment: augmentation options.
        model_options: extra builder keyword arguments (e.g. ``{"width": 0.75}``).
        weights: local ImageNet weights file for the application backbones.
        seed: seed for weights init, the selection split and shuffling.
        strategy: ``auto``, ``one``, ``mirrored`` or ``multi-worker``
            (see :func:`fer_edge.train.distribute.make_distribution`).
        precision: ``float32`` or ``mixed`` (see :mod:`fer_edge.train.precision`).
    """

    data: str
    out: str
    model: str = "edge"
    epochs: int = 60
    batch_size: int = 64
    learning_rate: float | None = None
    schedule: str = "cosine"
    patience: int = 0
    classes: str | None = None
    select_fraction: float = 0.1
    eval_split: str = "val"
    class_weight: float = 0.0
    label_smoothing: float = 0.0
    augment: AugmentOptions = field(default_factory=AugmentOptions)
    model_options: dict[str, Any] = field(default_factory=dict)
    weights: str | None = None
    seed: int = 0
    # Added after the first release: a state.json without them resumes with these defaults.
    strategy: str = "auto"
    precision: str = "float32"

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainOptions:
        """Inverse of :meth:`to_dict`."""
        data = dict(data)
        data["augment"] = AugmentOptions(**data.get("augment", {}))
        return cls(**data)


@dataclass
class TrainResult:
    """What a finished run produced.

    Attributes:
        out: the run folder.
        model_path: the best model, with metadata (``model.keras``).
        metrics: metrics on ``eval_split`` (``None`` if the data has no such split).
        select_metrics: metrics on the selection split.
        epochs_run: epochs completed (over all resumed sessions).
        best_epoch: the epoch whose weights were kept.
        wall_time_s: training wall time over all sessions.
        params: parameter count.
        macs: multiply-accumulates per face.
    """

    out: Path
    model_path: Path
    metrics: ClassificationMetrics | None
    select_metrics: ClassificationMetrics
    epochs_run: int
    best_epoch: int
    wall_time_s: float
    params: int
    macs: int


class RunPaths:
    """File names inside a run folder."""

    def __init__(self, out: str | Path) -> None:
        self.out = Path(out)
        self.checkpoints = self.out / "checkpoints"
        self.last = self.checkpoints / "last.keras"
        self.best = self.checkpoints / "best.keras"
        self.state = self.out / "state.json"
        self.history = self.out / "history.json"
        self.model = self.out / "model.keras"
        self.metrics = self.out / "metrics.json"
        self.logs = self.out / "logs"


def _checkpoint_callback(
    keras: Any, paths: RunPaths, state: dict[str, Any], chief: bool = True
) -> Any:
    def save(model: Any, path: Path) -> None:
        if chief:
            with atomic_path(path) as tmp:
                model.save(tmp)
            return
        # Every worker must save (reading mirrored batch-norm statistics is a collective op),
        # but only the chief's copy is kept: the others go to a private temporary folder.
        with tempfile.TemporaryDirectory(prefix="fer-edge-worker-") as scratch:
            model.save(Path(scratch) / path.name)

    class Checkpoint(keras.callbacks.Callback):
        """Atomically save last/best checkpoints, the history and the resume state."""

        def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
            logs = dict(logs or {})
            logs["lr"] = float(keras.backend.get_value(self.model.optimizer.learning_rate))
            for key, value in logs.items():
                state["history"].setdefault(key, []).append(float(value))
            score = float(logs.get("val_accuracy", 0.0))
            if score > state["best_score"]:
                state["best_score"], state["best_epoch"] = score, epoch + 1
                save(self.model, paths.best)
            save(self.model, paths.last)
            state["epoch"] = epoch + 1
            state["wall_time_s"] = state["wall_before"] + time.perf_counter() - state["t0"]
            if chief:
                write_json(paths.history, state["history"])
                state_out = {k: v for k, v in state.items() if k not in ("history", "t0")}
                write_json(paths.state, state_out)

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
            self.started, self.trained = time.perf_counter(), None

        def on_test_begin(self, logs: dict[str, Any] | None = None) -> None:
            if self.trained is None:
                self.trained = time.perf_counter()

        def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            seconds = (self.trained or time.perf_counter()) - self.started
            if logs is not None:
                logs["images_per_s"] = images_per_epoch / max(seconds, 1e-9)

    return EpochThroughput()


def compile_model(
    model: Any,
    learning_rate: Any,
    label_smoothing: float = 0.0,
    plan: PrecisionPlan | None = None,
    jit_compile: bool = False,
) -> None:
    """Compile ``model`` as ``fer-edge train`` does: Adam, categorical cross-entropy, accuracy.

    Call it inside the strategy scope the model was built in.

    Args:
        model: a ``tf_keras`` model.
        learning_rate: a rate or a ``keras.optimizers.schedules`` schedule.
        label_smoothing: label smoothing of the cross-entropy.
        plan: the precision plan (loss scaling for float16); ``None``: float32.
        jit_compile: compile the train step with XLA.
    """
    _, keras = tf_and_keras()
    optimizer = keras.optimizers.Adam(learning_rate)
    model.compile(
        optimizer=wrap_optimizer(optimizer, plan or PrecisionPlan()),
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=label_smoothing),
        metrics=["accuracy"],
        jit_compile=jit_compile,
    )


@contextlib.contextmanager
def _graceful_interrupt(keras: Any) -> Iterator[tuple[Any, threading.Event]]:
    """Turn the first Ctrl-C into "stop after this batch"; a second one stops at once.

    A KeyboardInterrupt raised inside TensorFlow's C++ code can leave fit() hung at exit, so
    the signal only sets a flag that a callback turns into ``model.stop_training``.
    """
    requested = threading.Event()

    class StopOnInterrupt(keras.callbacks.Callback):
        def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
            if requested.is_set():
                self.model.stop_training = True

    def handler(signum: int, frame: Any) -> None:
        requested.set()
        signal.signal(signal.SIGINT, signal.default_int_handler)
        print("\nstopping after this batch (Ctrl-C again to stop now)", file=sys.stderr)

    in_main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, handler) if in_main else None
    try:
        yield StopOnInterrupt(), requested
    finally:
        if in_main:
            signal.signal(signal.SIGINT, previous)


def _learning_rate(keras: Any, options: TrainOptions, steps_per_epoch: int) -> Any:
    peak = options.learning_rate or get_family(options.model).learning_rate
    if options.schedule == "cosine":
        return keras.optimizers.schedules.CosineDecay(
            peak, decay_steps=options.epochs * steps_per_epoch, alpha=0.01
        )
    return peak


def _split_for_selection(train: Split, options: TrainOptions) -> tuple[Split, Split]:
    fit_idx, select_idx = stratified_split(train.labels, options.select_fraction, options.seed)
    return train.subset(fit_idx), train.subset(select_idx)


def _evaluate(
    model: Any, split: Split, spec: InputSpec, labels: tuple[str, ...]
) -> ClassificationMetrics:
    probs = model.predict(to_inputs(split.images, spec), batch_size=256, verbose=0)
    return classification_metrics(split.labels, np.argmax(probs, axis=1), labels)


def load_options_for_resume(out: str | Path) -> TrainOptions:
    """Return the options an interrupted run in ``out`` was started with."""
    paths = RunPaths(out)
    if not paths.state.is_file() or not paths.last.is_file():
        raise FerEdgeError(f"--resume: no checkpoint in {paths.out} (expected {paths.last.name})")
    return TrainOptions.from_dict(json.loads(paths.state.read_text())["options"])


def train(
    options: TrainOptions, resume: bool = False, verbose: int | None = None
) -> TrainResult | None:
    """Train a registry model and write the run folder.

    Under ``--strategy multi-worker`` every worker runs this with the same options; only the
    chief writes to ``out``.

    Args:
        options: what to train on and how.
        resume: continue from ``out/checkpoints/last.keras`` (options must match the run's).
        verbose: Keras fit verbosity (default: a progress bar on a terminal, a line per epoch
            otherwise).

    Returns:
        The :class:`TrainResult`, or ``None`` in a worker that is not the chief. ``out`` then
        holds model.keras (float32 whatever ``precision``), history.json, metrics.json,
        class_distribution.png, training_curves.png, confusion_matrix.png, checkpoints/ and
        TensorBoard logs/.

    Raises:
        FerEdgeError: bad options or data; an existing run folder without ``resume``.
        KeyboardInterrupt: after the last finished epoch was checkpointed.
    """
    tf, keras = tf_and_keras()
    family = get_family(options.model)
    if options.schedule not in SCHEDULES:
        raise FerEdgeError(f"--schedule: choose from {', '.join(SCHEDULES)}")
    # Before any other TensorFlow work: a multi-worker strategy configures the runtime.
    distribution = make_distribution(options.strategy)
    chief = distribution.chief
    plan = plan_precision(options.precision)
    paths = RunPaths(options.out)
    if chief and not resume and paths.state.exists():
        raise FerEdgeError(
            f"--out: {paths.out} already holds a run; pass --resume to continue it or choose "
            "another folder"
        )
    keras.utils.set_random_seed(options.seed)
    spec = InputSpec(channels=family.channels)
    dataset = load_dataset(
        options.data, options.classes, spec=spec, seed=options.seed, progress=True
    )
    if dataset.skipped:
        print(dataset.skipped_summary(), file=sys.stderr)
    labels = dataset.classes
    fit_split, select_split = _split_for_selection(dataset.split("train"), options)
    train_ds = make_dataset(
        fit_split.images,
        fit_split.labels,
        spec,
        len(labels),
        options.batch_size,
        True,
        options.augment,
        options.seed,
    )
    select_ds = make_dataset(select_split.images, select_split.labels, spec, len(labels), 256)
    if distribution.name == "multi-worker":
        train_ds, select_ds = shard_by_data(train_ds), shard_by_data(select_ds)
    steps = int(np.ceil(len(fit_split) / options.batch_size))

    with distribution.strategy.scope():
        if resume:
            model = keras.models.load_model(paths.last, compile=True)
        else:
            extra = dict(options.model_options)
            if options.weights:
                extra["weights"] = options.weights
            model = family.builder((spec.height, spec.width, spec.channels), len(labels), **extra)
            model = apply_precision(model, plan)
            lr = _learning_rate(keras, options, steps)
            compile_model(model, lr, options.label_smoothing, plan)
    if resume:
        state = json.loads(paths.state.read_text())
        state["history"] = json.loads(paths.history.read_text()) if paths.history.exists() else {}
    else:
        state = {
            "options": options.to_dict(),
            "epoch": 0,
            "best_score": -1.0,
            "best_epoch": 0,
            "wall_time_s": 0.0,
            "history": {},
        }
    if chief and not resume:
        paths.out.mkdir(parents=True, exist_ok=True)
        paths.checkpoints.mkdir(exist_ok=True)
        counts = {
            "train (fit)": _counts(fit_split, labels),
            "train (select)": _counts(select_split, labels),
        }
        for name in ("val", "test"):
            if name in dataset.splits:
                counts[name] = dataset.counts(name)
        plots.plot_class_distribution(counts, paths.out / "class_distribution.png")
    state["t0"], state["wall_before"] = time.perf_counter(), state.get("wall_time_s", 0.0)

    callbacks = [
        # First, so the checkpoint callback records images/s in the history.
        throughput_callback(keras, len(fit_split)),
        _checkpoint_callback(keras, paths, state, chief),
    ]
    if chief:
        callbacks.append(keras.callbacks.TensorBoard(str(paths.logs), profile_batch=0))
    if options.schedule == "plateau":
        callbacks.append(keras.callbacks.ReduceLROnPlateau("val_loss", factor=0.5, patience=5))
    if options.patience:
        callbacks.append(
            keras.callbacks.EarlyStopping("val_accuracy", patience=options.patience, mode="max")
        )
    weights = (
        class_weights(fit_split.labels, len(labels), options.class_weight)
        if options.class_weight
        else None
    )
    if verbose is None:
        verbose = 1 if sys.stderr.isatty() else 2
    print(
        f"{options.model}: {model.count_params():,} params, {count_macs(model) / 1e6:.1f} M MACs; "
        f"fit {len(fit_split)}, select {len(select_split)}; "
        f"epochs {state['epoch'] + 1}-{options.epochs}; {distribution.describe()}, "
        f"batch {options.batch_size}; {plan.describe()}",
        file=sys.stderr,
    )
    with _graceful_interrupt(keras) as (stopper, requested):
        try:
            model.fit(
                train_ds,
                validation_data=select_ds,
                epochs=options.epochs,
                initial_epoch=state["epoch"],
                class_weight=weights,
                callbacks=[*callbacks, stopper],
                verbose=verbose,
            )
        except KeyboardInterrupt:
            requested.set()
    if requested.is_set():
        print(
            f"interrupted: epoch {state['epoch']} is checkpointed in {paths.last}; "
            f"continue with: fer-edge train --out {paths.out} --resume",
            file=sys.stderr,
        )
        raise KeyboardInterrupt
    result = finish_run(paths, dataset, spec, options) if chief else None
    distribution.wait_for_all()
    return result


def _counts(split: Split, labels: tuple[str, ...]) -> dict[str, int]:
    totals = np.bincount(split.labels, minlength=len(labels))
    return {c: int(n) for c, n in zip(labels, totals, strict=True)}


def finish_run(
    paths: RunPaths, dataset: Dataset, spec: InputSpec, options: TrainOptions
) -> TrainResult:
    """Turn the best checkpoint into model.keras with metadata, metrics.json and plots.

    model.keras is always float32: a mixed-precision checkpoint gets a float32 twin (same
    layers and weights), which is also what the reports are measured on.
    """
    _, keras = tf_and_keras()
    state = json.loads(paths.state.read_text())
    history = json.loads(paths.history.read_text())
    checkpoint = keras.models.load_model(paths.best, compile=False)
    best = to_float32(checkpoint)
    labels = dataset.classes
    _, select_split = _split_for_selection(dataset.split("train"), options)
    select_metrics = _evaluate(best, select_split, spec, labels)
    metrics: ClassificationMetrics | None = None
    if options.eval_split in dataset.splits:
        metrics = _evaluate(best, dataset.split(options.eval_split), spec, labels)
    params, macs = int(best.count_params()), count_macs(best)
    meta = ModelMeta(
        labels,
        spec,
        name=options.model,
        extra={"params": params, "macs": macs, "best_epoch": state["best_epoch"]},
    )
    with atomic_path(paths.model) as tmp:
        if best is checkpoint:
            shutil.copyfile(paths.best, tmp)
        else:
            best.save(tmp)
        add_to_zip_model(tmp, meta)
    report = {
        "model": options.model,
        "params": params,
        "macs": macs,
        "epochs_run": state["epoch"],
        "best_epoch": state["best_epoch"],
        "wall_time_s": round(state["wall_time_s"], 1),
        "eval_split": options.eval_split if metrics else None,
        "metrics": metrics.to_dict() if metrics else None,
        "selection_metrics": select_metrics.to_dict(),
        "data": {
            "source": dataset.source,
            "skipped": len(dataset.skipped),
            "val_carved": dataset.val_carved,
            "counts": {name: dataset.counts(name) for name in dataset.splits},
        },
        "options": options.to_dict(),
    }
    write_json(paths.metrics, report)
    plots.plot_training_curves(history, paths.out / "training_curves.png")
    shown = metrics or select_metrics
    where = options.eval_split if metrics else "selection split"
    plots.plot_confusion(
        shown.confusion,
        labels,
        paths.out / "confusion_matrix.png",
        title=f"{options.model} on {where}: accuracy {shown.accuracy:.1%}",
    )
    return TrainResult(
        paths.out,
        paths.model,
        metrics,
        select_metrics,
        state["epoch"],
        state["best_epoch"],
        state["wall_time_s"],
        params,
        macs,
    )
