"""``fer-edge report``: one self-contained HTML page per set of runs.

For every run: a summary (frames, faces, fps, model, detector, source) and, per face id, a
stacked timeline of the class probabilities over time and the share of time in each
expression. The page holds everything inline (CSS, SVG, a few lines of script that only record
what was drawn), loads nothing and needs no network: it opens from a Pi's disk or an e-mail.
"""

from __future__ import annotations

import html
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import click

from fer_edge import __version__
from fer_edge.atomic import check_output_folder, write_text
from fer_edge.clitypes import FILE
from fer_edge.device.faces import FrameResult
from fer_edge.device.recording import (
    SUMMARY_SUFFIX,
    Recording,
    RecordingBuilder,
    Track,
    read_recording,
    read_summary,
)
from fer_edge.device.sinks import jsonl_record
from fer_edge.device.svgchart import class_colors, share_bar_svg, timeline_svg
from fer_edge.errors import FerEdgeError
from fer_edge.outputs import check_outputs

#: Faces drawn per run, most frames first; the others are listed in a table.
MAX_DRAWN_TRACKS = 24

_STYLE = """
:root { --text: #1d2026; --dim: #5f6773; --line: #dde1e6; --card: #ffffff; --bg: #f4f5f7; }
* { box-sizing: border-box; }
body { margin: 0; padding: 16px 24px 32px; background: var(--bg); color: var(--text);
       font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
h1 { font-size: 20px; margin: 0 0 2px; }
h2 { font-size: 16px; margin: 0 0 10px; }
h3 { font-size: 14px; margin: 0 0 6px; }
.dim { color: var(--dim); font-weight: normal; }
.run { background: var(--card); border: 1px solid var(--line); border-radius: 8px;
       padding: 14px 16px; margin-top: 16px; }
.track { border-top: 1px solid var(--line); padding-top: 12px; margin-top: 12px; }
table { border-collapse: collapse; font-variant-numeric: tabular-nums; }
th, td { padding: 2px 14px 2px 0; text-align: left; vertical-align: top; }
th { color: var(--dim); font-weight: normal; }
td.num, th.num { text-align: right; }
.swatch { display: inline-block; width: 11px; height: 11px; border-radius: 2px;
          margin-right: 5px; vertical-align: -1px; }
.charts { overflow-x: auto; }
svg { display: block; width: 100%; max-width: 1100px; height: auto; }
svg .plot { fill: #f7f8fa; stroke: var(--line); }
svg .grid { stroke: #c9ced6; stroke-dasharray: 3 3; }
svg .axis { stroke: #8a919c; }
svg .tick, svg .axis-title { font-size: 11px; fill: var(--dim); }
.share-bar { margin: 6px 0 4px; border-radius: 3px; }
.shares th, .shares td { padding: 1px 0 1px 16px; }
.shares th:first-child { padding-left: 0; }
.overall { margin-top: 12px; }
"""

# Records on <body data-*> what the browser drew, so a headless browser's DOM dump can check
# that the charts rendered. The page shows the same without script.
_SELF_CHECK = """
"use strict";
const areas = [...document.querySelectorAll("svg.timeline path.area")];
const drawn = areas.filter((p) => { const b = p.getBBox(); return b.width > 0 && b.height > 0; });
const timelines = new Set(drawn.map((p) => p.closest("svg")));
document.body.dataset.drawnAreas = String(drawn.length);
document.body.dataset.drawnTimelines = String(timelines.size);
for (const face of document.querySelectorAll("article.track")) {
  const boxes = [...face.querySelectorAll("path.area")].map((p) => p.getBBox());
  const wide = boxes.filter((b) => b.width > 0);
  if (wide.length) {
    face.dataset.drawnX0 = Math.min(...wide.map((b) => b.x)).toFixed(1);
    face.dataset.drawnX1 = Math.max(...wide.map((b) => b.x + b.width)).toFixed(1);
  }
}
"""


def _e(value: object) -> str:
    return html.escape(str(value))


def _seconds(value: float) -> str:
    return f"{value:.1f} s" if value >= 10 else f"{value:.2f} s"


def summary_rows(recording: Recording) -> list[tuple[str, str, str]]:
    """Return the run summary as ``(key, caption, text)`` rows, in display order."""
    s: Mapping[str, Any] = recording.summary or {}
    unknown = f"unknown (no {SUMMARY_SUFFIX} beside the JSONL)"
    source = s.get("source") or (
        recording.sources[0]
        if len(recording.sources) == 1
        else f"{len(recording.sources)} files"
        if recording.sources
        else recording.name
    )
    share = recording.frames_with_faces / recording.frames if recording.frames else 0.0
    sampled = recording.sampled_fps
    rows = [
        ("source", "source", str(source)),
        ("frames", "frames", str(recording.frames)),
        ("frames_with_faces", "frames with faces", f"{recording.frames_with_faces} ({share:.0%})"),
        ("faces", "faces found", str(recording.faces)),
        ("tracks", "face ids", str(len(recording.tracks))),
        (
            "span",
            "time",
            f"{recording.t_start:.2f}-{recording.t_end:.2f} s ({_seconds(recording.span)})",
        ),
        ("sampled_fps", "frames per second of source time", f"{sampled:.1f}" if sampled else "-"),
        ("fps", "processing fps", f"{s['fps']:.1f}" if "fps" in s else unknown),
    ]
    if s:
        kind = " (int8)" if s.get("quantized") else " (float)" if "quantized" in s else ""
        rows += [
            ("model", "model", f"{s.get('model', '?')}{kind}"),
            ("detector", "detector", str(s.get("detector", "?"))),
            ("runtime", "runtime", str(s.get("runtime", "?"))),
            ("stop_reason", "ended by", str(s.get("stop_reason", "?"))),
        ]
    else:
        rows += [("model", "model", unknown), ("detector", "detector", unknown)]
    if recording.bad_lines:
        rows.append(("bad_lines", "lines skipped (not a frame record)", str(recording.bad_lines)))
    return rows


def _mostly(track: Track, classes: Sequence[str]) -> str:
    """The label the face had for the longest time."""
    shares = track.shares(classes)
    return max(shares, key=shares.__getitem__)


def _shares_table(shares: Mapping[str, float], seconds: float) -> str:
    """A column per class: its share of the time and the seconds that makes."""
    colors = class_colors(list(shares))
    head = "".join(
        f'<th class="num"><i class="swatch" style="background:{colors[c]}"></i>{_e(c)}</th>'
        for c in shares
    )
    cells = "".join(
        f'<td class="num share" data-label="{_e(c)}" data-share="{v:.6f}">{v:.1%}</td>'
        for c, v in shares.items()
    )
    times = "".join(f'<td class="num">{_seconds(v * seconds)}</td>' for v in shares.values())
    return (
        f'<table class="shares"><tr><th></th>{head}</tr><tr><th>share of time</th>{cells}</tr>'
        f"<tr><th>time</th>{times}</tr></table>"
    )


def _track_html(recording: Recording, track: Track, index: int) -> str:
    classes = recording.classes
    shares = track.shares(classes)
    top = _mostly(track, classes)
    name = (
        f"Face id {track.face_id}"
        if track.face_id is not None
        else (f"Face at position {track.position}")
    )
    first, last = float(track.times[0]), float(track.times[-1] + track.seconds[-1])
    svg = timeline_svg(
        track.times,
        track.seconds,
        track.probs,
        track.segments(),
        classes,
        (recording.t_start, recording.t_end),
        title=f"{name}: class probabilities over time",
    )
    return (
        f'<article class="track" data-index="{index}" data-track="{_e(track.key)}" '
        f'data-samples="{track.samples}" data-seconds="{track.duration:.6f}">'
        f'<h3>{_e(name)} <span class="dim">seen in {track.samples} frames, '
        f"{_seconds(track.duration)} ({first:.2f}-{last:.2f} s), mostly {_e(top)}</span></h3>"
        f'<div class="charts">{svg}{share_bar_svg(shares)}</div>'
        f"{_shares_table(shares, track.duration)}</article>"
    )


def _other_tracks_html(tracks: Sequence[Track], classes: Sequence[str]) -> str:
    rows = "".join(
        f'<tr data-track="{_e(t.key)}"><td>{_e(t.key)}</td><td class="num">{t.samples}</td>'
        f'<td class="num">{float(t.times[0]):.2f}</td>'
        f"<td>{_e(_mostly(t, classes))}</td></tr>"
        for t in tracks
    )
    return (
        f"<h3>{len(tracks)} more faces, not drawn</h3>"
        '<table class="other-tracks"><tr><th>face</th><th class="num">frames</th>'
        f'<th class="num">first seen (s)</th><th>mostly</th></tr>{rows}</table>'
    )


def _run_html(recording: Recording, index: int) -> str:
    summary = "".join(
        f'<tr><th>{_e(caption)}</th><td data-key="{key}">{_e(text)}</td></tr>'
        for key, caption, text in summary_rows(recording)
    )
    drawn = recording.tracks[:MAX_DRAWN_TRACKS]
    tracks = "".join(_track_html(recording, t, i) for i, t in enumerate(drawn))
    if not recording.tracks:
        tracks = '<p class="dim">No face was found in this run.</p>'
    rest = recording.tracks[MAX_DRAWN_TRACKS:]
    more = _other_tracks_html(rest, recording.classes) if rest else ""
    overall = ""
    if recording.tracks:
        seconds = sum(t.duration for t in recording.tracks)
        overall = (
            f'<div class="overall"><h3>All faces <span class="dim">{recording.faces} faces in '
            f"{recording.frames_with_faces} frames, {_seconds(seconds)} of face time</span></h3>"
            f"{_shares_table(recording.shares(), seconds)}</div>"
        )
    return (
        f'<section class="run" data-run="{_e(recording.name)}" data-index="{index}">'
        f"<h2>{_e(recording.name)}</h2>"
        f'<table class="summary">{summary}</table>{overall}'
        f"{tracks}{more}</section>"
    )


def report_html(recordings: Sequence[Recording], title: str | None = None) -> str:
    """Return the whole report page for ``recordings``.

    Args:
        recordings: the runs, one section each, in order.
        title: the page title (default: ``fer-edge report: NAME``).
    """
    names = ", ".join(r.name for r in recordings)
    title = title or f"fer-edge report: {names}"
    drawn = sum(min(len(r.tracks), MAX_DRAWN_TRACKS) for r in recordings)
    body = "".join(_run_html(r, i) for i, r in enumerate(recordings))
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{_STYLE}</style></head>"
        f'<body data-runs="{len(recordings)}" data-timelines="{drawn}">'
        f'<header><h1>{_e(title)}</h1><div class="dim">fer-edge {_e(__version__)}; per face: '
        "the class probabilities over time (stacked, bottom to top in the model's class order) "
        "and the share of time with each expression on top</div></header>"
        f"{body}<script>{_SELF_CHECK}</script></body></html>\n"
    )


def write_report(
    recordings: Sequence[Recording], path: str | os.PathLike[str], title: str | None = None
) -> Path:
    """Write :func:`report_html` to ``path`` atomically and return the path.

    Raises:
        FerEdgeError: no recording holds a frame (an empty report would replace nothing).
    """
    if not any(r.frames for r in recordings):
        raise FerEdgeError(f"--report: no frames to report; {path} not written")
    return write_text(path, report_html(recordings, title))


class ReportSink:
    """Gathers a run for ``run --report`` through the same records the JSONL holds.

    The runner writes the report when the run ends, with its summary (see
    :func:`write_report`); memory grows by about 60 bytes per face per frame.
    """

    def __init__(self, name: str):
        """Start gathering a run called ``name``."""
        self.builder = RecordingBuilder(name)

    def write(self, result: FrameResult) -> None:
        """Add the frame as its JSONL record."""
        self.builder.add(jsonl_record(result))

    def close(self) -> None:
        """Nothing to release: the report needs the run's summary, so the runner writes it."""


def figures_folder(report: str | os.PathLike[str]) -> Path:
    """Return where ``--png`` puts the figures of ``report.html``: ``report-figures/``."""
    path = Path(report)
    return path.with_name(path.stem + "-figures")


@click.command("report")
@click.argument("jsonl", nargs=-1, required=True, type=FILE)
@click.option(
    "--out",
    "-o",
    required=True,
    type=FILE,
    help="The HTML report to write.",
)
@click.option(
    "--summary",
    "summaries",
    multiple=True,
    type=FILE,
    help="A 'fer-edge run --summary' file per JSONL, in the same order "
    f"[default: NAME{SUMMARY_SUFFIX} beside NAME.jsonl, when there is one].",
)
@click.option("--title", help="The page title.")
@click.option(
    "--png",
    is_flag=True,
    help="Also write one PNG figure per face into OUT-figures/ (needs matplotlib).",
)
def report_cmd(
    jsonl: tuple[Path, ...],
    out: Path,
    summaries: tuple[Path, ...],
    title: str | None,
    png: bool,
) -> None:
    """Turn the JSONL of one or more runs into an HTML report.

    Per face id: a timeline of the class probabilities and the share of time in each
    expression; per run: frames, faces, fps, model, detector and source. The page is one
    self-contained file (no network, no external assets).

    \b
    Examples:
      fer-edge run --source clip.mp4 --jsonl clip.jsonl --summary clip.summary.json
      fer-edge report clip.jsonl --out clip.html
      fer-edge report runs/*.jsonl --out all.html --png
    """
    inputs = [*(("JSONL", path) for path in jsonl), *(("--summary", path) for path in summaries)]
    check_outputs([("--out", out)], inputs)
    if png:
        check_output_folder(figures_folder(out), "--png")
    if summaries and len(summaries) != len(jsonl):
        raise FerEdgeError(
            f"--summary: give one per JSONL file ({len(jsonl)} files, {len(summaries)} "
            "summaries), or none"
        )
    recordings = [
        read_recording(path, read_summary(summaries[i]) if summaries else None)
        for i, path in enumerate(jsonl)
    ]
    write_report(recordings, out, title)
    faces = sum(len(r.tracks) for r in recordings)
    click.echo(f"wrote {out}: {len(recordings)} runs, {faces} face ids", err=True)
    if png:
        from fer_edge.device.reportpng import MatplotlibMissing, write_pngs

        try:
            figures = write_pngs(recordings, figures_folder(out))
        except MatplotlibMissing as exc:
            click.echo(f"--png: {exc}; wrote the HTML only", err=True)
        else:
            click.echo(f"wrote {len(figures)} figures in {figures_folder(out)}", err=True)
