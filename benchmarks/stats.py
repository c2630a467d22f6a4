"""Summary statistics for latency samples: pure numpy, no runtime needed."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

NS_PER_MS = 1_000_000


@dataclass(frozen=True)
class LatencyStats:
    """Summary of repeated timings, in milliseconds.

    Attributes:
        n: number of timed calls (warm-up calls are not included).
        median_ms: the median, the headline number (robust to the odd slow call).
        p90_ms: the 90th percentile (linear interpolation between samples).
        mean_ms: the arithmetic mean.
        min_ms: the fastest call.
        max_ms: the slowest call.
        std_ms: the population standard deviation.
    """

    n: int
    median_ms: float
    p90_ms: float
    mean_ms: float
    min_ms: float
    max_ms: float
    std_ms: float

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return asdict(self)


def percentile(values: Sequence[float] | np.ndarray, q: float) -> float:
    """Return the ``q``-th percentile (0-100) with linear interpolation.

    Raises:
        ValueError: ``values`` is empty or ``q`` is outside [0, 100].
    """
    data = np.asarray(values, dtype=np.float64)
    if data.size == 0:
        raise ValueError("percentile of no values")
    if not 0.0 <= q <= 100.0:
        raise ValueError(f"percentile must be within 0-100, got {q}")
    return float(np.percentile(data, q, method="linear"))


def summarize_ns(samples_ns: Sequence[int] | np.ndarray) -> LatencyStats:
    """Summarise timings given in nanoseconds (as from ``time.perf_counter_ns``).

    Raises:
        ValueError: no samples.
    """
    ms = np.asarray(samples_ns, dtype=np.float64) / NS_PER_MS
    if ms.size == 0:
        raise ValueError("no latency samples to summarise")
    return LatencyStats(
        n=int(ms.size),
        median_ms=float(np.median(ms)),
        p90_ms=percentile(ms, 90.0),
        mean_ms=float(ms.mean()),
        min_ms=float(ms.min()),
        max_ms=float(ms.max()),
        std_ms=float(ms.std()),
    )


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    """Return ``numerator / denominator``, or ``None`` when either is missing or the base is 0.

    Ratios compare a model with its float parent (int8 / float); ``None`` means "no pair",
    which reports show as an empty cell rather than a misleading number.
    """
    if numerator is None or denominator is None or denominator == 0:
        return None
    return float(numerator) / float(denominator)


def difference(value: float | None, reference: float | None) -> float | None:
    """Return ``value - reference``, or ``None`` when either is missing."""
    if value is None or reference is None:
        return None
    return float(value) - float(reference)
