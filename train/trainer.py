"""Training: data -> model -> checkpoints -> reports, resumable after an interruption."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
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

from fer_edge.atomic import atomic_path, check_output_folder, write_json
from fer_edge.data import Dataset, Split, load_dataset, stratified_split
from fer_edge.errors import (
    FerEdgeError,
    Interrupted,
    first_line,
    raise_interrupted,
    sigterm_interrupts,
)
from fer_edge.metrics import ClassificationMetrics, classification_metrics
from fer_edge.modelmeta import ModelMeta, add_to_zip_model, read_meta
from fer_edge.preprocess import InputSpec
from fer_edge.runlock import folder_lock
from fer_edge.tfcompat import tf_and_keras
from fer_edge.train import plots
from fer_edge.train.choices import DEFAULT_EPOCHS, OPTIMIZERS, SCHEDULES, TARGETS
from fer_edge.train.distill import (
    DistillOptions,
    check_teachers,
    distillation_objects,
    teacher_probabilities,
)
from fer_edge.train.distribute import make_distribution, shard_by_data
from fer_edge.train.inputs import AugmentOptions, class_weights, make_dataset, to_inputs
from fer_edge.train.models import count_macs, get_family
from fer_edge.train.precision import (
    PrecisionPlan,
    apply_precision,
    plan_precision,
    to_float32,
    wrap_optimizer,
)
from fer_edge.train.runcache import cached_arrays

#: SGD's peak rate when ``--lr`` is not given: the family defaults are Adam rates.
SGD_LEARNING_RATE = 0.01


@dataclass(frozen=True)
class TrainOptions:
    """Everything one training run needs; saved in ``state.json`` for ``--resume``.

    Attributes:
        data: dataset folder or FER2013 CSV.
        out: run folder (``runs/NAME``).
        model: registry name (see ``fer-edge train --list-models``).
        epochs: maximum epochs.
        batch_size: global batch size, split evenly across the replicas of ``strategy``.
        learning_rate: peak learning rate (``None``: for Adam the model family's default, tuned
            for a batch of 64; for SGD :data:`SGD_LEARNING_RATE`). It is not rescaled with the
            batch size: for a batch k times larger, about ``sqrt(k)`` times the rate is the
            usual rule for Adam.
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
        distill: distil from teacher models (see :mod:`fer_edge.train.distill`); ``None``:
            train on the labels alone.
        recrop: share of training faces shown, each epoch, as the device cuts them (see
            :mod:`fer_edge.train.recrop`) instead of their dataset framing; 0: never.
        init: start from this trained ``.keras`` model's weights (fine-tuning) instead of a
            fresh ``model``; it must be that registry model, with the data's labels.
        optimizer: ``adam`` or ``sgd`` (Nesterov momentum 0.9).
        weight_decay: decoupled weight decay per step, as a fraction of the learning rate
            (``w -= lr * weight_decay * w``); 0: none.
        targets: what each face is trained towards (see
            :data:`fer_edge.train.choices.TARGETS`); all but ``majority`` need FER+ data.
        joint_mix: with ``targets="joint"``, the FER2013 label's share of the target.
        joint_labels: with ``targets="joint"``, the FER2013 image-folder dataset whose
            ``train/<class>/`` names each FER+ training face's FER2013 label (``None``: the
            ``fer2013`` folder beside the FER+ folder).
    """

    data: str
    out: str
    model: str = "edge"
    epochs: int = DEFAULT_EPOCHS
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
    distill: DistillOptions | None = None
    recrop: float = 0.0
    init: str | None = None
    optimizer: str = "adam"
    weight_decay: float = 0.0
    targets: str = "majority"
    joint_mix: float = 0.5
    joint_labels: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainOptions:
        """Inverse of :meth:`to_dict`."""
        data = dict(data)
        data["augment"] = AugmentOptions(**data.get("augment", {}))
        data["distill"] = DistillOptions.from_dict(data.get("distill"))
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
    """File names inside a run folder.

    Each finished epoch is saved as ``checkpoints/epoch-NNNN.keras``; ``state.json`` names the
    last and the best of them and is written after them, so it is the commit point: a run
    killed at any instant resumes from a checkpoint that matches its state. ``last.keras`` and
    ``best.keras`` follow as links for people and for folders written before that (whose
    ``state.json`` names no checkpoint).
    """

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
        self.teacher = self.out / "teacher.npz"
        self.recrop = self.out / "recrop.npz"

    def checkpoint(self, state: dict[str, Any], which: str) -> Path:
        """Return the ``"last"`` or ``"best"`` checkpoint that ``state`` (state.json) names."""
        name = state.get(which)
        if name is None:  # a run folder from before per-epoch checkpoints
            return self.last if which == "last" else self.best
        return self.checkpoints / name


def _link_or_copy(source: Path, target: Path) -> None:
    """Point ``target`` at ``source``'s content atomically (a hard link, else a copy)."""
    with atomic_path(target) as tmp:
        tmp.unlink()
        try:
            os.link(source, tmp)
        except OSError:  # no hard links on this file system
            shutil.copyfile(source, tmp)


def _checkpoint_callback(
    keras: Any, paths: RunPaths, state: dict[str, Any], meta: ModelMeta, chief: bool = True
) -> Any:
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
            for key, value in logs.items():
                state["history"].setdefault(key, []).append(float(value))
            name = f"epoch-{epoch + 1:04d}.keras"
            save(self.model, paths.checkpoints / name, epoch + 1)
            score = float(logs.get("val_accuracy", 0.0))
            improved = score > state["best_score"]
            if improved:
                state["best_score"], state["best_epoch"], state["best"] = score, epoch + 1, name
            state["last"] = name
            state["epoch"] = epoch + 1
            state["wall_time_s"] = state["wall_before"] + time.perf_counter() - state["t0"]
            if not chief:
                return
            # History first: resume cuts it to state.json's epoch count if a kill falls between.
            write_json(paths.history, state["history"])
            write_json(paths.state, {k: v for k, v in state.items() if k not in ("history", "t0")})
            _link_or_copy(paths.checkpoints / name, paths.last)
            if improved:
                _link_or_copy(paths.checkpoints / name, paths.best)
            keep = {state["last"], state.get("best")}
            for old in paths.checkpoints.glob("epoch-*.keras"):
                if old.name not in keep:
                    old.unlink(missing_ok=True)

    return Checkpoint()


class _StopRequest(threading.Event):
    """Set by the first SIGINT or SIGTERM, which it remembers."""

    signum: int = signal.SIGINT


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


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


def compile_model(
    model: Any,
    learning_rate: Any,
    label_smoothing: float = 0.0,
    plan: PrecisionPlan | None = None,
    jit_compile: bool = False,
    distill: dict[str, Any] | None = None,
    optimizer: str = "adam",
    weight_decay: float = 0.0,
) -> None:
    """Compile ``model`` as ``fer-edge train`` does: categorical cross-entropy, accuracy.

    Call it inside the strategy scope the model was built in.

    Args:
        model: a ``tf_keras`` model.
        learning_rate: a rate or a ``keras.optimizers.schedules`` schedule.
        label_smoothing: label smoothing of the cross-entropy.
        plan: the precision plan (loss scaling for float16); ``None``: float32.
        jit_compile: compile the train step with XLA.
        distill: the loss and metric of :func:`fer_edge.train.distill.distillation_objects`
            (for ``[one_hot | teacher_probs]`` targets; it has its own label smoothing).
        optimizer: ``adam`` or ``sgd`` (Nesterov, momentum 0.9).
        weight_decay: decoupled weight decay (0: none).
    """
    _, keras = tf_and_keras()
    decay = weight_decay or None
    if optimizer == "sgd":
        opt = keras.optimizers.SGD(learning_rate, momentum=0.9, nesterov=True, weight_decay=decay)
    elif optimizer == "adam":
        opt = keras.optimizers.Adam(learning_rate, weight_decay=decay)
    else:
        raise FerEdgeError(f"--optimizer: unknown {optimizer!r}; choose from {OPTIMIZERS}")
    loss = keras.losses.CategoricalCrossentropy(label_smoothing=label_smoothing)
    model.compile(
        optimizer=wrap_optimizer(opt, plan or PrecisionPlan()),
        loss=distill["distillation_loss"] if distill else loss,
        metrics=[distill["accuracy"] if distill else "accuracy"],
        jit_compile=jit_compile,
    )


@contextlib.contextmanager
def _graceful_interrupt(keras: Any) -> Iterator[tuple[Any, _StopRequest]]:
    """Turn the first Ctrl-C or SIGTERM into "stop after this batch"; a second one stops at once.

    A KeyboardInterrupt raised inside TensorFlow's C++ code can leave fit() hung at exit, so
    the signal only sets a flag that a callback turns into ``model.stop_training``.
    """
    requested = _StopRequest()

    class StopOnInterrupt(keras.callbacks.Callback):
        def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
            if requested.is_set():
                self.model.stop_training = True

    def handler(signum: int, frame: Any) -> None:
        requested.signum = signum
        requested.set()
        for sig in STOP_SIGNALS:
            signal.signal(sig, raise_interrupted)
        print("\nstopping after this batch (Ctrl-C again to stop now)", file=sys.stderr)

    in_main = threading.current_thread() is threading.main_thread()
    previous = {sig: signal.signal(sig, handler) for sig in STOP_SIGNALS} if in_main else {}
    try:
        yield StopOnInterrupt(), requested
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _learning_rate(keras: Any, options: TrainOptions, steps_per_epoch: int) -> Any:
    default = SGD_LEARNING_RATE if options.optimizer == "sgd" else None
    peak = options.learning_rate or default or get_family(options.model).learning_rate
    if options.schedule == "cosine":
        return keras.optimizers.schedules.CosineDecay(
            peak, decay_steps=options.epochs * steps_per_epoch, alpha=0.01
        )
    return peak


def _replan_schedule(keras: Any, model: Any, options: TrainOptions, steps_per_epoch: int) -> None:
    """Make a resumed cosine schedule end at ``options.epochs`` if the total was changed.

    The schedule lives in the checkpoint's optimizer, so a new ``--epochs`` on resume would
    otherwise stop the run part-way down the old curve, before the rate has decayed.
    """
    optimizer = getattr(model.optimizer, "inner_optimizer", model.optimizer)
    old = optimizer._learning_rate  # the schedule object; the public getter gives its value
    wanted = options.epochs * steps_per_epoch
    if not isinstance(old, keras.optimizers.schedules.CosineDecay) or old.decay_steps == wanted:
        return
    optimizer.learning_rate = keras.optimizers.schedules.CosineDecay(
        old.initial_learning_rate, decay_steps=wanted, alpha=old.alpha
    )


def _initial_model(keras: Any, options: TrainOptions, labels: tuple[str, ...]) -> Any:
    """Load ``--init``: a trained model of the same registry family and labels."""
    assert options.init is not None
    from fer_edge.evaluate import load_keras_model

    try:
        meta = read_meta(options.init)
        model = load_keras_model(options.init)
    except FerEdgeError as exc:
        raise FerEdgeError(f"--init: {exc}") from None
    if meta.name != options.model:
        raise FerEdgeError(
            f"--init: {options.init} is a {meta.name!r} model; pass --model {meta.name}"
        )
    if tuple(meta.labels) != tuple(labels):
        raise FerEdgeError(
            f"--init: {options.init} predicts {', '.join(meta.labels)}; the data has "
            f"{', '.join(labels)}"
        )
    return model


def _recropped(
    paths: RunPaths, fit: Split, spec: InputSpec, options: TrainOptions, chief: bool
) -> np.ndarray:
    """Return the fitting faces as the device cuts them (made once, kept in recrop.npz)."""
    from fer_edge.train.recrop import device_crops

    def make() -> dict[str, np.ndarray]:
        print(f"recrop: cutting {len(fit)} faces through the device's detector", file=sys.stderr)
        crops, found = device_crops(fit.images, spec, options.seed, progress=True)
        print(f"recrop: the detector found {found.mean():.1%} of them", file=sys.stderr)
        return {"fit": crops, "found": found}

    key = f"recrop seed {options.seed}"
    lengths = {"fit": len(fit), "found": len(fit)}
    return cached_arrays(paths.recrop, key, lengths, make, write=chief)["fit"]


def _targets(
    dataset: Dataset, fit: Split, select: Split, options: TrainOptions
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Return the fit and selection targets that replace one-hot labels (``None``: labels)."""
    if options.targets not in TARGETS:
        raise FerEdgeError(f"--targets: choose from {', '.join(TARGETS)}")
    if options.targets == "majority":
        return None, None
    if fit.votes is None or select.votes is None:
        raise FerEdgeError(
            f"--targets {options.targets}: needs FER+ vote counts; {dataset.source} has one "
            "label per face (use --targets majority)"
        )
    if options.targets != "joint":
        return fit.votes, select.votes
    from fer_edge.train.joint import joint_targets

    return (
        joint_targets(dataset, fit, options.joint_labels, options.joint_mix),
        joint_targets(dataset, select, options.joint_labels, options.joint_mix),
    )


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
    state = _read_state(paths) if paths.state.is_file() else None
    if state is None or not paths.checkpoint(state, "last").is_file():
        raise FerEdgeError(f"--resume: no checkpoint in {paths.out} (expected {paths.last.name})")
    try:
        return TrainOptions.from_dict(state["options"])
    except (TypeError, ValueError, KeyError) as exc:
        raise FerEdgeError(
            f"--resume: {paths.state} is damaged (its options: {first_line(exc)})"
        ) from None


def _epochs_in(model: Any, state: dict[str, Any], steps: int) -> int:
    """Return the finished epochs a resumed checkpoint really holds.

    Before issue 16 a Ctrl-C mid-epoch was saved as a finished epoch; the optimizer's step
    count in the checkpoint tells (``state.json`` from then on always matches it).
    """
    iterations = int(model.optimizer.iterations.numpy())
    done = min(state["epoch"], iterations // steps)
    if done < state["epoch"]:
        print(
            f"resume: the checkpoint holds {done} finished epochs and part of the next "
            f"({iterations} steps of {steps} per epoch); epoch {done + 1} is trained again",
            file=sys.stderr,
        )
    return done


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
        FerEdgeError: bad options or data; an existing run folder without ``resume``; an
            ``out`` that is a file or cannot be created.
        Interrupted: Ctrl-C or SIGTERM, after the last finished epoch was checkpointed (a
            ``KeyboardInterrupt``).
    """
    with sigterm_interrupts(), contextlib.ExitStack() as locks:
        return _train(options, resume, verbose, locks)


def read_run_json(path: Path, flag: str = "--out") -> Any:
    """Read one JSON file of a run folder; a damaged one is a one-line error naming it.

    Raises:
        FerEdgeError: the file is unreadable or not JSON (e.g. edited by hand, or a disk that
            lost its tail).
    """
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FerEdgeError(f"{flag}: {path} is missing") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise FerEdgeError(f"{flag}: {path} is damaged ({first_line(exc)})") from None


def _read_state(paths: RunPaths) -> dict[str, Any]:
    """Return ``state.json``, checked for what resuming needs."""
    state = read_run_json(paths.state, "--resume")
    if (
        not isinstance(state, dict)
        or not isinstance(state.get("options"), dict)
        or not isinstance(state.get("epoch"), int)
        or not all(isinstance(state.get(k, ""), (str, type(None))) for k in ("last", "best"))
    ):
        raise FerEdgeError(
            f"--resume: {paths.state} is damaged (not a fer-edge train state: needs "
            "'options', 'epoch' and checkpoint names)"
        )
    return state


def _train(
    options: TrainOptions, resume: bool, verbose: int | None, locks: contextlib.ExitStack
) -> TrainResult | None:
    tf, keras = tf_and_keras()
    family = get_family(options.model)
    if options.schedule not in SCHEDULES:
        raise FerEdgeError(f"--schedule: choose from {', '.join(SCHEDULES)}")
    # Before any other TensorFlow work: a multi-worker strategy configures the runtime.
    distribution = make_distribution(options.strategy)
    chief = distribution.chief
    plan = plan_precision(options.precision)
    paths = RunPaths(options.out)
    if chief:
        check_output_folder(paths.out, "--out")
        # Before looking at the folder: two trainers that both found it empty would mix runs.
        locks.enter_context(folder_lock(paths.out, "--out", "fer-edge train"))
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
    fit_targets, select_targets = _targets(dataset, fit_split, select_split, options)
    soft: dict[str, np.ndarray] = {}
    distill: dict[str, Any] | None = None
    if options.distill:
        check_teachers(options.distill, labels)
        if options.class_weight and (options.augment.mixup or fit_targets is not None):
            # Keras finds a target's class by argmax, which mixup or vote shares below the
            # teachers' can move into the soft half.
            raise FerEdgeError(
                "--class-weight: not with --teacher and --mixup or --targets other than majority"
            )
        teachers = options.distill

        def predict() -> dict[str, np.ndarray]:
            print(
                f"teachers: predicting {len(fit_split) + len(select_split)} faces", file=sys.stderr
            )
            # One pass over both splits: each teacher is loaded once.
            both = teacher_probabilities(
                teachers, np.concatenate([fit_split.images, select_split.images])
            )
            return {"fit": both[: len(fit_split)], "select": both[len(fit_split) :]}

        key = repr((teachers.teachers, teachers.tta))
        lengths = {"fit": len(fit_split), "select": len(select_split)}
        soft = cached_arrays(paths.teacher, key, lengths, predict, write=chief)
        distill = distillation_objects(teachers, len(labels), options.label_smoothing)
    recropped = _recropped(paths, fit_split, spec, options, chief) if options.recrop else None
    train_ds = make_dataset(
        fit_split.images,
        fit_split.labels,
        spec,
        len(labels),
        options.batch_size,
        True,
        options.augment,
        options.seed,
        soft=soft.get("fit"),
        alternates=recropped,
        alternate_share=options.recrop,
        targets=fit_targets,
        sample=options.targets == "sample",
    )
    select_ds = make_dataset(
        select_split.images,
        select_split.labels,
        spec,
        len(labels),
        256,
        soft=soft.get("select"),
        targets=select_targets,
    )
    if distribution.name == "multi-worker":
        train_ds, select_ds = shard_by_data(train_ds), shard_by_data(select_ds)
    steps = int(np.ceil(len(fit_split) / options.batch_size))

    with distribution.strategy.scope():
        if resume:
            state = _read_state(paths)
            model = keras.models.load_model(
                paths.checkpoint(state, "last"), custom_objects=distill, compile=True
            )
            _replan_schedule(keras, model, options, steps)
        else:
            if options.init:
                model = _initial_model(keras, options, labels)
            else:
                extra = dict(options.model_options)
                if options.weights:
                    extra["weights"] = options.weights
                shape = (spec.height, spec.width, spec.channels)
                model = family.builder(shape, len(labels), **extra)
            model = apply_precision(model, plan)
            lr = _learning_rate(keras, options, steps)
            compile_model(
                model,
                lr,
                options.label_smoothing,
                plan,
                distill=distill,
                optimizer=options.optimizer,
                weight_decay=options.weight_decay,
            )
    if resume:
        state["epoch"] = _epochs_in(model, state, steps)
        history = read_run_json(paths.history, "--resume") if paths.history.exists() else {}
        if not isinstance(history, dict) or not all(isinstance(v, list) for v in history.values()):
            raise FerEdgeError(f"--resume: {paths.history} is damaged (not a training history)")
        state["history"] = {key: values[: state["epoch"]] for key, values in history.items()}
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
    params, macs = int(model.count_params()), count_macs(model)
    checkpoint_meta = ModelMeta(
        labels, spec, name=options.model, extra={"params": params, "macs": macs}
    )

    callbacks = [
        # First, so the checkpoint callback records images/s in the history.
        throughput_callback(keras, len(fit_split)),
        _checkpoint_callback(keras, paths, state, checkpoint_meta, chief),
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
    todo = (
        f"epochs {state['epoch'] + 1}-{options.epochs}"
        if state["epoch"] < options.epochs
        else f"all {options.epochs} epochs done, writing the reports"
    )
    print(
        f"{options.model}: {params:,} params, {macs / 1e6:.1f} M MACs; "
        f"fit {len(fit_split)}, select {len(select_split)}; {todo}; "
        f"{distribution.describe()}, batch {options.batch_size}; {plan.describe()}"
        + (
            f"; distilling from {len(options.distill.teachers)} teacher(s)"
            if options.distill
            else ""
        ),
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
            f"interrupted: epoch {state['epoch']} is checkpointed in {paths.checkpoints}; "
            f"continue with: fer-edge train --out {paths.out} --resume",
            file=sys.stderr,
        )
        raise Interrupted(requested.signum)
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
    checkpoint = keras.models.load_model(paths.checkpoint(state, "best"), compile=False)
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
        add_to_zip_model(tmp, meta, replace=True)
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
            "label_set": dataset.label_set,
            "unscored": dataset.unscored,
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
