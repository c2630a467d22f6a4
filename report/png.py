"""``fer-edge report --png``: the report's figures as PNG files, when matplotlib is installed.

The device install has no matplotlib (the HTML report needs none); a workstation with the
train extra has it. Imported only when ``--png`` is asked for.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from fer_edge.atomic import atomic_path
from fer_edge.report.html import MAX_DRAWN_TRACKS
from fer_edge.report.recording import Recording, Track
from fer_edge.report.svgchart import class_colors

if TYPE_CHECKING:
    from matplotlib.figure import Figure


class MatplotlibMissing(Exception):  # noqa: N818 - a missing optional library, not a bug
    """matplotlib cannot be imported."""


def _file_name(run_index: int, recording: Recording, track: Track) -> str:
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(recording.name).stem) or "run"
    return f"{run_index + 1:02d}-{stem}-{track.key.replace(' ', '')}.png"


def _track_figure(recording: Recording, track: Track) -> Figure:
    from matplotlib.figure import Figure

    classes = recording.classes
    colors = class_colors(classes)
    shares = track.shares(classes)
    fig = Figure(figsize=(10, 3.4), dpi=100, layout="constrained")
    timeline, bar = fig.subplots(2, 1, height_ratios=[5, 1])
    for seg in track.segments():
        times, seconds, probs = track.times[seg], track.seconds[seg], track.probs[seg]
        # Steps: each sample holds for its duration, as in the HTML report.
        edges = np.append(times, times[-1] + seconds[-1])
        top = np.cumsum(probs, axis=1)
        top = np.vstack([top, top[-1:]])
        for c, name in enumerate(classes):
            lower = top[:, c - 1] if c else np.zeros(len(edges))
            timeline.fill_between(
                edges, lower, top[:, c], step="post", color=colors[name], linewidth=0
            )
    timeline.set_xlim(recording.t_start, recording.t_end)
    timeline.set_ylim(0, 1)
    timeline.set_xlabel("time (s)")
    timeline.set_ylabel("probability")
    timeline.set_title(f"{recording.name}: {track.key}, {track.samples} frames", fontsize=10)
    left = 0.0
    for name in classes:
        share = shares[name]
        bar.barh(0, share, left=left, color=colors[name], label=f"{name} {share:.0%}")
        if share >= 0.06:
            bar.text(left + share / 2, 0, f"{name} {share:.0%}", ha="center", va="center")
        left += share
    bar.set_xlim(0, 1)
    bar.set_axis_off()
    fig.legend(loc="outside right upper", fontsize=8, frameon=False)
    return fig


def write_pngs(recordings: Sequence[Recording], folder: str | os.PathLike[str]) -> list[Path]:
    """Write one PNG per drawn face of every run into ``folder``; return the paths.

    Raises:
        MatplotlibMissing: matplotlib is not installed.
    """
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise MatplotlibMissing("matplotlib is not installed (pip install matplotlib)") from None
    out = Path(folder)
    written = []
    for i, recording in enumerate(recordings):
        for track in recording.tracks[:MAX_DRAWN_TRACKS]:
            path = out / _file_name(i, recording, track)
            fig = _track_figure(recording, track)
            with atomic_path(path) as tmp:
                fig.savefig(tmp, format="png")
            written.append(path)
    return written
