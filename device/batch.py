"""Several sources in one call: ``fer-edge run --source a.mp4 --source b.mp4 --out-dir DIR``.

Each source is one :func:`~fer_edge.device.runner.run` with its own outputs in ``DIR``:
``NAME.jsonl``, ``NAME.csv``, ``NAME.html`` (the report), ``NAME.summary.json`` and, if asked,
``NAME.annotated.mp4``, where ``NAME`` is the file's stem (made unique). A source that cannot
be read is reported and skipped; the others still run. ``DIR/batch.json`` lists what happened
to each source.
"""

from __future__ import annotations

import dataclasses
import glob
import os
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from fer_edge.atomic import check_output_folder, write_json
from fer_edge.data import IMAGE_SUFFIXES
from fer_edge.device.runner import RunOptions, RunSummary, run
from fer_edge.device.sources import is_regular_file
from fer_edge.errors import FerEdgeError, first_line
from fer_edge.faces import SUMMARY_SUFFIX
from fer_edge.outputs import check_outputs

#: The index of a batch, in its output folder.
INDEX_NAME = "batch.json"


def is_camera(spec: str) -> bool:
    """True for ``--source`` values that name a camera rather than files."""
    spec = spec.strip()
    return spec == "picamera" or spec.isdigit() or spec.startswith("/dev/video")


def expand_sources(specs: Sequence[str]) -> list[str]:
    """Return the sources that ``--source`` values name, one run each.

    A glob that matches only images stays one source (an image set, as for a single
    ``--source``); a glob that matches anything else (videos) becomes one source per file.
    Repeated sources are run once.

    Raises:
        FerEdgeError: a camera among several sources (a camera never ends).
    """
    out: list[str] = []
    for spec in specs:
        if glob.has_magic(spec) and not Path(spec).expanduser().exists():
            files = sorted(p for p in glob.glob(os.path.expanduser(spec)) if is_regular_file(p))
            if any(Path(p).suffix.lower() not in IMAGE_SUFFIXES for p in files):
                out.extend(files)
                continue
        out.append(spec)
    unique = list(dict.fromkeys(out))
    if len(unique) > 1 and any(is_camera(s) for s in unique):
        raise FerEdgeError("--source: several sources must be files; run one camera per call")
    return unique


def output_stems(sources: Sequence[str]) -> list[str]:
    """Return a distinct file-name stem per source (``clip.mp4`` -> ``clip``, then ``clip-2``)."""
    stems: list[str] = []
    taken: set[str] = set()
    for spec in sources:
        path = Path(spec.rstrip("/\\"))
        if glob.has_magic(spec):  # an image set: named after its folder
            base = Path(spec.split("*")[0].split("?")[0].split("[")[0]).name or "images"
        else:
            base = path.name if path.is_dir() else path.stem
        base = re.sub(r"[^A-Za-z0-9._-]+", "_", base).strip("._") or "source"
        stem, n = base, 1
        while stem in taken:
            n += 1
            stem = f"{base}-{n}"
        taken.add(stem)
        stems.append(stem)
    return stems


@dataclass(frozen=True)
class BatchItem:
    """What happened to one source of a batch.

    Attributes:
        source: the ``--source`` value.
        outputs: output kind (``jsonl``, ``csv``, ``report``, ``summary``, ``video``) -> path.
        summary: the run's summary (``None`` when it was skipped).
        error: why it was skipped (``None`` when it ran).
    """

    source: str
    outputs: dict[str, Path]
    summary: RunSummary | None = None
    error: str | None = None

    @property
    def done(self) -> bool:
        """True when the source ran and had frames."""
        return self.error is None and self.summary is not None

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form for ``batch.json``."""
        out: dict[str, Any] = {"source": self.source, "status": "done" if self.done else "skipped"}
        if self.error is not None:
            out["error"] = self.error
        if self.summary is not None:
            out["outputs"] = {k: str(v) for k, v in self.outputs.items() if v.exists()}
            s = self.summary
            out.update(frames=s.frames, faces=s.faces, fps=round(s.fps, 2), stop=s.stop_reason)
        return out

    def line(self) -> str:
        """Return the one-line progress report of this item."""
        if not self.done:
            return f"skipped {self.source}: {self.error}"
        s = self.summary
        assert s is not None
        return f"done {self.source}: {s.frames} frames, {s.faces} faces, {s.fps:.1f} fps"


@dataclass(frozen=True)
class BatchSummary:
    """A whole batch.

    Attributes:
        out_dir: where the outputs are.
        items: one per source that was started, in order.
        total: sources in the batch (more than ``items`` when Ctrl-C stopped it).
    """

    out_dir: Path
    items: tuple[BatchItem, ...]
    total: int

    @property
    def done(self) -> int:
        """Sources that ran."""
        return sum(item.done for item in self.items)

    @property
    def interrupted(self) -> bool:
        """True when Ctrl-C (or SIGTERM) stopped the batch."""
        return any(item.summary is not None and item.summary.interrupted for item in self.items)

    def format(self) -> str:
        """Return the closing summary."""
        skipped = [item for item in self.items if not item.done]
        text = f"{self.total} sources: {self.done} done, {len(skipped)} skipped"
        if len(self.items) < self.total:
            text += f", {self.total - len(self.items)} not started (interrupted)"
        return text + f"; outputs in {self.out_dir}"

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form written to ``batch.json``."""
        return {"total": self.total, "done": self.done, "items": [i.to_dict() for i in self.items]}


#: Suffix of a batch's annotated videos: never ``NAME.mp4``, which would overwrite the source
#: itself when ``--out-dir`` is the folder the videos came from.
VIDEO_SUFFIX = ".annotated.mp4"


def batch_outputs(out_dir: Path, stem: str, video: bool = False) -> dict[str, Path]:
    """Return the output files of one source of a batch (with ``video``: its annotated video)."""
    outputs = {
        "jsonl": out_dir / f"{stem}.jsonl",
        "csv": out_dir / f"{stem}.csv",
        "report": out_dir / f"{stem}.html",
        "summary": out_dir / f"{stem}{SUMMARY_SUFFIX}",
    }
    if video:
        outputs["video"] = out_dir / f"{stem}{VIDEO_SUFFIX}"
    return outputs


def check_batch_outputs(
    options: RunOptions,
    sources: Sequence[str],
    folder: Path,
    stems: Sequence[str],
    videos: bool,
) -> None:
    """Refuse, before the first source runs, a batch whose outputs would replace its inputs.

    ``--out-dir`` may be the folder the sources are in: ``b.annotated.mp4`` must not be the
    output of ``b`` and also a later source, read after it was overwritten.

    Raises:
        OutputError: an output of one source is a source of the batch, the model, or
            another output.
    """
    outputs: list[tuple[str, str | Path | None]] = []
    for spec, stem in zip(sources, stems, strict=True):
        named = batch_outputs(folder, stem, videos)
        outputs += [(f"--out-dir ({spec}: {kind})", path) for kind, path in named.items()]
    outputs.append(("--out-dir (index)", folder / INDEX_NAME))
    inputs = [
        pair for spec in sources for pair in dataclasses.replace(options, source=spec).inputs()
    ]
    check_outputs(outputs, inputs)


def _is_source_error(exc: FerEdgeError) -> bool:
    # Errors about one file name --source (sources.open_source); any other (the model, the
    # detector, a flag) would fail the same way for every source, so it ends the batch.
    return str(exc).startswith("--source")


def run_batch(
    options: RunOptions,
    sources: Sequence[str],
    out_dir: str | os.PathLike[str],
    progress: bool,
    videos: bool = False,
) -> BatchSummary:
    """Run every source in turn with ``options``, one set of outputs each in ``out_dir``.

    Args:
        options: the run's options; ``source`` and the file outputs are set per source.
        sources: the sources (see :func:`expand_sources`).
        out_dir: the output folder (created if missing).
        progress: show a progress bar over the sources on stderr.
        videos: also write each source's annotated video (``NAME.annotated.mp4``).

    Returns:
        What happened to each source; ``batch.json`` in ``out_dir`` holds the same.

    Raises:
        FerEdgeError: bad options, an unusable output folder, or an error that is not about
            one source (the model, the detector).
    """
    folder = check_output_folder(out_dir, "--out-dir")
    items: list[BatchItem] = []
    stems = output_stems(sources)
    check_batch_outputs(options, sources, folder, stems, videos)
    bar = tqdm(total=len(sources), unit="source", file=sys.stderr, disable=not progress)
    try:
        for spec, stem in zip(sources, stems, strict=True):
            bar.set_postfix_str(Path(spec).name, refresh=True)
            outputs = batch_outputs(folder, stem, videos)
            one = dataclasses.replace(
                options,
                source=spec,
                jsonl=str(outputs["jsonl"]),
                csv=outputs["csv"],
                report=outputs["report"],
                save=outputs.get("video"),
                sinks=[],
            )
            try:
                summary = run(one)
            except FerEdgeError as exc:
                if not _is_source_error(exc):
                    raise
                item = BatchItem(spec, outputs, error=first_line(exc))
            except Exception as exc:  # noqa: BLE001 - one bad file must not end the batch
                # A decoder or OpenCV failure inside one source (a degenerate video): report
                # it and go on; errors of the whole batch (model, outputs) are FerEdgeErrors.
                item = BatchItem(spec, outputs, error=f"{type(exc).__name__}: {first_line(exc)}")
            else:
                if summary.frames:
                    write_json(outputs["summary"], summary.to_dict())
                    item = BatchItem(spec, outputs, summary)
                else:
                    error = f"no readable frame ({summary.skipped} skipped)"
                    item = BatchItem(spec, outputs, summary, error)
            items.append(item)
            bar.update(1)
            tqdm.write(item.line(), file=sys.stderr)
            write_json(
                folder / INDEX_NAME, BatchSummary(folder, tuple(items), len(sources)).to_dict()
            )
            if item.summary is not None and item.summary.interrupted:
                break
    finally:
        bar.close()
    return BatchSummary(folder, tuple(items), len(sources))
