"""What ``fer-edge convert`` should do: typed options, checked before any slow work starts."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from fer_edge.errors import FerEdgeError
from fer_edge.runtime import check_runtime_name
from fer_edge.train.inputs import AugmentOptions

#: Post-training quantisation baselines (``--ptq``).
PTQ_CHOICES: tuple[str, ...] = ("dynamic", "float16", "int8")

#: ``--strategy`` choices of conversion: one machine (fine-tuning is short).
CONVERT_STRATEGIES: tuple[str, ...] = ("auto", "one", "mirrored")


@dataclass(frozen=True)
class FineTuneOptions:
    """How pruning and quantisation-aware training fine-tune a trained model.

    Attributes:
        epochs: epochs of fine-tuning (pruning and QAT each get this many).
        lr: Adam learning rate; low, because the model is already trained.
        batch_size: training batch size.
        augment: training augmentation (``None``: the train pipeline's defaults).
        verbose: Keras ``fit`` verbosity (0 silent, 1 progress bar, 2 one line per epoch).
        class_weight: class-weight power, as ``fer-edge train --class-weight`` (0: off); give
            the model's training value so fine-tuning keeps its balance between classes.
    """

    epochs: int = 3
    lr: float = 1e-4
    batch_size: int = 64
    augment: AugmentOptions | None = None
    verbose: int = 0
    class_weight: float = 0.0


@dataclass(frozen=True)
class ConvertOptions:
    """One ``fer-edge convert`` run.

    Attributes:
        model: the trained Keras model (``runs/NAME/model.keras``).
        data: the dataset folder or FER2013 CSV; ``train`` fine-tunes and calibrates,
            ``val`` judges (carved from ``train`` when missing).
        out: output folder (``None``: ``models/<name>``).
        name: file-name prefix of every output (``None``: the model's metadata name).
        int8: export a full-integer model made by quantisation-aware training.
        prune: target sparsity (e.g. 0.5) of magnitude pruning, or ``None``.
        ptq: post-training baselines to export, from :data:`PTQ_CHOICES`.
        fine_tune: fine-tuning settings for pruning and QAT.
        representative: training faces used to calibrate post-training int8.
        classes: class spec that must match the model's labels (``None``: the model's).
        seed: seed of fine-tuning, calibration sampling and a carved val split.
        val_fraction: share of ``train`` carved out as ``val`` when there is none.
        edgetpu: also compile every int8 output with ``edgetpu_compiler``.
        runtime: TFLite runtime used to evaluate the outputs (see :mod:`fer_edge.runtime`).
        threads: interpreter threads for evaluation (``None``: runtime default).
        progress: show progress bars while loading data.
        strategy: ``tf.distribute`` strategy of the fine-tuning, from
            :data:`CONVERT_STRATEGIES` (see :func:`fer_edge.train.distribute.make_distribution`).
        precision: must be ``float32``: tfmot's pruning and QAT wrappers have no
            mixed-precision support, so ``mixed`` is refused.
    """

    model: Path
    data: Path
    out: Path | None = None
    name: str | None = None
    int8: bool = False
    prune: float | None = None
    ptq: tuple[str, ...] = ()
    fine_tune: FineTuneOptions = field(default_factory=FineTuneOptions)
    representative: int = 300
    classes: str | None = None
    seed: int = 0
    val_fraction: float = 0.1
    edgetpu: bool = False
    runtime: str = "auto"
    threads: int | None = None
    progress: bool = False
    strategy: str = "one"
    precision: str = "float32"

    def validate(self) -> None:
        """Check every option; raise :class:`FerEdgeError` naming the flag at fault."""
        if self.prune is not None and not 0.0 < self.prune < 1.0:
            raise FerEdgeError(f"--prune: sparsity must be between 0 and 1, got {self.prune}")
        unknown = [p for p in self.ptq if p not in PTQ_CHOICES]
        if unknown:
            raise FerEdgeError(
                f"--ptq: unknown method {', '.join(unknown)}; choose from {', '.join(PTQ_CHOICES)}"
            )
        if len(set(self.ptq)) != len(self.ptq):
            raise FerEdgeError(f"--ptq: repeated method in {', '.join(self.ptq)}")
        tune = self.fine_tune
        if (self.int8 or self.prune is not None) and tune.epochs < 1:
            raise FerEdgeError(
                f"--epochs: pruning and QAT need at least 1 epoch, got {tune.epochs}"
            )
        if not (tune.lr > 0 and math.isfinite(tune.lr)):
            raise FerEdgeError(f"--lr: learning rate must be positive, got {tune.lr}")
        if tune.batch_size < 1:
            raise FerEdgeError(f"--batch-size: must be at least 1, got {tune.batch_size}")
        if self.representative < 1:
            raise FerEdgeError(f"--representative: must be at least 1, got {self.representative}")
        if self.edgetpu and not self.makes_int8:
            raise FerEdgeError(
                "--edgetpu: the Edge TPU runs only full-integer models; add --int8 or --ptq int8"
            )
        check_runtime_name(self.runtime)
        if self.strategy not in CONVERT_STRATEGIES:
            raise FerEdgeError(
                f"--strategy: convert runs on one machine; choose from "
                f"{', '.join(CONVERT_STRATEGIES)}, not {self.strategy!r}"
            )
        if self.precision != "float32":
            raise FerEdgeError(
                f"--precision {self.precision}: pruning and quantisation-aware training run in "
                "float32 only (tfmot has no mixed-precision support); drop the flag"
            )
        if self.name is not None and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", self.name):
            raise FerEdgeError(
                f"--name: {self.name!r} is not a plain file-name prefix (letters, digits, . _ -)"
            )

    @property
    def makes_int8(self) -> bool:
        """True if the run exports at least one full-integer model."""
        return self.int8 or "int8" in self.ptq
