"""``--csv``: one row per face per frame, for pandas or a spreadsheet.

Columns: ``source, frame, t, id, x, y, w, h, label, score`` and one column per class, in the
model's label order. Values are those of the JSONL (same rounding), so the two outputs agree
cell for cell. A face without an id (a tracker that gives none) gets its position in the frame
(0 = largest), the same fallback the report uses. ``pandas.read_csv(path)`` needs no options.
"""

from __future__ import annotations

import contextlib
import csv
import os
from collections.abc import Callable, Sequence
from pathlib import Path

from fer_edge.atomic import atomic_path
from fer_edge.device.sinks import discard_output
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


class CsvSink:
    """Writes :func:`face_rows` for every frame to a file moved into place on close."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        labels: Sequence[str],
        source_name: Callable[[int], str],
    ):
        """Open the output (a temporary file beside ``path``) and write the header.

        Args:
            path: the ``.csv`` file.
            labels: the model's classes, in order.
            source_name: the ``source`` column for a frame index (the video, or the image
                file of that frame).

        Raises:
            FerEdgeError: the file cannot be written, or a class name clashes with a column.
        """
        self.path = Path(path)
        self.labels = tuple(labels)
        self.rows = 0
        self.frames = 0
        self._source_name = source_name
        header = csv_columns(self.labels)
        self._stack = contextlib.ExitStack()
        try:
            tmp = self._stack.enter_context(atomic_path(self.path))
            # newline="" as the csv module asks: it writes its own line ends.
            self._file = self._stack.enter_context(tmp.open("w", encoding="utf-8", newline=""))
        except OSError as exc:
            self._stack.close()
            raise FerEdgeError(f"--csv: cannot write {self.path} ({exc.strerror})") from None
        self._writer = csv.writer(self._file)
        self._writer.writerow(header)

    def write(self, result: FrameResult) -> None:
        """Append this frame's rows."""
        rows = face_rows(self._source_name(result.frame.index), result, self.labels)
        self._writer.writerows(rows)
        self._file.flush()
        self.rows += len(rows)
        self.frames += 1

    def close(self) -> None:
        """Move the file into place; a run that saw no frame leaves none (nor replaces one)."""
        if self.frames:
            self._stack.close()
            return
        discard_output(self._stack)
