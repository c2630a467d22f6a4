"""The options of one training run (``fer-edge train``), saved in ``state.json``."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from fer_edge.train.choices import DEFAULT_EPOCHS
from fer_edge.train.distill import DistillOptions
from fer_edge.train.inputs import AugmentOptions

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
        logit_adjust: post-hoc logit adjustment strength folded into model.keras (see
            :mod:`fer_edge.train.adjust`); 0: none. Checkpoints stay unadjusted.
        logit_adjust_below: only classes with a smaller share of the fitting faces are
            adjusted (1: all classes).
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
    logit_adjust: float = 0.0
    logit_adjust_below: float = 1.0

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
