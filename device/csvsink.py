"""``--csv``: one row per face per frame, for pandas or a spreadsheet.

Columns: ``source, frame, t, id, x, y, w, h, label, score`` and one column per class, in the
model's label order. Values are those of the JSONL (same rounding), so the two outputs agree
cell for cell. A face without an id (a tracker that gives none) gets its position in the frame
(0 = largest), the same fallback the report uses. ``pandas.read_csv(path)`` needs no options.
"""

from __future__ import annotations

import csv
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from fer_edge.device.sinks import FileSink
from fer_edge.errors import FerEdgeError
from fer_edge.faces import FrameResult

#: The columns before the per-class probabilities.
BASE_COLUMNS: tuple[str, ...] = ("source", "frame", "t", "id", "x", "y", "w", "h", "label", "score")


def csv_columns(labels: Sequence[str]) -> list[str]:
    """Return the header: :data:`BASE_COLUMNS` then one column per class.

    Raises:
        FerEdgeError: a class name is also a base column (the header would be ambiguous).
    """
    clash = sorted(set(labels) & set(BASE_COLUMNS))
    if clash:
        raise FerEdgeError(f"--csv: class names {clash} clash with the columns {BASE_COLUMNS}")
    return [*BASE_COLUMNS, *labels]


def face_rows(source: str, result: FrameResult, labels: Sequence[str]) -> list[list[object]]:
    """Return the CSV rows of one frame (none when it has no face)."""
    rows: list[list[object]] = []
    for position, face in enumerate(result.faces):
        data = face.to_dict()  # the JSONL's rounding, so CSV and JSONL agree
        face_id = data.get("id", position)
        rows.append(
            [
                source,
                int(result.frame.index),
                round(float(result.frame.t), 3),
                face_id,
                *data["box"],
                data["label"],
                data["score"],
                *(data["scores"].get(name, "") for name in labels),
            ]
        )
    return rows


class CsvSink(FileSink):
    """Writes :func:`face_rows` for every frame to a file moved into place on close."""

    flag = "--csv"

    def __init__(
        self,
        path: str | os.PathLike[str],
        labels: Sequence[str],
        source_name: Callable[[int], str],
        durable_after: float | None = None,
    ):
        """Open the output (a temporary file beside ``path``) and write the header.

        Args:
            path: the ``.csv`` file.
            labels: the model's classes, in order.
            source_name: the ``source`` column for a frame index (the video, or the image
                file of that frame).
            durable_after: move the file into place after this many seconds and append to
                it there (see :class:`~fer_edge.device.sinks.FileSink`).

        Raises:
            FerEdgeError: the file cannot be written, or a class name clashes with a column.
        """
        self.path = Path(path)
        self.labels = tuple(labels)
        self.rows = 0
        self.frames = 0
        self._source_name = source_name
        header = csv_columns(self.labels)
        self.pending = pending = self._start(self.path)
        self.durable_after, self._opened = durable_after, time.monotonic()
        try:
            # newline="" as the csv module asks: it writes its own line ends.
            self._file = pending.tmp.open("w", encoding="utf-8", newline="")
            self._writer = csv.writer(self._file)
            self._writer.writerow(header)
        except OSError as exc:
            pending.discard()
            raise pending.error(exc) from None

    def write(self, result: FrameResult) -> None:
        """Append this frame's rows.

        Raises:
            OutputError: the disk is full.
        """
        rows = face_rows(self._source_name(result.frame.index), result, self.labels)
        try:
            self._writer.writerows(rows)
            self._file.flush()
        except OSError as exc:
            assert self.pending is not None
            raise self.pending.error(exc) from None
        self.rows += len(rows)
        self.frames += 1
        self._written(self._file)

    def _finish(self) -> bool:
        # A run that saw no frame leaves no file (nor replaces one).
        self._file.close()
        return self.frames > 0
