"""Timings: one summary type for latency samples, and the bounded per-stage samples of a loop.

:class:`LatencyStats` summarises repeated timings for the device loop's summary and for the
benchmark alike; :class:`StageTimings` is what a running loop records into (the pipeline adds
detect and classify samples, the loop capture and output) and what the live view reads.
Pure numpy: no runtime needed.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

NS_PER_MS = 1_000_000
#: Timing samples kept per stage: the latest ones, so a service running for days keeps a
#: fixed memory footprint (about 1 MB) and reports recent timings.
MAX_SAMPLES = 20_000


@dataclass(frozen=True)
class LatencyStats:
    """Summary of repeated timings, in milliseconds.

    Attributes:
        count: samples summarised (warm-up calls are not included).
        median_ms: the median, the headline number (robust to the odd slow call).
        p90_ms: the 90th percentile (linear interpolation between samples).
        mean_ms: the arithmetic mean.
        min_ms: the fastest call.
        max_ms: the slowest call.
        std_ms: the population standard deviation.
        total_ms: the sum over the samples.
    """

    count: int
    median_ms: float
    p90_ms: float
    mean_ms: float
    min_ms: float
    max_ms: float
    std_ms: float
    total_ms: float

    @classmethod
    def from_ms(cls, samples_ms: Sequence[float] | np.ndarray) -> LatencyStats:
        """Summarise samples given in milliseconds (all zero when there are none)."""
        ms = np.asarray(samples_ms, dtype=np.float64)
        if ms.size == 0:
            return cls(0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
        return cls(
            count=int(ms.size),
            median_ms=float(np.median(ms)),
            p90_ms=float(np.percentile(ms, 90.0, method="linear")),
            mean_ms=float(ms.mean()),
            min_ms=float(ms.min()),
            max_ms=float(ms.max()),
            std_ms=float(ms.std()),
            total_ms=float(ms.sum()),
        )

    @classmethod
    def from_seconds(cls, samples: Sequence[float] | np.ndarray) -> LatencyStats:
        """Summarise samples given in seconds (as from ``time.perf_counter``)."""
        return cls.from_ms(np.asarray(samples, dtype=np.float64) * 1000.0)

    @classmethod
    def from_ns(cls, samples_ns: Sequence[int] | np.ndarray) -> LatencyStats:
        """Summarise samples given in nanoseconds (as from ``time.perf_counter_ns``).

        Raises:
            ValueError: no samples (a benchmark that timed nothing is a bug, not a zero).
        """
        ms = np.asarray(samples_ns, dtype=np.float64) / NS_PER_MS
        if ms.size == 0:
            raise ValueError("no latency samples to summarise")
        return cls.from_ms(ms)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return asdict(self)


class StageTimings:
    """Seconds per stage of a running loop, the latest :data:`MAX_SAMPLES` of each.

    The loop creates it and owns it; the parts it drives add their samples, and readers (the
    live view) take recent ones on the loop's thread.
    """

    def __init__(self, stages: Sequence[str], max_samples: int = MAX_SAMPLES):
        """Start with no samples for each of ``stages`` (report order)."""
        self.stages: tuple[str, ...] = tuple(stages)
        self._samples: dict[str, deque[float]] = {
            name: deque(maxlen=max_samples) for name in self.stages
        }

    def add(self, stage: str, seconds: float) -> None:
        """Record one sample of ``stage``.

        Raises:
            KeyError: ``stage`` is not one of :attr:`stages`.
        """
        self._samples[stage].append(seconds)

    def count(self, stage: str) -> int:
        """Return how many samples of ``stage`` are kept."""
        return len(self._samples[stage])

    def recent(self, stage: str, n: int) -> list[float]:
        """Return the newest ``n`` samples of ``stage``, oldest first."""
        samples = self._samples[stage]
        # Index from the end: a deque is cheap to read at its ends, slow in the middle.
        return [samples[i] for i in range(-min(n, len(samples)), 0)]

    def stats(self) -> dict[str, LatencyStats]:
        """Return each stage's summary, in :attr:`stages` order."""
        return {name: LatencyStats.from_seconds(list(s)) for name, s in self._samples.items()}
