"""A run read back for analysis: its frames and, per face id, the probabilities over time.

The input is the JSONL that ``fer-edge run --jsonl`` writes (one object per frame), either from
a file or record by record while a run goes (``--report``): both go through
:class:`RecordingBuilder.add`, so a report made during a run and one made from its file show
the same numbers.

Faces are grouped by their ``id``. A face without one (JSONL from a run without tracking) is
grouped by its position in the frame (0 = the largest face), one track per position.

Time: frame ``k`` of the run lasts until frame ``k + 1`` (the last frame as long as the median
frame), and a face seen in frame ``k`` is counted for that long. At a steady frame rate this
is the share of frames; with ``--every N`` or a paced camera it is the share of source time.
"""

from __future__ import annotations

import json
import os
from array import array
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fer_edge.errors import FerEdgeError
from fer_edge.faces import SUMMARY_SUFFIX, parse_record


@dataclass(frozen=True)
class Track:
    """One face followed through a run.

    Attributes:
        face_id: the face's ``id``; ``None`` when the JSONL has none (see ``position``).
        position: for faces without an id, their place in the frame's list (0 = largest).
        ordinals: for each sample, the index of its frame among the run's frames.
        frames: each sample's frame number in the source.
        times: each sample's time in seconds.
        seconds: how long each sample counts for (see the module docstring).
        probs: ``(samples, classes)`` probabilities, in :attr:`Recording.classes` order.
        labels: each sample's top label.
    """

    face_id: int | None
    position: int | None
    ordinals: np.ndarray
    frames: np.ndarray
    times: np.ndarray
    seconds: np.ndarray
    probs: np.ndarray
    labels: tuple[str, ...]

    @property
    def key(self) -> str:
        """``id 3``, or ``position 0`` for a face without an id."""
        return f"id {self.face_id}" if self.face_id is not None else f"position {self.position}"

    @property
    def samples(self) -> int:
        """Frames the face was seen in."""
        return len(self.times)

    @property
    def duration(self) -> float:
        """Seconds the face was in view (the sum of :attr:`seconds`)."""
        return float(self.seconds.sum())

    def shares(self, classes: Iterable[str]) -> dict[str, float]:
        """Return each class's share of the face's time as its top label (they sum to 1).

        Weighted by :attr:`seconds`; by frames when the samples have no duration (a run of
        one frame).
        """
        weights = self.seconds if self.duration > 0 else np.ones(self.samples)
        total = float(weights.sum())
        labels = np.asarray(self.labels, dtype=object)
        return {c: float(weights[labels == c].sum()) / total for c in classes}

    def segments(self) -> list[slice]:
        """Return the runs of consecutive frames the face was seen in, as slices."""
        breaks = np.flatnonzero(np.diff(self.ordinals) > 1) + 1
        edges = [0, *breaks.tolist(), self.samples]
        return [slice(a, b) for a, b in zip(edges[:-1], edges[1:], strict=True)]


@dataclass(frozen=True)
class Recording:
    """One run: what :func:`read_recording` or a live :class:`RecordingBuilder` gathered.

    Attributes:
        name: where it came from (the JSONL file name, or the run's source).
        classes: the model's classes, in its label order.
        frames: frames in the run (lines of the JSONL).
        faces: faces over all frames.
        frames_with_faces: frames with at least one face.
        t_start: the first frame's time, seconds.
        t_end: the last frame's time plus its duration, seconds.
        tracks: the faces, most frames first.
        bad_lines: JSONL lines that were not a frame record (skipped).
        sources: the distinct ``source`` fields of the lines (image runs), in order.
        summary: the run's exit summary (``RunSummary.to_dict()``) when known.
    """

    name: str
    classes: tuple[str, ...]
    frames: int
    faces: int
    frames_with_faces: int
    t_start: float
    t_end: float
    tracks: tuple[Track, ...]
    bad_lines: int = 0
    sources: tuple[str, ...] = ()
    summary: Mapping[str, Any] | None = None

    @property
    def span(self) -> float:
        """Seconds from the first frame to the end of the last."""
        return self.t_end - self.t_start

    def shares(self) -> dict[str, float]:
        """Return each class's share of the time of all faces together (see Track.shares)."""
        weights = {c: 0.0 for c in self.classes}
        for track in self.tracks:
            duration = track.duration if track.duration > 0 else float(track.samples)
            for c, share in track.shares(self.classes).items():
                weights[c] += share * duration
        total = sum(weights.values())
        return {c: w / total if total else 0.0 for c, w in weights.items()}

    @property
    def sampled_fps(self) -> float | None:
        """Frames per second of source time (lower than the source's with ``--every``)."""
        return self.frames / self.span if self.span > 0 else None


class _TrackData:
    """A track being gathered: flat, compact arrays (a long run keeps many samples)."""

    def __init__(self, width: int):
        self.width = width
        self.ordinals = array("q")
        self.frames = array("q")
        self.times = array("d")
        self.probs = array("f")
        self.labels: list[str] = []


class RecordingBuilder:
    """Gathers frame records (the JSONL objects) into a :class:`Recording`."""

    def __init__(self, name: str):
        """Start an empty recording called ``name``."""
        self.name = name
        self.classes: tuple[str, ...] | None = None
        self.frame_times = array("d")
        self.faces = 0
        self.frames_with_faces = 0
        self.bad_lines = 0
        self._tracks: dict[tuple[str, int], _TrackData] = {}
        self._sources: dict[str, None] = {}

    def add(self, record: Mapping[str, Any]) -> None:
        """Add one frame record: ``{"frame", "t", "faces": [{"id"?, "label", "scores"}]}``.

        Raises:
            ValueError: the record is not a frame record (nothing is added).
            FerEdgeError: its classes differ from the earlier records' (two runs in one file).
        """
        frame, t, faces = parse_record(record)
        for face in faces:
            if self.classes is None:
                self.classes = tuple(face["scores"])
            elif tuple(face["scores"]) != self.classes:
                raise FerEdgeError(
                    f"{self.name}: frame {frame} has the classes {list(face['scores'])}, earlier "
                    f"frames {list(self.classes)}: one run per file"
                )
        ordinal = len(self.frame_times)
        self.frame_times.append(t)
        self.faces += len(faces)
        self.frames_with_faces += bool(faces)
        if isinstance(record.get("source"), str):
            self._sources.setdefault(record["source"], None)
        for position, face in enumerate(faces):
            face_id = face.get("id")
            key = ("id", face_id) if face_id is not None else ("position", position)
            data = self._tracks.get(key)
            if data is None:
                data = self._tracks[key] = _TrackData(len(face["scores"]))
            data.ordinals.append(ordinal)
            data.frames.append(frame)
            data.times.append(t)
            data.probs.extend(float(v) for v in face["scores"].values())
            data.labels.append(face["label"])

    def build(self, summary: Mapping[str, Any] | None = None) -> Recording:
        """Return the recording so far, with the run's exit summary when known."""
        times = np.frombuffer(self.frame_times, dtype=np.float64)
        durations = _frame_durations(times)
        tracks = []
        for (kind, value), data in self._tracks.items():
            ordinals = np.frombuffer(data.ordinals, dtype=np.int64).copy()
            tracks.append(
                Track(
                    face_id=value if kind == "id" else None,
                    position=value if kind == "position" else None,
                    ordinals=ordinals,
                    frames=np.frombuffer(data.frames, dtype=np.int64).copy(),
                    times=np.frombuffer(data.times, dtype=np.float64).copy(),
                    seconds=durations[ordinals],
                    probs=np.frombuffer(data.probs, dtype=np.float32)
                    .reshape(-1, data.width)
                    .copy(),
                    labels=tuple(data.labels),
                )
            )
        tracks.sort(key=lambda tr: (-tr.samples, float(tr.times[0]), tr.key))
        start = float(times[0]) if len(times) else 0.0
        end = float(times[-1] + durations[-1]) if len(times) else 0.0
        return Recording(
            name=self.name,
            classes=self.classes or (),
            frames=len(times),
            faces=self.faces,
            frames_with_faces=self.frames_with_faces,
            t_start=start,
            t_end=end,
            tracks=tuple(tracks),
            bad_lines=self.bad_lines,
            sources=tuple(self._sources),
            summary=summary,
        )


def _frame_durations(times: np.ndarray) -> np.ndarray:
    """Each frame lasts until the next one; the last as long as the median frame."""
    if len(times) == 0:
        return np.zeros(0)
    steps = np.clip(np.diff(times), 0.0, None)  # times that go back count as no time
    last = float(np.median(steps)) if len(steps) else 0.0
    return np.append(steps, last)


def read_recording(
    path: str | os.PathLike[str], summary: Mapping[str, Any] | None = None
) -> Recording:
    """Read a run's JSONL file.

    Lines that are not frame records (a line cut short when a run was killed, blank lines)
    are skipped and counted in :attr:`Recording.bad_lines`.

    Args:
        path: the JSONL file.
        summary: the run's exit summary; ``None`` reads ``NAME.summary.json`` beside the file
            when there is one.

    Raises:
        FerEdgeError: the file cannot be read, holds no frame record, or mixes classes.
    """
    path = Path(path)
    builder = RecordingBuilder(path.name)
    try:
        with path.open(encoding="utf-8") as lines:
            for line in lines:
                try:
                    builder.add(json.loads(line))
                except (ValueError, TypeError, OverflowError):  # JSONDecodeError: a ValueError
                    builder.bad_lines += 1
    except FileNotFoundError:
        raise FerEdgeError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise FerEdgeError(f"{path}: cannot read ({getattr(exc, 'strerror', exc)})") from None
    if not builder.frame_times:
        raise FerEdgeError(
            f"{path}: no frame records (one JSON object per line from 'fer-edge run --jsonl'"
            f"; {builder.bad_lines} other lines)"
        )
    if summary is None:
        summary = read_summary_beside(path)
    return builder.build(summary)


def summary_path_for(jsonl: str | os.PathLike[str]) -> Path:
    """Return where a JSONL file's run summary sits: ``run.jsonl`` -> ``run.summary.json``."""
    path = Path(jsonl)
    return path.with_name(path.stem + SUMMARY_SUFFIX)


def read_summary(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a run summary written by ``fer-edge run --summary``.

    Raises:
        FerEdgeError: the file is missing, not JSON, or not a run summary.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FerEdgeError(f"--summary: {path}: no such file") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise FerEdgeError(f"--summary: cannot read {path} ({exc})") from None
    if not isinstance(data, dict) or not {"frames", "model", "source"} <= set(data):
        raise FerEdgeError(f"--summary: {path} is not a 'fer-edge run --summary' file")
    return data


def read_summary_beside(jsonl: str | os.PathLike[str]) -> dict[str, Any] | None:
    """Return the summary beside a JSONL file (:func:`summary_path_for`), if it is one."""
    path = summary_path_for(jsonl)
    if not path.is_file():
        return None
    try:
        return read_summary(path)
    except FerEdgeError:
        return None  # an unrelated file of that name: the report does without
