"""Latency of one model: invoke-only and end-to-end per face, warm-up then timed repeats.

*Invoke-only* times ``interpreter.invoke()`` on an input tensor set beforehand: the number a
runtime's own benchmark tool reports. *End-to-end* times what the device does per face:
:meth:`FaceClassifier.probabilities` on a face crop (resize, gray, normalise, quantise,
set the tensor, invoke, read and dequantise the output).

Models measured together are timed in interleaved rounds, so a load spike from another process
hits every model alike and the int8/float ratios stay fair on a busy machine.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from fer_edge.classifier import FaceClassifier
from fer_edge.evaluate import EvalSet
from fer_edge.labels import FER2013_CLASSES
from fer_edge.synthetic import synthetic_images
from fer_edge.timing import LatencyStats


@dataclass(frozen=True)
class LatencyResult:
    """Timings of one model under one runtime and thread count.

    Attributes:
        invoke: ``interpreter.invoke()`` alone.
        end_to_end: one face crop to dequantised probabilities.
    """

    invoke: LatencyStats
    end_to_end: LatencyStats

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        # ``n`` is the bench schema's name for the count, kept: keys are never renamed.
        return {
            name: {"n": stats.count, **stats.to_dict()}
            for name, stats in (("invoke", self.invoke), ("end_to_end", self.end_to_end))
        }


def make_crops(faces: np.ndarray, size: int) -> list[np.ndarray]:
    """Turn stored gray faces into BGR crops of ``size`` pixels, like a camera's face crops.

    ``size == 0`` returns the faces unchanged (gray, as stored), so the end-to-end time then
    excludes resizing and colour conversion.
    """
    if size <= 0:
        return [np.ascontiguousarray(face) for face in faces]
    resized = (cv2.resize(face, (size, size), interpolation=cv2.INTER_LINEAR) for face in faces)
    return [cv2.cvtColor(face, cv2.COLOR_GRAY2BGR) for face in resized]


class ModelTimer:
    """Times one classifier; the caller decides how many calls and in which order."""

    def __init__(self, classifier: FaceClassifier, interpreter: Any, crops: Sequence[np.ndarray]):
        """Prepare the inputs once, outside any timed region.

        Args:
            classifier: the classifier timed end to end.
            interpreter: a second interpreter of the same model, runtime and threads, timed
                invoke-only (kept apart so the classifier's state is not touched).
            crops: face crops cycled through by both measurements.
        """
        if not crops:
            raise ValueError("latency needs at least one face crop")
        self.classifier = classifier
        self._interp = interpreter
        self._input_index = interpreter.get_input_details()[0]["index"]
        self._crops = list(crops)
        self._tensors = [classifier.prepare(crop) for crop in self._crops]
        self._invoke_ns: list[int] = []
        self._e2e_ns: list[int] = []
        self._i = 0

    def warm_up(self, calls: int) -> None:
        """Run untimed calls of both kinds (first invokes allocate and pack weights)."""
        for _ in range(calls):
            self._interp.set_tensor(self._input_index, self._tensors[self._i % len(self._tensors)])
            self._interp.invoke()
            self.classifier.probabilities(self._crops[self._i % len(self._crops)])
            self._i += 1

    def run(self, calls: int) -> None:
        """Time ``calls`` invoke-only calls, then ``calls`` end-to-end calls."""
        clock = time.perf_counter_ns
        interp, index = self._interp, self._input_index
        for _ in range(calls):
            interp.set_tensor(index, self._tensors[self._i % len(self._tensors)])
            start = clock()
            interp.invoke()
            self._invoke_ns.append(clock() - start)
            self._i += 1
        probabilities = self.classifier.probabilities
        for _ in range(calls):
            crop = self._crops[self._i % len(self._crops)]
            start = clock()
            probabilities(crop)
            self._e2e_ns.append(clock() - start)
            self._i += 1

    def result(self) -> LatencyResult:
        """Summarise the timed calls so far."""
        return LatencyResult(
            LatencyStats.from_ns(self._invoke_ns), LatencyStats.from_ns(self._e2e_ns)
        )


def split_repeats(repeats: int, rounds: int) -> list[int]:
    """Split ``repeats`` calls into ``rounds`` near-equal positive chunks."""
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    rounds = max(1, min(rounds, repeats))
    base, extra = divmod(repeats, rounds)
    return [base + (1 if i < extra else 0) for i in range(rounds)]


def measure_interleaved(
    timers: Sequence[ModelTimer], warmup: int, repeats: int, rounds: int = 1
) -> list[LatencyResult]:
    """Warm every timer up, then time them round-robin.

    Args:
        timers: one per model (same runtime and thread count).
        warmup: untimed calls per model before timing.
        repeats: timed calls per model and per kind.
        rounds: how many slices the repeats are cut into, taking turns between models.

    Returns:
        One :class:`LatencyResult` per timer, in order.
    """
    for timer in timers:
        timer.warm_up(warmup)
    for chunk in split_repeats(repeats, rounds):
        for timer in timers:
            timer.run(chunk)
    return [timer.result() for timer in timers]


def latency_faces(eval_set: EvalSet | None, count: int, seed: int = 0) -> np.ndarray:
    """Pick ``count`` faces to time with: from the split if there is one, else generated ones.

    Generated faces keep ``fer-edge bench`` doing real work on a machine without a dataset;
    latency does not depend on what the pixels show.
    """
    if eval_set is not None and len(eval_set.images):
        rng = np.random.default_rng(seed)
        size = min(count, len(eval_set.images))
        pick = rng.choice(len(eval_set.images), size=size, replace=False)
        return eval_set.images[np.sort(pick)]
    per_class = -(-count // len(FER2013_CLASSES))
    images, _ = synthetic_images(per_class, seed=seed)
    return images[np.random.default_rng(seed).permutation(len(images))[:count]]
