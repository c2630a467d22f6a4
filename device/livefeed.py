"""The live view's shared state: the newest frame and its faces, recent timings, a JPEG encoder.

The frame loop publishes into a :class:`LiveFeed`; HTTP threads read from it. Publishing never
waits for a reader: it swaps in the newest frame under a lock held for a few assignments, and a
background thread draws and JPEG-encodes only the newest frame, only while someone is watching.
A reader that falls behind gets the newest JPEG when it is ready again; the frames in between
are dropped, never queued.
"""

from __future__ import annotations

import contextlib
import functools
import statistics
import threading
import time
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from fer_edge.device.sinks import draw_faces
from fer_edge.faces import FrameResult, jsonl_record
from fer_edge.timing import StageTimings

#: Frames (and per-stage samples) the recent fps and stage means are taken over.
WINDOW = 60
JPEG_QUALITY = 80
#: No frame for this long and ``/healthz`` reports the loop as stalled.
STALL_SECONDS = 10.0


@dataclass(frozen=True)
class EncodedFrame:
    """One annotated frame as a JPEG.

    Attributes:
        seq: the feed's frame counter when it was published (increases by one per frame).
        index: the frame's index in its source.
        jpeg: the encoded image.
    """

    seq: int
    index: int
    jpeg: bytes


@dataclass(frozen=True)
class Metrics:
    """What ``/metrics`` reports.

    Attributes:
        frames: frames the loop has processed since the feed started.
        faces: faces classified since then.
        fps: frames per second over the last :data:`WINDOW` frames.
        stage_ms: mean milliseconds per stage over recent samples (``classify`` per face, the
            others per frame).
        viewers: open MJPEG streams.
        encoded: frames drawn and JPEG-encoded for viewers.
        uptime_s: seconds since the feed started.
        last_frame_age_s: seconds since the newest frame (``None`` before the first).
        run: what is running (model, detector, runtime, source).
    """

    frames: int
    faces: int
    fps: float
    stage_ms: dict[str, float]
    viewers: int
    encoded: int
    uptime_s: float
    last_frame_age_s: float | None
    run: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form, numbers rounded for reading."""
        return {
            "frames": self.frames,
            "faces": self.faces,
            "fps": round(self.fps, 2),
            "stage_ms": {name: round(ms, 3) for name, ms in self.stage_ms.items()},
            "viewers": self.viewers,
            "encoded": self.encoded,
            "uptime_s": round(self.uptime_s, 2),
            "last_frame_age_s": (
                None if self.last_frame_age_s is None else round(self.last_frame_age_s, 3)
            ),
            "run": dict(self.run),
        }


@dataclass
class _Latest:
    """The newest frame as the loop handed it over.

    Attributes:
        seq: frames published so far.
        result: the newest frame and its faces (``None`` before the first).
        image: the newest frame's image while someone watches, for the encoder; else ``None``.
    """

    seq: int = 0
    result: FrameResult | None = None
    image: np.ndarray | None = None


class LiveFeed:
    """The newest frame, faces and timings of a running loop, shared with HTTP threads."""

    def __init__(
        self,
        timings: StageTimings | None = None,
        run_info: Mapping[str, str] | None = None,
        jpeg_quality: int = JPEG_QUALITY,
    ):
        """Start the encoder thread (it sleeps until someone watches).

        Args:
            timings: the loop's per-stage samples, reported in its stage order; read on the
                loop's thread only (``None``: no stage times).
            run_info: fixed facts shown on the page (model, detector, runtime, source).
            jpeg_quality: OpenCV JPEG quality, 0-100.
        """
        self._timings = timings
        stages = timings.stages if timings is not None else ()
        self._recent: dict[str, list[float]] = {name: [] for name in stages}
        self._run_info = dict(run_info or {})
        self._params = [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)]
        self._lock = threading.Lock()
        # Two conditions on one lock: a new frame wakes only the encoder, a new JPEG only the
        # viewers, so nobody is woken for nothing while the loop runs.
        self._new_frame = threading.Condition(self._lock)
        self._new_jpeg = threading.Condition(self._lock)
        self._latest = _Latest()
        self._jpeg: EncodedFrame | None = None
        self._watchers = 0
        self._closed = False
        self._frames = 0
        self._faces = 0
        self._encoded = 0
        self._frame_times: deque[float] = deque(maxlen=WINDOW + 1)
        self._started = time.monotonic()
        self._encoder = threading.Thread(target=self._encode_loop, name="live-jpeg", daemon=True)
        self._encoder.start()

    # --- the loop's side ----------------------------------------------------------------

    def publish(self, result: FrameResult) -> None:
        """Make this frame the newest; returns at once whatever the viewers are doing.

        The image is kept by reference, not copied: sinks must not modify frames and every
        source yields a fresh array per frame.
        """
        now = time.monotonic()
        # The loop's samples are copied here, on the loop's thread, rather than read from the
        # HTTP threads while the loop adds to them.
        recent = (
            {name: self._timings.recent(name, WINDOW) for name in self._timings.stages}
            if self._timings is not None
            else {}
        )
        with self._lock:
            self._recent = recent
            self._frames += 1
            self._faces += len(result.faces)
            self._frame_times.append(now)
            latest = self._latest
            latest.seq += 1
            latest.result = result
            # Without viewers nobody needs the pixels: no encoding work at all.
            if self._watchers:
                latest.image = result.frame.image
                self._new_frame.notify()
            else:
                latest.image = None

    def close(self) -> None:
        """Wake every waiting reader and stop the encoder."""
        with self._lock:
            self._closed = True
            self._new_frame.notify_all()
            self._new_jpeg.notify_all()
        self._encoder.join(timeout=5.0)

    # --- the readers' side --------------------------------------------------------------

    @property
    def closed(self) -> bool:
        """True once the run has ended."""
        return self._closed

    @contextlib.contextmanager
    def watch(self, limit: int | None = None) -> Iterator[bool]:
        """Count the caller as a viewer for the duration of the block (encoding runs meanwhile).

        Args:
            limit: admit the caller only while fewer than this many are watching.

        Yields:
            Whether the caller was admitted (and counted). The check and the count are one
            step under the lock, so concurrent callers can never exceed ``limit``.
        """
        with self._lock:
            admitted = limit is None or self._watchers < limit
            if admitted:
                self._watchers += 1
        if not admitted:
            yield False
            return
        try:
            yield True
        finally:
            with self._lock:
                self._watchers -= 1
                if not self._watchers:
                    # A later viewer must not start with a picture from long ago.
                    self._jpeg = None
                    self._latest.image = None

    def next_jpeg(self, after_seq: int, timeout: float) -> EncodedFrame | None:
        """Wait for a JPEG newer than ``after_seq``; call inside :meth:`watch`.

        Returns:
            The newest encoded frame, or ``None`` on timeout or when the feed closed.
        """
        with self._new_jpeg:
            self._new_jpeg.wait_for(
                lambda: self._closed or (self._jpeg is not None and self._jpeg.seq > after_seq),
                timeout,
            )
            if self._closed or self._jpeg is None or self._jpeg.seq <= after_seq:
                return None
            return self._jpeg

    @property
    def viewers(self) -> int:
        """Readers currently inside :meth:`watch`."""
        return self._watchers

    def faces(self) -> dict[str, Any]:
        """Return the newest frame's faces in the JSONL form: ``{"frame", "t", "faces"}``."""
        with self._lock:
            result = self._latest.result
        if result is None:
            return {"frame": -1, "t": 0.0, "faces": []}
        return jsonl_record(result)

    def metrics(self) -> Metrics:
        """Return counters, recent fps and recent per-stage means."""
        with self._lock:
            times = list(self._frame_times)
            recent = self._recent
            frames, faces, encoded, viewers = (
                self._frames,
                self._faces,
                self._encoded,
                self._watchers,
            )
        now = time.monotonic()
        span = times[-1] - times[0] if len(times) > 1 else 0.0
        return Metrics(
            frames=frames,
            faces=faces,
            fps=(len(times) - 1) / span if span > 0 else 0.0,
            stage_ms={
                name: 1000.0 * statistics.fmean(values) if values else 0.0
                for name, values in recent.items()
            },
            viewers=viewers,
            encoded=encoded,
            uptime_s=now - self._started,
            last_frame_age_s=now - times[-1] if times else None,
            run=self._run_info,
        )

    def health(self) -> tuple[bool, dict[str, Any]]:
        """Return ``(healthy, body)``: unhealthy once no frame arrived for :data:`STALL_SECONDS`."""
        metrics = self.metrics()
        age = metrics.uptime_s if metrics.last_frame_age_s is None else metrics.last_frame_age_s
        if self._closed:
            status = "stopped"
        elif age > STALL_SECONDS:
            status = "stalled"
        else:
            status = "ok" if metrics.frames else "starting"
        body = {"status": status, "frames": metrics.frames, "last_frame_age_s": round(age, 3)}
        return status in ("ok", "starting"), body

    # --- the encoder thread -------------------------------------------------------------

    def _has_new_image(self, done: int) -> bool:
        return self._closed or (self._latest.image is not None and self._latest.seq > done)

    def _encode_loop(self) -> None:
        done = 0
        while True:
            with self._new_frame:
                self._new_frame.wait_for(functools.partial(self._has_new_image, done))
                if self._closed:
                    return
                latest = self._latest
                seq, image, result = latest.seq, latest.image, latest.result
            # Drawing and encoding run outside the lock (OpenCV releases the GIL), so the loop
            # keeps publishing; whatever it published meanwhile is skipped, not queued.
            if image is None or result is None:  # only when closed, which returned above
                continue
            ok, buffer = cv2.imencode(".jpg", draw_faces(image, result.faces), self._params)
            done = seq
            if not ok:
                continue
            with self._lock:
                if self._watchers:
                    self._jpeg = EncodedFrame(seq, result.frame.index, buffer.tobytes())
                    self._encoded += 1
                    self._new_jpeg.notify_all()
