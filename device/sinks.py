"""Where results go: JSON lines, an annotated video, a window, a live status line.

Every sink has ``write(result)`` (a :class:`~fer_edge.faces.FrameResult`: the frame and
its faces) and ``close()``, so the runner treats them alike and new ones (a browser live view)
plug in without touching it. File sinks write to a temporary file beside the target and rename
it when the run ends (:func:`close_sinks`: all of them or none): a reader never sees half a
file, Ctrl-C still leaves a complete one, and a failed write keeps every old file.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any, Protocol

import cv2
import numpy as np

from fer_edge.atomic import PendingFile, fsync_folder, write_error
from fer_edge.errors import FerEdgeError, OutputError
from fer_edge.faces import DEFAULT_COLOR, LABEL_COLORS, FaceResult, FrameResult, jsonl_record
from fer_edge.quiet import quiet_stderr

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


#: How often a file written in place (see :class:`FileSink`) is synced to the disk.
SYNC_EVERY = 2.0
#: Default ``--durable-after``: runs longer than this write their JSONL and CSV in place.
DURABLE_AFTER = 10.0


class FileSink:
    """What the file sinks share: a :class:`~fer_edge.atomic.PendingFile` and its stream.

    ``close()`` alone finishes and commits this one file. The runner instead calls
    :func:`close_sinks`, which finishes every file of the run first and commits them only if
    all succeeded, so a write error (a full disk, a closed pipe) keeps every old file.

    A long run cannot keep an hour of results only in a hidden temporary file: with
    ``durable_after`` set, once the file has been written that many seconds it is moved into
    place and then appended to there, line by line, and synced every :data:`SYNC_EVERY`
    seconds. A kill -9 or a power cut then loses at most the last seconds; the file is valid
    at every line boundary. From that moment a later failure leaves the lines so far (the old
    file is gone), still with a one-line error.
    """

    flag = ""
    pending: PendingFile | None = None
    durable_after: float | None = None
    #: True once the file is in place and appended to there.
    in_place = False
    _opened = 0.0
    _next_sync = 0.0

    def _written(self, stream: IO[str]) -> None:
        """After each flushed write: move the file into place once due, sync it regularly."""
        if self.durable_after is None or self.pending is None:
            return
        now = time.monotonic()
        if now < self._next_sync:
            return
        self._next_sync = now + SYNC_EVERY
        if self.in_place:
            try:
                os.fsync(stream.fileno())
            except OSError as exc:
                raise self.pending.error(exc) from None
        elif now - self._opened >= self.durable_after:
            # The open stream follows the renamed file: later lines land in place.
            self.pending.commit()
            self.in_place = True

    def _start(self, path: str | os.PathLike[str]) -> PendingFile:
        try:
            return PendingFile(path, self.flag)
        except OSError as exc:
            raise write_error(self.flag, path, exc) from None

    def _finish(self) -> bool:
        """Close the stream; return whether the output holds anything worth keeping."""
        raise NotImplementedError

    def finish(self) -> PendingFile | None:
        """Close and sync the temporary file; return it to commit (``None``: nothing to write).

        Raises:
            OutputError: the last bytes or the sync failed; the temporary file is removed.
        """
        if self.in_place:
            self._finish_in_place()
            return None
        try:
            keep = self._finish()
        except OSError as exc:
            self.abort()
            raise (
                self.pending.error(exc) if self.pending else write_error(self.flag, "-", exc)
            ) from None
        except BaseException:
            self.abort()
            raise
        pending = self.pending
        if pending is None:
            return None
        if not keep:
            pending.discard()
            return None
        pending.sync()
        return pending

    def _finish_in_place(self) -> None:
        assert self.pending is not None
        try:
            self._finish()
            fd = os.open(self.pending.final, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            raise self.pending.error(exc) from None

    def abort(self) -> None:
        """Drop the output: the destination keeps whatever it held.

        A file already written in place keeps the lines so far (valid at each line end).
        """
        with contextlib.suppress(Exception):
            self._finish()
        if self.pending is not None and not self.in_place:
            self.pending.discard()

    def committed(self) -> None:
        """After the output was moved into place: remove what only stood in for it."""

    def close(self) -> None:
        """Finish and move the file into place."""
        pending = self.finish()
        if pending is not None:
            pending.commit()
            self.committed()


def close_sinks(
    sinks: Sequence[Sink],
    error: BaseException | None = None,
    extra: Sequence[PendingFile] = (),
) -> None:
    """Close every sink; commit the file sinks' outputs together or not at all.

    Args:
        sinks: the run's sinks.
        extra: other files of the run, already written (the report), committed with them.
        error: what ended the run, if it failed. After an :class:`OutputError` every file
            output is dropped (one failed write must not leave the others half-new); after
            any other error (a camera that stopped) the frames so far are kept.

    Raises:
        OutputError: a file could not be finished; none of the files was committed.
    """
    files = [sink for sink in sinks if isinstance(sink, FileSink)]
    for sink in sinks:
        if isinstance(sink, FileSink):
            continue
        try:
            sink.close()
        except Exception:
            if error is None:  # after a failure, the first error is the one to report
                raise
    if isinstance(error, OutputError):
        for sink in files:
            sink.abort()
        for done in extra:
            done.discard()
        return
    pending: list[PendingFile] = list(extra)
    try:
        for sink in files:
            finished = sink.finish()
            if finished is not None:
                pending.append(finished)
        for done in extra:
            done.sync()
    except BaseException:
        for sink in files:
            sink.abort()
        for done in extra:
            done.discard()
        raise
    for done in pending:
        done.commit()
    for sink in files:
        sink.committed()


def _closed_stdout() -> None:
    # A reader that went away (``| head``) must not make Python print a second error when
    # it flushes stdout at exit: point fd 1 at /dev/null.
    with contextlib.suppress(OSError):
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, 1)
        os.close(null)


class JsonlSink(FileSink):
    """One JSON object per frame, flushed line by line, to a file or to stdout (``-``)."""

    flag = "--jsonl"

    def __init__(
        self,
        target: str | os.PathLike[str],
        source_of: Callable[[int], str] | None = None,
        durable_after: float | None = None,
    ):
        """Open the output; a file is written beside the target and renamed on close.

        Args:
            target: a path, or ``-`` for stdout.
            source_of: the file of each frame index, written as its ``"source"`` (image
                folders and globs: to join results back to the photos).
            durable_after: move the file into place after this many seconds and append to
                it there (see :class:`FileSink`); ``None``: only when the run ends.

        Raises:
            OutputError: the file cannot be created, or stdout is closed.
        """
        self._source_of = source_of
        if str(target) == "-":
            if sys.stdout is None:
                raise OutputError("--jsonl -: stdout is closed")
            self._stream: IO[str] = sys.stdout
            self.path: Path | None = None
        else:
            self.path = Path(target)
            self.pending = self._start(self.path)
            self.durable_after, self._opened = durable_after, time.monotonic()
            try:
                self._stream = self.pending.tmp.open("w", encoding="utf-8")
            except OSError as exc:
                self.pending.discard()
                raise self.pending.error(exc) from None
        self.lines = 0

    def write(self, result: FrameResult) -> None:
        """Write and flush one line.

        Raises:
            OutputError: the disk is full, or stdout's reader went away.
        """
        source = self._source_of(result.frame.index) if self._source_of is not None else None
        try:
            self._stream.write(json.dumps(jsonl_record(result, source)) + "\n")
            self._stream.flush()
        except (OSError, ValueError) as exc:
            raise self._error(exc) from None
        self.lines += 1
        self._written(self._stream)

    def _error(self, exc: OSError | ValueError) -> OutputError:
        if self.pending is not None and isinstance(exc, OSError):
            return self.pending.error(exc)
        _closed_stdout()
        reason = exc.strerror if isinstance(exc, OSError) else "closed"
        return OutputError(f"--jsonl -: cannot write to stdout ({reason})")

    def _finish(self) -> bool:
        if self.pending is None:
            try:
                self._stream.flush()
            except (OSError, ValueError) as exc:
                raise self._error(exc) from None
            return True
        self._stream.close()
        # With no lines, leave no file: a run that read nothing must not replace the results
        # of an earlier one with an empty file.
        return self.lines > 0


#: Closed video segments are at least this long: a ``--durable-after`` of 0 must not make a
#: file per frame.
MIN_SEGMENT = 1.0


def video_part(path: Path, number: int) -> Path:
    """Return the ``number``-th segment file of the video ``path``: ``NAME.partNNN.EXT``."""
    return path.with_name(f"{path.stem}.part{number:03d}{path.suffix}")


def video_parts(path: Path) -> list[Path]:
    """Return the closed segment files beside the video ``path``, in order."""
    pattern = re.compile(rf"{re.escape(path.stem)}\.part(\d{{3,}}){re.escape(path.suffix)}")
    found: list[tuple[int, Path]] = []
    with contextlib.suppress(OSError):
        for entry in os.scandir(path.parent):
            match = pattern.fullmatch(entry.name)
            if match:
                found.append((int(match.group(1)), Path(entry.path)))
    return [part for _, part in sorted(found)]


class VideoSink(FileSink):
    """An annotated video, opened at the first frame's size.

    A video file is readable only once its writer is closed (after a kill -9 OpenCV's MJPG
    ``.avi`` and mp4v ``.mp4`` are empty or index-less: nothing reads back). So with
    ``durable_after`` set, every frame also goes to a segment writer that is closed and moved
    into place as ``NAME.partNNN.EXT`` every ``durable_after`` seconds (at least
    :data:`MIN_SEGMENT`): each closed part is a complete video. A clean end commits the whole
    video as before and then removes this run's parts; a kill leaves the parts (all but the
    last segment's seconds), and the next run on the same output keeps them, says so in one
    line, and numbers its own after them. The old ``NAME.EXT`` stays until a clean end.
    """

    flag = "--save"

    def __init__(
        self,
        path: str | os.PathLike[str],
        fps: float,
        follow_time: bool = False,
        durable_after: float | None = None,
    ):
        """Prepare the output.

        Args:
            path: ``.mp4``, ``.mov``, ``.m4v`` or ``.avi``.
            fps: the frame rate stored in the file.
            follow_time: place frames by their timestamps, holding a frame until the next one
                arrives (a camera loop at 8 fps saved at 30 fps plays in real time) and dropping
                frames that come faster than ``fps``; otherwise one output frame per frame.
            durable_after: also write closed segments of this many seconds (see above);
                ``None``: the video exists only once the run ends.

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
        self.pending = self._start(self.path)
        self._tmp = self.pending.tmp
        self._writer: Any = None
        self._size: tuple[int, int] | None = None
        self._t0 = 0.0
        self._last: np.ndarray | None = None
        self._segment_seconds = None if durable_after is None else max(durable_after, MIN_SEGMENT)
        self._segment: PendingFile | None = None
        self._segment_writer: Any = None
        self._segment_frames = 0
        self._segment_opened = 0.0
        self._parts: list[Path] = []  # this run's closed parts
        self._next_part = 0
        if self._segment_seconds is not None:
            left = video_parts(self.pending.final)
            if left:
                # They hold a killed run's video: never delete them silently.
                sys.stderr.write(
                    f"--save: {len(left)} segments of an unfinished run are kept: "
                    f"{left[0].name} .. {left[-1].name}\n"
                )
                self._next_part = int(left[-1].stem.rsplit(".part", 1)[1]) + 1

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
            self._put(self._last)
        self._put(image)
        self._last = image
        self.frames = slot + 1
        if (
            self._segment_seconds is not None
            and time.monotonic() - self._segment_opened >= self._segment_seconds
        ):
            self._close_segment()
            self._open_segment()

    def _put(self, image: np.ndarray | None) -> None:
        self._writer.write(image)
        if self._segment_writer is not None:
            self._segment_writer.write(image)
            self._segment_frames += 1

    def _open_segment(self) -> None:
        assert self._size is not None
        segment = self._start(video_part(self.pending_final, self._next_part))
        self._next_part += 1
        with quiet_stderr():
            writer = cv2.VideoWriter(str(segment.tmp), self._fourcc, self.fps, self._size)
        if not writer.isOpened():  # the whole video's writer opened at this size
            writer.release()
            segment.discard()
            raise OutputError(f"--save: OpenCV cannot write the segment {segment.final.name}")
        self._segment, self._segment_writer = segment, writer
        self._segment_frames, self._segment_opened = 0, time.monotonic()

    def _close_segment(self, keep: bool = True) -> None:
        """Close the open segment and, if ``keep``, move it into place once it reads back.

        Raises:
            OutputError: the segment lost frames, or could not be moved into place.
        """
        segment, writer = self._segment, self._segment_writer
        self._segment = self._segment_writer = None
        if segment is None:
            return
        writer.release()
        if not (keep and self._segment_frames):
            segment.discard()
            return
        stored = video_frames_readable(segment.tmp, self._segment_frames)
        if stored < self._segment_frames:
            segment.discard()
            raise OutputError(
                f"--save: {segment.final}: the video lost frames ({stored} of "
                f"{self._segment_frames} readable; disk full?)"
            )
        self._parts.append(segment.commit())

    @property
    def pending_final(self) -> Path:
        """The video file this sink replaces."""
        assert self.pending is not None
        return self.pending.final

    def committed(self) -> None:
        """The whole video is in place: this run's segments only stood in for it."""
        for part in self._parts:
            part.unlink(missing_ok=True)
        if self._parts:
            with contextlib.suppress(OSError):
                fsync_folder(self.pending_final.parent)
        self._parts = []

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
        if self._segment_seconds is not None:
            self._open_segment()

    def _finish(self) -> bool:
        """Finish the file; only a writer that opened and took frames makes one.

        Raises:
            OutputError: the file lost frames (OpenCV's writers report no write errors: a full
                disk shows as a video that holds fewer frames than were written).
        """
        # The whole video replaces the open segment (after a failure, the closed parts stay).
        self._close_segment(keep=False)
        writer, self._writer = self._writer, None
        if writer is None:
            return False
        writer.release()
        if not self.frames:
            return False
        stored = video_frames_readable(self._tmp, self.frames)
        if stored < self.frames:
            raise OutputError(
                f"--save: {self.path}: the video lost frames ({stored} of {self.frames} "
                "readable; disk full?); the old file is kept"
            )
        return True


#: ``--save`` suffixes written as one annotated still image (a photo source).
IMAGE_SAVE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


class ImageSink(FileSink):
    """One annotated still image: ``--save photo.annotated.jpg`` for a photo source."""

    flag = "--save"

    def __init__(self, path: str | os.PathLike[str]):
        """Prepare the output (written when the run ends).

        Raises:
            FerEdgeError: not an image suffix of :data:`IMAGE_SAVE_SUFFIXES`, or an unwritable
                folder.
        """
        self.path = Path(path)
        if self.path.suffix.lower() not in IMAGE_SAVE_SUFFIXES:
            raise FerEdgeError(
                f"--save: {self.path.name}: use one of {', '.join(IMAGE_SAVE_SUFFIXES)}"
            )
        self.pending = self._start(self.path)
        self._image: np.ndarray | None = None

    def write(self, result: FrameResult) -> None:
        """Keep the annotated frame; a second frame is an error (an image holds one)."""
        if self._image is not None:
            # An output error: the run's other outputs are dropped too, none is half-right.
            raise OutputError(
                f"--save: {self.path.name} is an image and holds one frame; the source has "
                f"more (save a video: {', '.join(sorted(VIDEO_CODECS))})"
            )
        self._image = draw_faces(result.frame.image, result.faces)

    def _finish(self) -> bool:
        image, self._image = self._image, None
        if image is None:
            return False
        assert self.pending is not None
        ok, encoded = cv2.imencode(self.path.suffix.lower(), image)
        if not ok:
            raise FerEdgeError(f"--save: OpenCV cannot encode {self.path.name}")
        self.pending.tmp.write_bytes(encoded.tobytes())
        return True


def save_sink(
    path: str | os.PathLike[str],
    fps: float,
    follow_time: bool,
    durable_after: float | None = None,
) -> ImageSink | VideoSink:
    """Return the ``--save`` sink for ``path``: a still image by its suffix, else a video.

    ``durable_after`` applies to a video (see :class:`VideoSink`); an image is one frame.
    """
    if Path(path).suffix.lower() in IMAGE_SAVE_SUFFIXES:
        return ImageSink(path)
    return VideoSink(path, fps, follow_time=follow_time, durable_after=durable_after)


def video_frames_readable(path: Path, expected: int) -> int:
    """Return how many of ``expected`` frames the video at ``path`` holds (0: unreadable).

    Counts from the container and decodes the last frame: a file cut short by a full disk
    either has no index (MP4) or an index that promises frames the file lacks (AVI).
    """
    with quiet_stderr():
        cap = cv2.VideoCapture(str(path))
        try:
            if not cap.isOpened():
                return 0
            count = min(int(cap.get(cv2.CAP_PROP_FRAME_COUNT)), expected)
            if count < 1:
                return 0
            cap.set(cv2.CAP_PROP_POS_FRAMES, count - 1)
            ok, _ = cap.read()
            return count if ok else 0
        finally:
            cap.release()


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
