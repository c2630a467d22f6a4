"""Training in phases over one typed run state, resumable after an interruption.

:func:`train` runs, in order:

- :func:`_setup_train`: the model family, strategy, precision and run-folder checks (before
  any data loads);
- :func:`_load_data`: the dataset, the selection split, what each face is trained towards
  (labels, FER+ votes, teachers' probabilities, re-crops) and the tf.data pipelines;
- :func:`_build_model`: a fresh or ``--init`` model, compiled, with a new
  :class:`~fer_edge.train.runfolder.RunState`; or, for ``--resume``, :func:`_check_resume`:
  the last checkpoint and the state it was saved with;
- :func:`_do_train`: the callbacks and ``fit``, which the checkpoint callback turns into one
  checkpoint and one ``state.json`` per finished epoch; Ctrl-C or SIGTERM stops it gracefully;
- :func:`finish_run`: model.keras, metrics.json and the plots from the best checkpoint.

The options are :class:`~fer_edge.train.options.TrainOptions`; the run folder, its state and
reading them back for ``--resume`` are in :mod:`fer_edge.train.runfolder`; the Keras callbacks
in :mod:`fer_edge.train.callbacks`.
"""

from __future__ import annotations

import contextlib
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fer_edge.atomic import atomic_path, check_output_folder, write_json
from fer_edge.data import Dataset, Split, load_dataset, stratified_split
from fer_edge.errors import FerEdgeError, Interrupted
from fer_edge.metrics import ClassificationMetrics, classification_metrics
from fer_edge.modelmeta import ModelMeta, add_to_zip_model, read_meta
from fer_edge.preprocess import InputSpec
from fer_edge.runlock import folder_lock
from fer_edge.signals import sigterm_interrupts
from fer_edge.tfcompat import tf_and_keras
from fer_edge.train import plots
from fer_edge.train.callbacks import checkpoint_callback, graceful_interrupt, throughput_callback
from fer_edge.train.choices import OPTIMIZERS, SCHEDULES, TARGETS
from fer_edge.train.distill import check_teachers, distillation_objects, teacher_probabilities
from fer_edge.train.distribute import Distribution, make_distribution, shard_by_data
from fer_edge.train.inputs import class_weights, make_dataset, to_inputs
from fer_edge.train.models import ModelFamily, count_macs, get_family
from fer_edge.train.options import SGD_LEARNING_RATE, TrainOptions
from fer_edge.train.precision import (
    PrecisionPlan,
    apply_precision,
    plan_precision,
    to_float32,
    wrap_optimizer,
)
from fer_edge.train.runcache import cached_arrays
from fer_edge.train.runfolder import RunPaths, RunState, epochs_in, read_run_json


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


@dataclass
class _Setup:
    """What :func:`_setup_train` settled before any data is loaded.

    Attributes:
        options: the run's options.
        resume: continue the run in ``options.out``.
        family: the registry entry of ``options.model``.
        distribution: the strategy and this process's place in it.
        plan: the precision plan.
        paths: the run folder.
        spec: the model input.
    """

    options: TrainOptions
    resume: bool
    family: ModelFamily
    distribution: Distribution
    plan: PrecisionPlan
    paths: RunPaths
    spec: InputSpec

    @property
    def chief(self) -> bool:
        """Whether this process writes the run folder."""
        return self.distribution.chief


@dataclass
class _RunData:
    """The data of one run (:func:`_load_data`).

    Attributes:
        dataset: the whole dataset.
        fit_split: the part of train that is fitted.
        select_split: the part of train held out for checkpoint selection.
        train_ds: the training pipeline (augmented, shuffled, batched).
        select_ds: the selection pipeline.
        steps: training steps per epoch.
        distill: the distillation loss and metric, Keras custom objects (``None``: no
            teachers).
    """

    dataset: Dataset
    fit_split: Split
    select_split: Split
    train_ds: Any
    select_ds: Any
    steps: int
    distill: dict[str, Any] | None

    @property
    def labels(self) -> tuple[str, ...]:
        """The class names, in the model's output order."""
        return self.dataset.classes


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


def _train(
    options: TrainOptions, resume: bool, verbose: int | None, locks: contextlib.ExitStack
) -> TrainResult | None:
    setup = _setup_train(options, resume, locks)
    data = _load_data(setup)
    model, state = _build_model(setup, data)
    if setup.chief and not resume:
        _prepare_run_folder(setup, data)
    _do_train(setup, data, model, state, verbose)
    result = finish_run(setup.paths, data.dataset, setup.spec, options) if setup.chief else None
    setup.distribution.wait_for_all()
    return result


def _setup_train(options: TrainOptions, resume: bool, locks: contextlib.ExitStack) -> _Setup:
    """Check the options, lock the run folder, and settle the strategy and precision."""
    _, keras = tf_and_keras()
    family = get_family(options.model)
    if options.schedule not in SCHEDULES:
        raise FerEdgeError(f"--schedule: choose from {', '.join(SCHEDULES)}")
    # Before any other TensorFlow work: a multi-worker strategy configures the runtime.
    distribution = make_distribution(options.strategy)
    plan = plan_precision(options.precision)
    paths = RunPaths(options.out)
    if distribution.chief:
        check_output_folder(paths.out, "--out")
        # Before looking at the folder: two trainers that both found it empty would mix runs.
        locks.enter_context(folder_lock(paths.out, "--out", "fer-edge train"))
    if distribution.chief and not resume and paths.state.exists():
        raise FerEdgeError(
            f"--out: {paths.out} already holds a run; pass --resume to continue it or choose "
            "another folder"
        )
    keras.utils.set_random_seed(options.seed)
    spec = InputSpec(channels=family.channels)
    return _Setup(options, resume, family, distribution, plan, paths, spec)


def _load_data(setup: _Setup) -> _RunData:
    """Load the dataset, split off the selection faces and build both input pipelines."""
    options, spec = setup.options, setup.spec
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
        soft, distill = _teacher_targets(setup, fit_split, select_split, labels, fit_targets)
    recropped = (
        _recropped(setup.paths, fit_split, spec, options, setup.chief) if options.recrop else None
    )
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
    if setup.distribution.name == "multi-worker":
        train_ds, select_ds = shard_by_data(train_ds), shard_by_data(select_ds)
    steps = int(np.ceil(len(fit_split) / options.batch_size))
    return _RunData(dataset, fit_split, select_split, train_ds, select_ds, steps, distill)


def _teacher_targets(
    setup: _Setup,
    fit_split: Split,
    select_split: Split,
    labels: tuple[str, ...],
    fit_targets: np.ndarray | None,
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Return the teachers' probabilities (kept in teacher.npz) and the distillation objects."""
    options = setup.options
    teachers = options.distill
    assert teachers is not None
    check_teachers(teachers, labels)
    if options.class_weight and (options.augment.mixup or fit_targets is not None):
        # Keras finds a target's class by argmax, which mixup or vote shares below the
        # teachers' can move into the soft half.
        raise FerEdgeError(
            "--class-weight: not with --teacher and --mixup or --targets other than majority"
        )

    def predict() -> dict[str, np.ndarray]:
        print(f"teachers: predicting {len(fit_split) + len(select_split)} faces", file=sys.stderr)
        # One pass over both splits: each teacher is loaded once.
        both = teacher_probabilities(
            teachers, np.concatenate([fit_split.images, select_split.images])
        )
        return {"fit": both[: len(fit_split)], "select": both[len(fit_split) :]}

    key = repr((teachers.teachers, teachers.tta))
    lengths = {"fit": len(fit_split), "select": len(select_split)}
    soft = cached_arrays(setup.paths.teacher, key, lengths, predict, write=setup.chief)
    return soft, distillation_objects(teachers, len(labels), options.label_smoothing)


def _build_model(setup: _Setup, data: _RunData) -> tuple[Any, RunState]:
    """Return the compiled model and the run state: new, or the run's to resume."""
    if setup.resume:
        return _check_resume(setup, data)
    _, keras = tf_and_keras()
    options = setup.options
    with setup.distribution.strategy.scope():
        if options.init:
            model = _initial_model(keras, options, data.labels)
        else:
            extra = dict(options.model_options)
            if options.weights:
                extra["weights"] = options.weights
            shape = (setup.spec.height, setup.spec.width, setup.spec.channels)
            model = setup.family.builder(shape, len(data.labels), **extra)
        model = apply_precision(model, setup.plan)
        compile_model(
            model,
            _learning_rate(keras, options, data.steps),
            options.label_smoothing,
            setup.plan,
            distill=data.distill,
            optimizer=options.optimizer,
            weight_decay=options.weight_decay,
        )
    return model, RunState(options.to_dict())


def _check_resume(setup: _Setup, data: _RunData) -> tuple[Any, RunState]:
    """Load the last checkpoint and the state saved with it, cut to its finished epochs."""
    _, keras = tf_and_keras()
    paths = setup.paths
    state = RunState.load(paths)
    with setup.distribution.strategy.scope():
        model = keras.models.load_model(
            paths.checkpoint(state, "last"), custom_objects=data.distill, compile=True
        )
        _replan_schedule(keras, model, setup.options, data.steps)
    state.epoch = epochs_in(model, state.epoch, data.steps)
    state.read_history(paths)
    return model, state


def _prepare_run_folder(setup: _Setup, data: _RunData) -> None:
    """Create a new run's folder and plot its class distribution (the chief only)."""
    paths, labels = setup.paths, data.labels
    paths.out.mkdir(parents=True, exist_ok=True)
    paths.checkpoints.mkdir(exist_ok=True)
    counts = {
        "train (fit)": _counts(data.fit_split, labels),
        "train (select)": _counts(data.select_split, labels),
    }
    for name in ("val", "test"):
        if name in data.dataset.splits:
            counts[name] = data.dataset.counts(name)
    plots.plot_class_distribution(counts, paths.out / "class_distribution.png")


def _do_train(
    setup: _Setup, data: _RunData, model: Any, state: RunState, verbose: int | None
) -> None:
    """Fit from ``state.epoch`` to ``options.epochs``, checkpointing every finished epoch.

    Raises:
        Interrupted: Ctrl-C or SIGTERM, once the last finished epoch is checkpointed.
    """
    _, keras = tf_and_keras()
    options, paths = setup.options, setup.paths
    state.start_session()
    params, macs = int(model.count_params()), count_macs(model)
    checkpoint_meta = ModelMeta(
        data.labels, setup.spec, name=options.model, extra={"params": params, "macs": macs}
    )
    callbacks = [
        # First, so the checkpoint callback records images/s in the history.
        throughput_callback(keras, len(data.fit_split)),
        checkpoint_callback(keras, paths, state, checkpoint_meta, setup.chief),
    ]
    if setup.chief:
        callbacks.append(keras.callbacks.TensorBoard(str(paths.logs), profile_batch=0))
    if options.schedule == "plateau":
        callbacks.append(keras.callbacks.ReduceLROnPlateau("val_loss", factor=0.5, patience=5))
    if options.patience:
        callbacks.append(
            keras.callbacks.EarlyStopping("val_accuracy", patience=options.patience, mode="max")
        )
    weights = (
        class_weights(data.fit_split.labels, len(data.labels), options.class_weight)
        if options.class_weight
        else None
    )
    if verbose is None:
        verbose = 1 if sys.stderr.isatty() else 2
    todo = (
        f"epochs {state.epoch + 1}-{options.epochs}"
        if state.epoch < options.epochs
        else f"all {options.epochs} epochs done, writing the reports"
    )
    print(
        f"{options.model}: {params:,} params, {macs / 1e6:.1f} M MACs; "
        f"fit {len(data.fit_split)}, select {len(data.select_split)}; {todo}; "
        f"{setup.distribution.describe()}, batch {options.batch_size}; {setup.plan.describe()}"
        + (
            f"; distilling from {len(options.distill.teachers)} teacher(s)"
            if options.distill
            else ""
        ),
        file=sys.stderr,
    )
    with graceful_interrupt(keras) as (stopper, requested):
        try:
            model.fit(
                data.train_ds,
                validation_data=data.select_ds,
                epochs=options.epochs,
                initial_epoch=state.epoch,
                class_weight=weights,
                callbacks=[*callbacks, stopper],
                verbose=verbose,
            )
        except KeyboardInterrupt:
            requested.request()
    if requested.requested:
        print(
            f"interrupted: epoch {state.epoch} is checkpointed in {paths.checkpoints}; "
            f"continue with: fer-edge train --out {paths.out} --resume",
            file=sys.stderr,
        )
        raise Interrupted(requested.signum)


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

    fit_targets, select_targets = joint_targets(
        dataset, (fit, select), options.joint_labels, options.joint_mix
    )
    return fit_targets, select_targets


def _split_for_selection(train: Split, options: TrainOptions) -> tuple[Split, Split]:
    fit_idx, select_idx = stratified_split(train.labels, options.select_fraction, options.seed)
    return train.subset(fit_idx), train.subset(select_idx)


def _evaluate(
    model: Any, split: Split, spec: InputSpec, labels: tuple[str, ...]
) -> ClassificationMetrics:
    probs = model.predict(to_inputs(split.images, spec), batch_size=256, verbose=0)
    return classification_metrics(split.labels, np.argmax(probs, axis=1), labels)


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
    state = RunState.load(paths)
    history = read_run_json(paths.history)
    checkpoint = keras.models.load_model(paths.checkpoint(state, "best"), compile=False)
    best = to_float32(checkpoint)
    labels = dataset.classes
    fit_split, select_split = _split_for_selection(dataset.split("train"), options)
    shift = None
    if options.logit_adjust:
        from fer_edge.train.adjust import fold_into_last_layer, logit_shift

        shift = logit_shift(
            fit_split.labels, len(labels), options.logit_adjust, options.logit_adjust_below
        )
        # In memory only: the checkpoint file keeps the model as trained.
        fold_into_last_layer(best, shift)
    select_metrics = _evaluate(best, select_split, spec, labels)
    metrics: ClassificationMetrics | None = None
    if options.eval_split in dataset.splits:
        metrics = _evaluate(best, dataset.split(options.eval_split), spec, labels)
    params, macs = int(best.count_params()), count_macs(best)
    meta = ModelMeta(
        labels,
        spec,
        name=options.model,
        extra={
            "params": params,
            "macs": macs,
            "best_epoch": state.best_epoch,
            "label_set": dataset.label_set,
            **({"logit_shift": [round(float(v), 4) for v in shift]} if shift is not None else {}),
        },
    )
    with atomic_path(paths.model) as tmp:
        if best is checkpoint and shift is None:  # the checkpoint's bytes, as trained
            shutil.copyfile(paths.best, tmp)
        else:
            best.save(tmp)
        add_to_zip_model(tmp, meta, replace=True)
    report = {
        "model": options.model,
        "params": params,
        "macs": macs,
        "epochs_run": state.epoch,
        "best_epoch": state.best_epoch,
        "wall_time_s": round(state.wall_time_s, 1),
        "logit_shift": None if shift is None else dict(zip(labels, shift.tolist(), strict=True)),
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
        state.epoch,
        state.best_epoch,
        state.wall_time_s,
        params,
        macs,
    )
