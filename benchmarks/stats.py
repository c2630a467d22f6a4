"""Comparisons between benchmark numbers: ratios and differences that tolerate a missing side.

The latency summary itself is :class:`fer_edge.timing.LatencyStats`, shared with the device
loop.
"""

from __future__ import annotations


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
