"""Inline SVG charts made with the standard library: a stacked probability timeline, a share bar.

The report must render on a Pi with only the device install and no network, so no plotting
library and no script: plain SVG elements that every browser draws.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from fer_edge.faces import DEFAULT_COLOR, LABEL_COLORS

#: Colours for classes that :data:`~fer_edge.faces.LABEL_COLORS` does not name, in turn.
EXTRA_COLORS: tuple[str, ...] = ("#4c9be8", "#e8894c", "#8fd14f", "#d14fb0", "#4fd1c5", "#b0a14f")
#: Most steps drawn per track; longer tracks are averaged over consecutive samples.
MAX_STEPS = 600


def _hex(bgr: tuple[int, int, int]) -> str:
    b, g, r = bgr
    return f"#{r:02x}{g:02x}{b:02x}"


def class_colors(classes: Sequence[str]) -> dict[str, str]:
    """Return a CSS colour per class: the annotated video's box colours, then a palette."""
    extra = iter(EXTRA_COLORS)
    return {
        name: _hex(LABEL_COLORS[name]) if name in LABEL_COLORS else next(extra, _hex(DEFAULT_COLOR))
        for name in classes
    }


@dataclass(frozen=True)
class ChartBox:
    """The plotting area of a chart, in SVG pixels.

    Attributes:
        width: the whole chart's width.
        height: the whole chart's height.
        left: room for the y axis labels.
        right: right margin.
        top: top margin.
        bottom: room for the x axis labels.
    """

    width: int = 900
    height: int = 190
    left: int = 46
    right: int = 12
    top: int = 8
    bottom: int = 30

    @property
    def plot_width(self) -> float:
        """Width of the plotting area."""
        return self.width - self.left - self.right

    @property
    def plot_height(self) -> float:
        """Height of the plotting area."""
        return self.height - self.top - self.bottom


def nice_step(span: float, max_ticks: int = 8) -> float:
    """Return a 1, 2 or 5 times a power of ten step giving at most ``max_ticks`` ticks."""
    if span <= 0:
        return 1.0
    raw = span / max_ticks
    power = 10.0 ** math.floor(math.log10(raw))
    return next(m * power for m in (1, 2, 5, 10) if m * power >= raw)


def _fmt_seconds(value: float, step: float) -> str:
    digits = max(0, -math.floor(math.log10(step))) if step < 1 else 0
    return f"{value:.{digits}f}"


def _steps(
    times: np.ndarray, seconds: np.ndarray, probs: np.ndarray, max_steps: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return ``(starts, ends, probs)`` of at most ``max_steps`` steps for one segment.

    Each sample holds from its time for its duration; beyond ``max_steps``, runs of
    consecutive samples are merged into one step with their duration-weighted mean.
    """
    ends = times + seconds
    if len(times) <= max_steps:
        return times, ends, probs
    chunk = math.ceil(len(times) / max_steps)
    starts = times[::chunk]
    last = np.minimum(np.arange(chunk - 1, len(times) + chunk - 1, chunk), len(times) - 1)
    weights = np.maximum(seconds, 1e-9)[:, None]
    sums = np.add.reduceat(probs * weights, np.arange(0, len(times), chunk), axis=0)
    totals = np.add.reduceat(weights, np.arange(0, len(times), chunk), axis=0)
    return starts, ends[last], sums / totals


def timeline_svg(
    times: np.ndarray,
    seconds: np.ndarray,
    probs: np.ndarray,
    segments: Sequence[slice],
    classes: Sequence[str],
    t_range: tuple[float, float],
    box: ChartBox | None = None,
    title: str = "",
) -> str:
    """Return a stacked-area SVG of class probabilities over time.

    Args:
        times: each sample's time in seconds.
        seconds: how long each sample holds.
        probs: ``(samples, classes)`` probabilities; each row is stacked bottom to top in
            ``classes`` order.
        segments: the runs of consecutive samples; gaps between them stay empty.
        classes: class names, in the columns' order.
        t_range: the time axis, ``(start, end)`` seconds (the same for every face of a run).
        box: the chart's size and margins.
        title: the SVG's accessible name.
    """
    box = box or ChartBox()
    colors = class_colors(classes)
    t0, t1 = t_range
    span = max(t1 - t0, 1e-9)

    def x(t: float) -> float:
        return box.left + (min(max(t, t0), t1) - t0) / span * box.plot_width

    def y(p: float) -> float:
        return box.top + (1.0 - p) * box.plot_height

    parts = [
        f'<svg class="timeline" role="img" '
        f'viewBox="0 0 {box.width} {box.height}" width="{box.width}" '
        f'height="{box.height}" aria-label="{html.escape(title)}">',
        f'<rect class="plot" x="{box.left}" y="{box.top}" width="{box.plot_width}" '
        f'height="{box.plot_height}"/>',
    ]
    per_segment = max(1, MAX_STEPS // max(1, len(segments)))
    paths: dict[str, list[str]] = {c: [] for c in classes}
    for seg in segments:
        starts, ends, p = _steps(times[seg], seconds[seg], probs[seg], per_segment)
        top = np.cumsum(p, axis=1)
        bottom = top - p
        xs = [(x(a), x(b)) for a, b in zip(starts, ends, strict=True)]
        for c, name in enumerate(classes):
            upper = " ".join(
                f"{xa:.1f},{y(v):.1f} {xb:.1f},{y(v):.1f}"
                for (xa, xb), v in zip(xs, top[:, c], strict=True)
            )
            lower = " ".join(
                f"{xb:.1f},{y(v):.1f} {xa:.1f},{y(v):.1f}"
                for (xa, xb), v in zip(reversed(xs), bottom[::-1, c], strict=True)
            )
            paths[name].append(f"M{upper} L{lower} Z")
    for name in classes:
        if paths[name]:
            parts.append(
                f'<path class="area" data-label="{html.escape(name)}" '
                f'fill="{colors[name]}" d="{" ".join(paths[name])}"/>'
            )
    parts.extend(_axes(box, t0, t1, x, y))
    parts.append("</svg>")
    return "".join(parts)


def _axes(
    box: ChartBox, t0: float, t1: float, x: Callable[[float], float], y: Callable[[float], float]
) -> list[str]:
    out = []
    bottom = box.top + box.plot_height
    for p in (0.0, 0.5, 1.0):
        out.append(
            f'<line class="grid" x1="{box.left}" x2="{box.left + box.plot_width}" '
            f'y1="{y(p):.1f}" y2="{y(p):.1f}"/>'
            f'<text class="tick" x="{box.left - 6}" y="{y(p) + 4:.1f}" text-anchor="end">'
            f"{p:.0%}</text>"
        )
    step = nice_step(t1 - t0)
    tick = math.ceil(t0 / step) * step
    while tick <= t1 + 1e-9:
        xt = x(tick)
        out.append(
            f'<line class="axis" x1="{xt:.1f}" x2="{xt:.1f}" y1="{bottom}" y2="{bottom + 4}"/>'
            f'<text class="tick" x="{xt:.1f}" y="{bottom + 16}" text-anchor="middle">'
            f"{_fmt_seconds(tick, step)}</text>"
        )
        tick += step
    out.append(
        f'<text class="axis-title" x="{box.left + box.plot_width}" y="{box.height - 2}" '
        f'text-anchor="end">time (s)</text>'
    )
    return out


def share_bar_svg(
    shares: Mapping[str, float], box: ChartBox | None = None, height: int = 16
) -> str:
    """Return a horizontal bar split into each class's share, under a timeline's plot area.

    Args:
        shares: class -> share of time (they sum to 1).
        box: the timeline's size and margins, so the bar lines up with its plot area.
        height: the bar's height.
    """
    box = box or ChartBox()
    colors = class_colors(list(shares))
    parts = [
        f'<svg class="share-bar" viewBox="0 0 {box.width} {height}" width="{box.width}" '
        f'height="{height}" role="img" aria-label="share of time">'
    ]
    left = float(box.left)
    for name, share in shares.items():
        if share <= 0:
            continue
        w = share * box.plot_width
        parts.append(
            f'<rect data-label="{html.escape(name)}" x="{left:.1f}" y="0" width="{w:.1f}" '
            f'height="{height}" fill="{colors[name]}"><title>{html.escape(name)} '
            f"{share:.1%}</title></rect>"
        )
        left += w
    parts.append("</svg>")
    return "".join(parts)
