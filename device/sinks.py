"""Where results go: JSON lines, an annotated video, a window, a live status line.

Every sink has ``write(result)`` (a :class:`~fer_edge.faces.FrameResult`: the frame and
its faces) and ``close()``, so the runner treats them alike and new ones (a browser live view)
plug in without touching it. File sinks write to a temporary file beside the target and rename
it on ``close()``: a reader never sees half a file, and Ctrl-C still leaves a complete one.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any, Protocol

import cv2
import numpy as np

from fer_edge.atomic import atomic_path
from fer_edge.device.sources import quiet_stderr
from fer_edge.errors import FerEdgeError
from fer_edge.faces import DEFAULT_COLOR, LABEL_COLORS, FaceResult, FrameResult, jsonl_record

#: Video containers we can write, with the codec OpenCV's FFmpeg build always has for them.
VIDEO_CODECS: dict[str, str] = {".mp4": "mp4v", ".mov": "mp4v", ".m4v": "mp4v", ".avi": "MJPG"}
#: Frame rates a video is stored at. FFmpeg refuses rates without a usable time base (0.001
#: fps; over 65535 for MPEG-4), OpenCV's fallback MJPEG writer anything under 1 fps, and an
#: infinite rate hangs FFmpeg's writer for good; finite rates are clamped into this range.
MIN_VIDEO_FPS, MAX_VIDEO_FPS = 1.0, 240.0
#: MPEG-4 (mp4v) frames are at most this many pixels a side.
MPEG4_MAX_SIDE = 8191


class StopRun(Exception):  # noqa: N818 - a request, not an error
    """Raised by a sink to end the run cleanly (e.g. the display window was closed)."""


class Sink(Protocol):
    """A consumer of per-frame results."""

    def write(self, result: FrameResult) -> None:
        """Consume one frame (its image is not to be modified) and its faces."""
        ...

    def close(self) -> None:
        """Flush and finish; called once, also after Ctrl-C."""
        ...


def draw_faces(frame: np.ndarray, faces: Sequence[FaceResult], note: str = "") -> np.ndarray:
    """Return a copy of ``frame`` with a box and ``label score`` over each face.

    Args:
        frame: a BGR frame.
        faces: the faces to draw.
        note: optional text for the top-left corner (e.g. the live fps).
    """
    out = frame.copy()
    thickness = max(1, round(min(out.shape[:2]) / 240))
    font_scale = max(0.4, min(out.shape[:2]) / 800)
    for face in faces:
        color = LABEL_COLORS.get(face.label, DEFAULT_COLOR)
        b = face.box
        cv2.rectangle(out, (b.x, b.y), (b.x + b.w - 1, b.y + b.h - 1), color, thickness)
        text = f"{face.label} {face.score:.2f}"
        if face.id is not None:
            text = f"#{face.id} {text}"
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font_scale, thickness)
        # Put the label above the box, or inside it when the box touches the top edge.
        top = b.y - th - base - 2 if b.y - th - base - 2 >= 0 else b.y
        cv2.rectangle(out, (b.x, top), (b.x + tw + 4, top + th + base + 2), color, cv2.FILLED)
        cv2.putText(
            out,
            text,
            (b.x + 2, top + th + 1),
            cv2.FONT_HERSHEY_SIMPLEX,
            font_scale,
            (0, 0, 0),
            thickness,
            cv2.LINE_AA,
        )
    if note:
        cv2.putText(
            out,
            note,
            (8, 8 + round(24 * font_scale)),
            cv2.FONT_HERSHEY_SIMPLEX,
            font_scale,
            (255, 255, 255),
            thickness,
            cv2.LINE_AA,
        )
    return out


class JsonlSink:
    """One JSON object per frame, flushed line by line, to a file or to stdout (``-``)."""

    def __init__(
        self, target: str | os.PathLike[str], source_of: Callable[[int], str] | None = None
    ):
        """Open the output; a file is written beside the target and renamed on close.

        Args:
            target: a path, or ``-`` for stdout.
            source_of: the file of each frame index, written as its ``"source"`` (image
                folders and globs: to join results back to the photos).
        """
        self._source_of = source_of
        self._stack = contextlib.ExitStack()
        if str(target) == "-":
            self._stream: IO[str] = sys.stdout
            self.path: Path | None = None
        else:
            self.path = Path(target)
            try:
                tmp = self._stack.enter_context(atomic_path(self.path))
            except OSError as exc:
                raise FerEdgeError(f"--jsonl: cannot write {self.path} ({exc.strerror})") from None
            self._stream = self._stack.enter_context(tmp.open("w", encoding="utf-8"))
        self.lines = 0

    def write(self, result: FrameResult) -> None:
        """Write and flush one line."""
        source = self._source_of(result.frame.index) if self._source_of is not None else None
        self._stream.write(json.dumps(jsonl_record(result, source)) + "\n")
        self._stream.flush()
        self.lines += 1

    def close(self) -> None:
        """Close the file and move it into place (stdout is only flushed).

        With no lines, leave no file: a run that read nothing must not replace the results
        of an earlier one with an empty file.
        """
        if self.path is None:
            self._stream.flush()
        if self.path is not None and not self.lines:
            discard_output(self._stack)
            return
        self._stack.close()


class VideoSink:
    """An annotated video, opened at the first frame's size."""

    def __init__(self, path: str | os.PathLike[str], fps: float, follow_time: bool = False):
        """Prepare the output.

        Args:
            path: ``.mp4``, ``.mov``, ``.m4v`` or ``.avi``.
            fps: the frame rate stored in the file.
            follow_time: place frames by their timestamps, holding a frame until the next one
                arrives (a camera loop at 8 fps saved at 30 fps plays in real time) and dropping
                frames that come faster than ``fps``; otherwise one output frame per frame.

        Raises:
            FerEdgeError: an unsupported extension, a frame rate that is not a positive finite
                number, or an unwritable folder.
        """
        self.path = Path(path)
        suffix = self.path.suffix.lower()
        if suffix not in VIDEO_CODECS:
            raise FerEdgeError(
                f"--save: {self.path.name}: use one of {', '.join(sorted(VIDEO_CODECS))}"
            )
        if not (math.isfinite(fps) and fps > 0):
            raise FerEdgeError(f"--save: the frame rate must be a positive number, got {fps}")
        self.fps = min(max(float(fps), MIN_VIDEO_FPS), MAX_VIDEO_FPS)
        self.follow_time = follow_time
        self.frames = 0
        self._fourcc = cv2.VideoWriter.fourcc(*VIDEO_CODECS[suffix])
        self._stack = contextlib.ExitStack()
        try:
            self._tmp = self._stack.enter_context(atomic_path(self.path))
        except OSError as exc:
            raise FerEdgeError(f"--save: cannot write {self.path} ({exc.strerror})") from None
        self._writer: Any = None
        self._size: tuple[int, int] | None = None
        self._t0 = 0.0
        self._last: np.ndarray | None = None

    def write(self, result: FrameResult) -> None:
        """Draw the faces onto the frame and append it (see ``follow_time``)."""
        frame, t = result.frame.image, result.frame.t
        if self._writer is None:
            self._open((frame.shape[1], frame.shape[0]))
            self._t0 = t
        slot = round((t - self._t0) * self.fps) if self.follow_time else self.frames
        if slot < self.frames:
            return  # that output frame is already filled
        image = draw_faces(frame, result.faces)
        if (image.shape[1], image.shape[0]) != self._size:
            # Image folders mix sizes; a video holds one.
            image = cv2.resize(image, self._size, interpolation=cv2.INTER_AREA)
        # Until this frame arrived, the previous one was what the camera showed.
        for _ in range(slot - self.frames):
            self._writer.write(self._last)
        self._writer.write(image)
        self._last = image
        self.frames = slot + 1

    def _open(self, size: tuple[int, int]) -> None:
        # FFmpeg explains a refusal on stderr in several lines; ours names the flag instead.
        with quiet_stderr():
            writer = cv2.VideoWriter(str(self._tmp), self._fourcc, self.fps, size)
        if not writer.isOpened():
            writer.release()
            hint = ""
            if VIDEO_CODECS[self.path.suffix.lower()] == "mp4v" and max(size) > MPEG4_MAX_SIDE:
                hint = f" (MPEG-4 allows {MPEG4_MAX_SIDE} px a side: use .avi or --size)"
            raise FerEdgeError(
                f"--save: OpenCV cannot write a {size[0]}x{size[1]} {self.path.suffix} video{hint}"
            )
        self._writer, self._size = writer, size

    def close(self) -> None:
        """Finish the file and move it into place.

        Only a writer that opened and took frames makes a file; otherwise the temporary file
        goes and whatever was at ``path`` before stays as it was.
        """
        if self._writer is None or not self.frames:
            if self._writer is not None:
                self._writer.release()
            discard_output(self._stack)
            return
        self._writer.release()
        if self._tmp.stat().st_size == 0:  # the writer took the frames but wrote nothing
            discard_output(self._stack)
            return
        self._stack.close()


class _NoFrames(Exception):
    """Aborts an output that received no frames (the temporary file is removed)."""


def discard_output(stack: contextlib.ExitStack) -> None:
    """Close ``stack`` as if its block had failed: an :func:`atomic_path` in it is dropped.

    The file sinks' one way to leave no file (and keep the old one) when nothing was written.
    """
    with contextlib.suppress(_NoFrames):
        stack.__exit__(_NoFrames, _NoFrames(), None)


class DisplaySink:
    """An OpenCV window with the annotated frames and the live fps; ``q`` or Esc quits."""

    def __init__(self, title: str = "fer-edge"):
        """Open the window.

        Raises:
            FerEdgeError: there is no screen, or OpenCV was built without a GUI.
        """
        if sys.platform.startswith("linux") and not (
            os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
        ):
            raise FerEdgeError("--display: no screen here (DISPLAY is not set); use --save")
        try:
            cv2.namedWindow(title, cv2.WINDOW_NORMAL)
        except cv2.error:
            raise FerEdgeError(
                "--display: this OpenCV has no GUI (opencv-python-headless); "
                "pip install opencv-python, or use --save"
            ) from None
        self.title = title
        self._last = time.perf_counter()
        self._fps = 0.0

    def write(self, result: FrameResult) -> None:
        """Show the frame; raise :class:`StopRun` when the user quits."""
        now = time.perf_counter()
        dt, self._last = now - self._last, now
        if dt > 0:
            self._fps = 0.9 * self._fps + 0.1 / dt if self._fps else 1.0 / dt
        cv2.imshow(self.title, draw_faces(result.frame.image, result.faces, f"{self._fps:.1f} fps"))
        key = cv2.waitKey(1) & 0xFF
        if key in (ord("q"), 27) or cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE) < 1:
            raise StopRun("window closed")

    def close(self) -> None:
        """Close the window."""
        with contextlib.suppress(cv2.error):
            cv2.destroyWindow(self.title)
            cv2.waitKey(1)


class StatusSink:
    """A one-line live status (frames, fps, faces) rewritten in place on a terminal."""

    def __init__(self, stream: IO[str] | None = None, interval: float = 1.0):
        """Write to ``stream`` (stderr by default) at most every ``interval`` seconds."""
        self._stream = stream or sys.stderr
        self._interval = interval
        self._start = time.perf_counter()
        self._last = 0.0
        self._frames = 0
        self._printed = False

    def write(self, result: FrameResult) -> None:
        """Count the frame and refresh the line when due."""
        self._frames += 1
        now = time.perf_counter() - self._start
        if now - self._last < self._interval:
            return
        self._last = now
        labels = ", ".join(f"{f.label} {f.score:.2f}" for f in result.faces) or "no face"
        self._stream.write(
            f"\rframe {result.frame.index}  {self._frames / now:5.1f} fps  {labels}"[:120].ljust(60)
        )
        self._stream.flush()
        self._printed = True

    def close(self) -> None:
        """End the status line."""
        if self._printed:
            self._stream.write("\n")
            self._stream.flush()
