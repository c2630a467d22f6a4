"""Frame sources behind one small interface: cameras, a Pi camera, video files and images.

Every source yields :class:`Frame` objects holding a BGR ``uint8`` image (OpenCV's order), so the
detector and the sinks never care where a frame came from. A frame that fails to decode is
skipped and counted in ``skipped``; one that decodes with damage (libjpeg complained on
stderr) is counted in ``damaged``, the complaint kept off the terminal (FFmpeg is kept quiet:
it conceals damage itself). A source that cannot be opened at all raises
:class:`~fer_edge.errors.FerEdgeError` naming ``--source``.
"""

from __future__ import annotations

import contextlib
import glob
import os
import stat
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np

from fer_edge.data import IMAGE_SUFFIXES
from fer_edge.device.imageheader import image_size
from fer_edge.errors import FerEdgeError
from fer_edge.faces import Frame
from fer_edge.quiet import quiet_stderr

#: Largest ``--size`` side: 8K (DCI 8192x4320) and a little room; beyond it a resized frame
#: takes gigabytes and OpenCV fails deep inside ``cv2.resize``.
MAX_FRAME_SIDE = 8192
#: Default ``--max-pixels``: images and video frames larger than this are not decoded. 50 MP
#: (a 48 MP phone photo fits) is about 150 MB as BGR, which a 1 GB Raspberry Pi can hold
#: beside the model; a header-bomb PNG of 20000x20000 (400 MP, 1.2 GB) is skipped.
DEFAULT_MAX_PIXELS = 50_000_000
#: Images with a side under this many pixels are skipped like corrupt ones: no face fits,
#: and OpenCV's resizes fail on them.
MIN_IMAGE_SIDE = 16
#: Reads that fail in a row before a video counts as ended (trailing failures are not skips).
VIDEO_END_AFTER = 8
#: Reads that fail in a row before a live camera counts as gone.
CAMERA_GIVE_UP_AFTER = 30


class FrameSource(Protocol):
    """What the runner needs from a source.

    Attributes:
        description: a short human-readable name (``video clip.mp4``, ``camera 0``).
        fps: the nominal frame rate, if the source has one.
        timed: frame times are real (a video's timestamps, a camera's clock), so a saved video
            can follow them; false for still images.
        skipped: frames that failed to decode so far.
        damaged: frames that decoded while the decoder reported damage (they are used).
    """

    description: str
    fps: float | None
    timed: bool
    skipped: int
    damaged: int

    def frames(self) -> Iterator[Frame]:
        """Yield frames until the source ends."""
        ...

    def close(self) -> None:
        """Release the device or file; safe to call twice."""
        ...


def _as_bgr(image: np.ndarray) -> np.ndarray:
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    return image


def _fit(image: np.ndarray, size: tuple[int, int] | None) -> np.ndarray:
    if size is None or (image.shape[1], image.shape[0]) == size:
        return image
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


class DecoderNoise:
    """Runs decoder calls with their stderr complaints caught, and says who complained.

    A damaged JPEG or video frame makes libjpeg or FFmpeg print to stderr, a line per
    problem, burying our status line and summary; we count such frames instead.
    """

    def __init__(self) -> None:
        self._scratch: Any = None

    def call(self, fn: Callable[..., Any], *args: Any) -> tuple[Any, bool]:
        """Return ``(fn(*args), whether it wrote anything to stderr)``."""
        if self._scratch is None:
            self._scratch = tempfile.TemporaryFile()  # noqa: SIM115 - kept until close()
        fd = self._scratch.fileno()
        with quiet_stderr(fd):
            result = fn(*args)
        noisy = os.lseek(fd, 0, os.SEEK_CUR) > 0
        if noisy:
            os.ftruncate(fd, 0)
            os.lseek(fd, 0, os.SEEK_SET)
        return result, noisy

    def close(self) -> None:
        """Delete the scratch file."""
        scratch, self._scratch = self._scratch, None
        if scratch is not None:
            scratch.close()


@contextlib.contextmanager
def _quiet_opencv() -> Iterator[None]:
    """Silence OpenCV's and FFmpeg's own stderr chatter while opening a source.

    We report a failed open ourselves in one line; the library warnings would bury it.
    """
    # FFmpeg's decoder threads report damaged video frames at any moment, not only inside
    # our read() calls; OpenCV reads this variable when it first uses FFmpeg (-8: quiet).
    # Damaged frames come out concealed, missing frames are counted as skipped.
    if "OPENCV_FFMPEG_DEBUG" not in os.environ:
        os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
    # cv2.utils.logging is missing from OpenCV 4.11, the newest that a tflite-runtime install
    # gets (it needs numpy<2); the top-level functions do the same there. 2 is ERROR in both.
    logging = getattr(cv2.utils, "logging", cv2)
    previous = logging.getLogLevel()
    logging.setLogLevel(2)
    try:
        with quiet_stderr():
            yield
    finally:
        logging.setLogLevel(previous)


class _DecodingSource:
    """What the decoding sources share: the description, frame rate, counts and noise catcher."""

    def __init__(self, description: str, fps: float | None = None):
        """Start counting; call once the source has opened (the noise catcher holds a file)."""
        self.description = description
        self.fps = fps
        self.skipped = 0
        self.damaged = 0
        self._noise = DecoderNoise()

    def close(self) -> None:
        """Delete the decoder-noise scratch file."""
        self._noise.close()


def check_image(path: Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> str | None:
    """Return why the image at ``path`` must not be decoded, or ``None`` when it may be.

    The reason reads after "PATH is": ``not a readable image``, ``1x1 px: too small...``.

    Only the header is read (:func:`~fer_edge.device.imageheader.image_size`): a file that is
    not a regular file, has no readable header, is under :data:`MIN_IMAGE_SIDE` a side or
    over ``max_pixels`` is refused before OpenCV allocates anything.
    """
    if not is_regular_file(path):
        return "not a regular file"
    try:
        size = image_size(path)
    except OSError as exc:
        return f"not readable ({exc.strerror})"
    if size is None:
        return "not a readable image"
    width, height = size
    if min(width, height) < MIN_IMAGE_SIDE:
        return f"{width}x{height} px: too small for a face (under {MIN_IMAGE_SIDE} px a side)"
    if width * height > max_pixels:
        return (
            f"{width}x{height} px ({width * height / 1e6:.0f} MP): over --max-pixels "
            f"{max_pixels} (raise it to read this image)"
        )
    return None


class ImageSource(_DecodingSource):
    """Still images: one file, a folder (sorted) or a glob pattern (sorted)."""

    timed = False

    def __init__(
        self,
        paths: Sequence[Path],
        description: str,
        size: tuple[int, int] | None,
        every: int = 1,
        max_pixels: int = DEFAULT_MAX_PIXELS,
    ):
        """Create a source over ``paths`` (already resolved and non-empty).

        ``every`` > 1 yields only every ``every``-th file (its index stays its position in
        ``paths``); the others are not read. Images over ``max_pixels`` (by their header)
        or under :data:`MIN_IMAGE_SIDE` a side are skipped and counted, never decoded.
        """
        super().__init__(description)
        self.paths = list(paths)
        self._size = size
        self._every = every
        self._max_pixels = max_pixels

    def frames(self) -> Iterator[Frame]:
        """Yield each decodable image once; count the others in ``skipped``."""
        start = time.perf_counter()
        for index, path in enumerate(self.paths):
            if index % self._every:
                continue
            problem = check_image(path, self._max_pixels)
            if problem is not None:
                if "--max-pixels" in problem:  # the one skip a flag can undo: say which
                    print(f"skipped {path}, which is {problem}", file=sys.stderr)
                self.skipped += 1
                continue
            image, noisy = self._noise.call(cv2.imread, str(path), cv2.IMREAD_COLOR)
            if image is None or min(image.shape[:2]) < MIN_IMAGE_SIDE:
                self.skipped += 1
                continue
            self.damaged += int(noisy)
            yield Frame(index, time.perf_counter() - start, _fit(image, self._size), path.name)


class VideoSource(_DecodingSource):
    """A video file read with OpenCV (FFmpeg)."""

    timed = True

    def __init__(
        self,
        path: Path,
        size: tuple[int, int] | None,
        every: int = 1,
        max_pixels: int = DEFAULT_MAX_PIXELS,
    ):
        """Open ``path``.

        ``every`` > 1 yields only every ``every``-th frame; the others are only grabbed (no
        colour conversion, no copy), so frame indices and timestamps stay those of the file.

        Raises:
            FerEdgeError: the file cannot be opened as a video, or its frames are over
                ``max_pixels`` or under :data:`MIN_IMAGE_SIDE` a side.
        """
        with _quiet_opencv():
            self._cap = cv2.VideoCapture(str(path))
            opened = self._cap.isOpened()
        if not opened:
            raise FerEdgeError(f"--source: cannot open {path} as a video")
        width = int(self._cap.get(cv2.CAP_PROP_FRAME_WIDTH))
        height = int(self._cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        tiny = 0 < min(width, height) < MIN_IMAGE_SIDE  # 0: the container does not say
        if width * height > max_pixels or tiny:
            self._cap.release()
            raise FerEdgeError(
                f"--source: {path} has {width}x{height} frames: over --max-pixels {max_pixels} "
                f"or under {MIN_IMAGE_SIDE} px a side"
            )
        fps = self._cap.get(cv2.CAP_PROP_FPS)
        super().__init__(f"video {path.name}", float(fps) if fps and fps > 0 else None)
        self._size = size
        self._every = every

    def frames(self) -> Iterator[Frame]:
        """Yield frames with their timestamps in the file.

        A failed read is a skipped frame only if a later read succeeds: failures at the end of
        the file are just the end.
        """
        index = 0
        pending = 0
        while True:
            wanted = index % self._every == 0
            # read() is grab() + retrieve(); a frame --every does not want is only grabbed.
            ok, noisy = self._noise.call(self._cap.grab)
            image = None
            if ok and wanted:
                (_, image), noisy_retrieve = self._noise.call(self._cap.retrieve)
                noisy = noisy or noisy_retrieve
            if not ok or (wanted and image is None):
                pending += 1
                index += 1
                if pending >= VIDEO_END_AFTER:
                    return
                continue
            self.skipped += pending
            self.damaged += int(noisy)
            pending = 0
            if image is not None:  # a wanted frame (the others were only grabbed)
                msec = self._cap.get(cv2.CAP_PROP_POS_MSEC)
                t = msec / 1000.0 if msec > 0 or index == 0 else index / (self.fps or 30.0)
                yield Frame(index, t, _fit(_as_bgr(image), self._size))
            index += 1

    def close(self) -> None:
        """Release the file."""
        self._cap.release()
        super().close()


class CameraSource(_DecodingSource):
    """A USB/V4L2 camera opened by index (``0``) or device path (``/dev/video0``)."""

    timed = True

    def __init__(self, device: int | str, size: tuple[int, int] | None, max_fps: float | None):
        """Open the camera and read one frame to prove it delivers.

        Raises:
            FerEdgeError: no camera there, or it delivers no frames.
        """
        with _quiet_opencv():
            self._cap = cv2.VideoCapture(device)
            opened = self._cap.isOpened()
        if not opened:
            raise FerEdgeError(f"--source {device}: no camera found (is one connected?)")
        if size is not None:
            self._cap.set(cv2.CAP_PROP_FRAME_WIDTH, size[0])
            self._cap.set(cv2.CAP_PROP_FRAME_HEIGHT, size[1])
        if max_fps is not None:
            self._cap.set(cv2.CAP_PROP_FPS, max_fps)
        ok, first = self._cap.read()
        if not ok or first is None:
            self._cap.release()
            raise FerEdgeError(f"--source {device}: the camera opened but delivers no frames")
        fps = self._cap.get(cv2.CAP_PROP_FPS)
        # USB cameras sending MJPEG often make libjpeg complain about every frame.
        super().__init__(f"camera {device}", float(fps) if fps and fps > 0 else None)
        self._first: np.ndarray | None = first

    def frames(self) -> Iterator[Frame]:
        """Yield frames until the camera stops delivering.

        Raises:
            FerEdgeError: the camera failed :data:`CAMERA_GIVE_UP_AFTER` reads in a row.
        """
        start = time.perf_counter()
        index = 0
        failures = 0
        while True:
            if self._first is not None:
                ok, image, self._first = True, self._first, None
            else:
                (ok, image), noisy = self._noise.call(self._cap.read)
                self.damaged += int(noisy and ok)
            if not ok or image is None:
                self.skipped += 1
                failures += 1
                if failures >= CAMERA_GIVE_UP_AFTER:
                    raise FerEdgeError(
                        f"{self.description}: stopped delivering frames ({failures} failed reads)"
                    )
                index += 1
                continue
            failures = 0
            yield Frame(index, time.perf_counter() - start, _as_bgr(image))
            index += 1

    def close(self) -> None:
        """Release the camera."""
        self._cap.release()
        super().close()


class PicameraSource:
    """The Raspberry Pi camera through picamera2 (imported only when this source is chosen).

    ``RGB888`` in picamera2 is BGR in memory, so its arrays go to OpenCV unchanged.
    """

    timed = True

    def __init__(self, size: tuple[int, int] | None, max_fps: float | None):
        """Start the camera.

        Raises:
            FerEdgeError: picamera2 is missing, or no camera is attached.
        """
        try:
            from picamera2 import Picamera2
        except ImportError:
            raise FerEdgeError(
                "--source picamera: picamera2 is not installed; on a Raspberry Pi run "
                "'sudo apt install python3-picamera2' or 'pip install \"fer-edge[pi]\"'"
            ) from None
        # apt's picamera2 stack (simplejpeg) is built for Debian's numpy 1; under numpy 2 in a
        # venv it fails with "numpy.dtype size changed".
        except ValueError as exc:
            raise FerEdgeError(
                f"--source picamera: picamera2 cannot load with this numpy ({exc}); in the venv "
                "run 'pip install --ignore-installed --no-deps simplejpeg'"
            ) from None
        self.description = "picamera"
        self.fps = max_fps
        self.skipped = 0
        self.damaged = 0
        try:
            self._cam: Any = Picamera2()
        # picamera2 raises IndexError/RuntimeError when libcamera lists no camera.
        except Exception as exc:  # noqa: BLE001
            raise FerEdgeError(f"--source picamera: no camera available ({exc})") from None
        try:
            config = self._cam.create_video_configuration(
                main={"size": tuple(size or (640, 480)), "format": "RGB888"}
            )
            self._cam.configure(config)
            if max_fps is not None:
                self._cam.set_controls({"FrameRate": float(max_fps)})
            self._cam.start()
        except Exception as exc:  # noqa: BLE001
            self._cam.close()
            raise FerEdgeError(f"--source picamera: cannot start the camera ({exc})") from None

    def frames(self) -> Iterator[Frame]:
        """Yield frames until closed."""
        start = time.perf_counter()
        index = 0
        while True:
            image = self._cam.capture_array("main")
            yield Frame(index, time.perf_counter() - start, _as_bgr(np.asarray(image)))
            index += 1

    def close(self) -> None:
        """Stop and release the camera."""
        cam, self._cam = self._cam, None
        if cam is not None:
            with contextlib.suppress(Exception):
                cam.stop()
            cam.close()


def is_regular_file(path: str | os.PathLike[str]) -> bool:
    """True for a regular file (or a symlink to one): never a FIFO, socket or device.

    Opening a FIFO named ``x.jpg`` blocks until a writer comes, which may be never.
    """
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False


def _image_files(folder: Path) -> list[Path]:
    return sorted(
        p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and is_regular_file(p)
    )


def _glob_files(spec: str) -> list[Path]:
    return sorted(Path(p) for p in glob.glob(os.path.expanduser(spec)) if is_regular_file(p))


def source_files(spec: str) -> list[Path]:
    """Return the files ``--source`` reads (none for cameras or a missing path).

    The output policy checks outputs against them, so no output replaces a file the run
    is about to read (:func:`fer_edge.outputs.check_outputs`).
    """
    spec = spec.strip()
    if spec == "picamera" or spec.isdigit() or spec.startswith("/dev/video"):
        return []
    path = Path(spec).expanduser()
    if path.is_dir():
        return _image_files(path)
    if path.exists():
        return [path]
    return _glob_files(spec) if glob.has_magic(spec) else []


def open_source(
    spec: str,
    size: tuple[int, int] | None = None,
    max_fps: float | None = None,
    every: int = 1,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> FrameSource:
    """Open the frame source named by ``--source``.

    Args:
        spec: ``picamera``; a camera index (``0``) or ``/dev/videoN``; a video file; an image
            file; a folder of images; or a glob pattern such as ``'faces/*.jpg'``.
        size: ``(width, height)``: the capture size for cameras; frames from files are scaled
            to it.
        max_fps: a frame-rate cap requested from cameras (the runner also paces every source).
        every: files only: classify every ``every``-th frame or image (``--every``).
        max_pixels: images and video frames larger than this are not decoded
            (``--max-pixels``; see :func:`check_image`).

    Returns:
        An open source; call ``close()`` when done.

    Raises:
        FerEdgeError: the source is missing, unreadable or not present.
    """
    spec = spec.strip()
    if every < 1:
        raise FerEdgeError(f"--every: must be at least 1, got {every}")
    camera = spec == "picamera" or spec.isdigit() or spec.startswith("/dev/video")
    if camera and every != 1:
        raise FerEdgeError(f"--every: only for video and image files; for {spec} use --max-fps")
    if spec == "picamera":
        return PicameraSource(size, max_fps)
    if spec.isdigit():
        return CameraSource(int(spec), size, max_fps)
    if spec.startswith("/dev/video"):
        return CameraSource(spec, size, max_fps)
    path = Path(spec).expanduser()
    if path.is_dir():
        files = _image_files(path)
        if not files:
            raise FerEdgeError(f"--source: folder {path} holds no images")
        return ImageSource(files, f"images in {path}", size, every, max_pixels)
    if path.exists() and not is_regular_file(path):
        raise FerEdgeError(f"--source: {path} is not a regular file (a pipe, socket or device)")
    if path.is_file():
        if not os.access(path, os.R_OK):
            raise FerEdgeError(f"--source: {path} is not readable")
        if path.suffix.lower() in IMAGE_SUFFIXES:
            problem = check_image(path, max_pixels)
            if problem is not None:
                raise FerEdgeError(f"--source: {path} is {problem}")
            with quiet_stderr():
                readable = cv2.imread(str(path), cv2.IMREAD_REDUCED_GRAYSCALE_8) is not None
            if not readable:
                raise FerEdgeError(f"--source: {path} is not a readable image")
            return ImageSource([path], f"image {path.name}", size, max_pixels=max_pixels)
        return VideoSource(path, size, every, max_pixels)
    if glob.has_magic(spec):
        files = _glob_files(spec)
        if not files:
            raise FerEdgeError(f"--source: pattern {spec!r} matches no files")
        return ImageSource(files, f"images {spec}", size, every, max_pixels)
    raise FerEdgeError(f"--source: {spec} does not exist (give a file, folder, glob, camera index)")
