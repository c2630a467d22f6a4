"""``fer-edge report``: the JSONL of one or more runs in, an HTML report (and PNGs) out."""

from __future__ import annotations

import os
from pathlib import Path

import click

from fer_edge.atomic import check_output_folder
from fer_edge.clitypes import FILE
from fer_edge.errors import FerEdgeError
from fer_edge.faces import SUMMARY_SUFFIX
from fer_edge.outputs import check_outputs
from fer_edge.report.html import write_report
from fer_edge.report.recording import read_recording, read_summary


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
        from fer_edge.report.png import MatplotlibMissing, write_pngs

        try:
            figures = write_pngs(recordings, figures_folder(out))
        except MatplotlibMissing as exc:
            click.echo(f"--png: {exc}; wrote the HTML only", err=True)
        else:
            click.echo(f"wrote {len(figures)} figures in {figures_folder(out)}", err=True)
