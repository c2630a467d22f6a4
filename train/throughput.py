"""Side-by-side training throughput (images/s), what ``benchmarks/train_throughput.py`` runs.

Every case (model, strategy, precision, XLA) is built once, then timed one epoch at a time in
interleaved rounds, so a load spike from another process hits all cases of a round alike.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from fer_edge.preprocess import InputSpec
from fer_edge.runtime import load_average
from fer_edge.synthetic import synthetic_images
from fer_edge.tfcompat import tf_and_keras
from fer_edge.train.callbacks import throughput_callback
from fer_edge.train.distribute import Distribution, make_distribution
from fer_edge.train.inputs import AugmentOptions, make_dataset
from fer_edge.train.models import get_family
from fer_edge.train.precision import apply_precision, plan_precision
from fer_edge.train.trainer import compile_model

Log = Callable[[str], None]

#: Seed of the generated data, weights and shuffling.
SEED = 0


@dataclass(frozen=True)
class ThroughputCase:
    """One configuration to time.

    Attributes:
        model: registry name.
        precision: ``float32`` or ``mixed`` (see :mod:`fer_edge.train.precision`).
        strategy: ``one`` or ``mirrored`` (``multi-worker`` needs several processes).
        jit: compile the train step with XLA (``jit_compile=True``).
        model_options: builder options, e.g. ``{"width": 1.5}``.
    """

    model: str
    precision: str = "float32"
    strategy: str = "one"
    jit: bool = False
    model_options: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """Return e.g. ``edge mixed one`` (``+xla`` when jit)."""
        opts = ",".join(f"{k}={v}" for k, v in self.model_options.items())
        name = f"{self.model}({opts})" if opts else self.model
        return f"{name} {self.precision} {self.strategy}{' +xla' if self.jit else ''}"


@dataclass
class ThroughputResult:
    """Images/s of one case over the timed rounds.

    Attributes:
        case: what was timed.
        replicas: replicas of its strategy.
        rounds: training images/s (wall clock) of each timed epoch, in round order.
        cpu_rounds: images per CPU-second of this process (all its threads) in each epoch:
            steadier than wall time when other processes share the cores.
        ratio: median over the median of the baseline (the first case of the same model and
            model options).
        cpu_ratio: the same for images per CPU-second.
    """

    case: ThroughputCase
    replicas: int
    rounds: list[float]
    cpu_rounds: list[float] = field(default_factory=list)
    ratio: float = 1.0
    cpu_ratio: float = 1.0

    @property
    def median(self) -> float:
        """Median images/s over the rounds."""
        return float(np.median(self.rounds))

    @property
    def cpu_median(self) -> float:
        """Median images per CPU-second over the rounds."""
        return float(np.median(self.cpu_rounds)) if self.cpu_rounds else float("nan")

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {
            **asdict(self.case),
            "label": self.case.label,
            "replicas": self.replicas,
            "images_per_s": [round(r, 1) for r in self.rounds],
            "median_images_per_s": round(self.median, 1),
            "ratio": round(self.ratio, 3),
            "images_per_cpu_s": [round(r, 1) for r in self.cpu_rounds],
            "median_images_per_cpu_s": round(self.cpu_median, 1),
            "cpu_ratio": round(self.cpu_ratio, 3),
        }


def _compiled(case: ThroughputCase, distribution: Distribution) -> Any:
    family = get_family(case.model)
    plan = plan_precision(case.precision)
    spec = InputSpec(channels=family.channels)
    with distribution.strategy.scope():
        model = family.builder((spec.height, spec.width, spec.channels), 7, **case.model_options)
        model = apply_precision(model, plan)
        compile_model(model, 1e-3, plan=plan, jit_compile=case.jit)
    return model


def measure_throughput(
    cases: Sequence[ThroughputCase],
    *,
    batch_size: int = 64,
    steps: int = 25,
    rounds: int = 5,
    augment: AugmentOptions | None = None,
    log: Log | None = None,
) -> list[ThroughputResult]:
    """Time training epochs of every case, interleaved, on generated 48x48 faces.

    The data goes through the training pipeline (:func:`make_dataset`, with augmentation and
    random erasing at 0.25 unless ``augment`` says otherwise), so input work is included.

    Args:
        cases: configurations; the first case of each model is the baseline of its ratios.
        batch_size: global batch size.
        steps: batches per timed epoch.
        rounds: timed epochs per case (after one warm-up epoch each).
        augment: augmentation options.
        log: receives one line per round.
    """
    _, keras = tf_and_keras()
    augment = augment if augment is not None else AugmentOptions(erase=0.25)
    count = batch_size * steps
    images, labels = synthetic_images(-(-count // 7), seed=SEED)
    images, labels = images[:count], labels[:count]
    distributions: dict[str, Distribution] = {}
    built = []
    for case in cases:
        keras.utils.set_random_seed(SEED)
        if case.strategy not in distributions:
            distributions[case.strategy] = make_distribution(case.strategy)
        distribution = distributions[case.strategy]
        spec = InputSpec(channels=get_family(case.model).channels)
        data = make_dataset(images, labels, spec, 7, batch_size, True, augment, SEED)
        model = _compiled(case, distribution)
        model.fit(data, epochs=1, verbose=0)  # warm-up: tracing, oneDNN primitive caches
        built.append((model, data, ThroughputResult(case, distribution.replicas, [])))
    for r in range(rounds):
        for model, data, result in built:
            timer = throughput_callback(keras, count)
            cpu = time.process_time()
            history = model.fit(data, epochs=1, verbose=0, callbacks=[timer])
            result.cpu_rounds.append(count / max(time.process_time() - cpu, 1e-9))
            result.rounds.append(float(history.history["images_per_s"][-1]))
        if log is not None:
            line = ", ".join(f"{res.case.label} {res.rounds[-1]:.0f}" for _, _, res in built)
            log(f"round {r + 1}/{rounds} (load {load_average()}): {line}")
    results = [result for _, _, result in built]
    baselines: dict[tuple[str, str], ThroughputResult] = {}
    for result in results:
        key = (result.case.model, repr(sorted(result.case.model_options.items())))
        baseline = baselines.setdefault(key, result)
        result.ratio = result.median / baseline.median
        result.cpu_ratio = result.cpu_median / baseline.cpu_median
    return results
