"""The device loop: frames -> faces -> crops -> probabilities -> smoothing -> sinks.

:func:`run` is the typed entry point behind ``fer-edge run`` and the benchmark's pipeline mode:
it takes a :class:`RunOptions` and returns a :class:`RunSummary` with the frame rate and the
time spent in each stage. Everything is set up once before the first frame; the loop only
captures, detects, classifies and writes.
"""

from __future__ import annotations

import contextlib
import math
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from fer_edge.atomic import PendingFile
from fer_edge.classifier import ClassifierOptions, FaceClassifier
from fer_edge.detect import (
    CROPS,
    DEFAULT_CROP,
    DEFAULT_DETECT_WIDTH,
    DEFAULT_MARGIN,
    make_detector,
)
from fer_edge.device.csvsink import CsvSink
from fer_edge.device.memory import keep_freed_memory
from fer_edge.device.pipeline import FacePipeline
from fer_edge.device.serve import LiveServer, parse_address
from fer_edge.device.sinks import (
    DURABLE_AFTER,
    DisplaySink,
    JsonlSink,
    Sink,
    StopRun,
    close_sinks,
    save_sink,
)
from fer_edge.device.smoothing import EmaSmoother
from fer_edge.device.sources import (
    DEFAULT_MAX_PIXELS,
    MAX_FRAME_SIDE,
    FrameSource,
    ImageSource,
    VideoSource,
    open_source,
    source_files,
)
from fer_edge.errors import FerEdgeError, OutputError
from fer_edge.facecrop import CropOptions
from fer_edge.faces import FaceResult, FrameResult
from fer_edge.models import resolve_model
from fer_edge.outputs import check_outputs
from fer_edge.runtime import check_threads
from fer_edge.signals import StopRequest, stop_on_signals
from fer_edge.timing import LatencyStats, StageTimings
from fer_edge.tracking import DEFAULT_DETECT_EVERY, DEFAULT_ROI_SIZE, DetectionCost

#: Stage names in report order.
STAGES: tuple[str, ...] = ("capture", "detect", "classify", "output")
#: What each stage's sample is (classify is timed per face, the others per frame).
STAGE_UNITS: dict[str, str] = {
    "capture": "per frame",
    "detect": "per frame",
    "classify": "per face",
    "output": "per frame",
}


def default_model_path() -> Path:
    """Return the bundled default model shipped in ``fer_edge/models/``.

    Raises:
        FerEdgeError: the package's model files are missing (a broken install).
    """
    return resolve_model(None)


@dataclass
class RunOptions:
    """Everything one run needs; the CLI flags map onto these fields one to one.

    Attributes:
        model: the ``.tflite`` model, or a bundled model's name (``default``, ``fer2013``;
            see :data:`fer_edge.models.BUNDLED_CLASSIFIERS`); ``None``: ``default``.
        source: ``picamera``, a camera index, a video, an image, a folder or a glob.
        detector: ``yunet`` (bundled) or ``haar``.
        detector_model: a YuNet ``.tflite`` or ONNX file (``yunet`` only; ``None``: the bundled
            ``.tflite``).
        detector_threshold: YuNet's minimum score (``None``: its default).
        detect_width: detect on frames scaled down to this width (``None`` or 0: full size).
        detect_every: a full-frame detection at least every this many frames, and between
            them detection only around the tracked faces (1: full frames every frame; see
            :mod:`fer_edge.tracking`).
        roi: side in pixels of the image an ROI detection runs on.
        crop: ``align`` (landmarks onto the model's template), ``box`` or ``both`` (the two
            averaged); ``None``: the detector's default
            (:data:`~fer_edge.detect.DEFAULT_CROP`).
        threads: interpreter CPU threads (``None``: the runtime's default).
        runtime: ``auto``, ``litert``, ``tflite_runtime`` or ``tf``.
        delegate: ``edgetpu`` or ``None``.
        tta: test-time augmentation (``none`` or ``flip``); ``None``: the model card's choice.
        size: ``(width, height)`` capture size for cameras; frames from files are scaled to it.
        max_fps: pace the loop to at most this many frames per second.
        max_frames: stop after this many frames.
        every: files only: classify every Nth frame (or image); the others are skipped fast
            and ``t`` stays the source's time.
        margin: box-crop margin as a fraction of the face box (``None``: the detector's default).
        min_face: smallest face side in pixels.
        max_pixels: images and video frames over this many pixels are not decoded (image
            files are skipped and counted; see :func:`~fer_edge.device.sources.check_image`).
        smoothing: EMA weight of the newest frame in (0, 1]; ``None`` turns smoothing off (faces
            still get stable ids).
        jsonl: a path, or ``-`` for stdout.
        save: an annotated video path (``.mp4``/``.avi``).
        csv: one row per face per frame (:mod:`fer_edge.device.csvsink`).
        report: an HTML report of the run (:mod:`fer_edge.report.html`), written at the end.
        display: show a window (needs a screen and OpenCV with a GUI).
        serve: ``[HOST:]PORT`` for the live page, MJPEG stream and ``/metrics`` (host
            ``127.0.0.1`` unless given; port ``0`` picks a free one).
        serve_token: the live view's credential (``None``: none on loopback, a random one
            printed once on any other address; see :mod:`fer_edge.device.serveauth`).
        durable_after: seconds after which ``jsonl`` and ``csv`` are moved into place and
            appended to there, synced every few seconds, so a crash loses only the last
            seconds (see :class:`~fer_edge.device.sinks.FileSink`); a ``save`` video is also
            written as closed segments that long (see ``VideoSink``); ``None``: only at the end.
        sinks: extra sinks (e.g. a live view); :func:`run` closes them too.
    """

    model: Path | None = None
    source: str = "0"
    detector: str = "yunet"
    detector_model: Path | None = None
    detector_threshold: float | None = None
    detect_width: int | None = DEFAULT_DETECT_WIDTH
    detect_every: int = DEFAULT_DETECT_EVERY
    roi: int = DEFAULT_ROI_SIZE
    crop: str | None = None
    threads: int | None = None
    runtime: str = "auto"
    delegate: str | None = None
    tta: str | None = None
    size: tuple[int, int] | None = None
    max_fps: float | None = None
    max_frames: int | None = None
    every: int = 1
    margin: float | None = None
    min_face: int = 40
    max_pixels: int = DEFAULT_MAX_PIXELS
    smoothing: float | None = 0.5
    jsonl: str | None = None
    save: Path | None = None
    csv: Path | None = None
    report: Path | None = None
    display: bool = False
    serve: str | None = None
    serve_token: str | None = None
    durable_after: float | None = DURABLE_AFTER
    sinks: list[Sink] = field(default_factory=list)

    def validate(self) -> None:
        """Check value ranges and output paths, naming the flag at fault.

        Runs before anything loads, so a bad value or an unwritable output costs no run.

        Raises:
            FerEdgeError: a value out of range, or an output path that cannot be written.
        """
        check_threads(self.threads)
        for flag, value in (
            ("--max-fps", self.max_fps),
            ("--margin", self.margin),
            ("--smooth", self.smoothing),
        ):
            if value is not None and not math.isfinite(value):
                raise FerEdgeError(f"{flag}: must be a finite number, got {value}")
        if self.max_fps is not None and self.max_fps <= 0:
            raise FerEdgeError(f"--max-fps: must be positive, got {self.max_fps}")
        if self.durable_after is not None and not 0 <= self.durable_after < math.inf:
            raise FerEdgeError(f"--durable-after: must be 0 or more, got {self.durable_after}")
        if self.max_pixels < 1:
            raise FerEdgeError(f"--max-pixels: must be at least 1, got {self.max_pixels}")
        if self.max_frames is not None and self.max_frames < 1:
            raise FerEdgeError(f"--max-frames: must be at least 1, got {self.max_frames}")
        if self.every < 1:
            raise FerEdgeError(f"--every: must be at least 1, got {self.every}")
        if self.margin is not None and not -0.25 <= self.margin <= 1.0:
            raise FerEdgeError(f"--margin: must be between -0.25 and 1, got {self.margin}")
        if self.crop is not None and self.crop not in CROPS:
            raise FerEdgeError(f"--crop: choose from {', '.join(CROPS)}, got {self.crop!r}")
        if self.smoothing is not None and not 0.0 < self.smoothing <= 1.0:
            raise FerEdgeError(f"--smooth: must be in (0, 1], got {self.smoothing}")
        if self.size is not None and not 1 <= min(self.size) <= max(self.size) <= MAX_FRAME_SIDE:
            size = f"{self.size[0]}x{self.size[1]}"
            raise FerEdgeError(f"--size: each side must be 1-{MAX_FRAME_SIDE} px, got {size}")
        if self.serve is not None:
            parse_address(self.serve)
        if self.jsonl == "-" and sys.stdout is None:
            raise OutputError("--jsonl -: stdout is closed")
        check_outputs(self.outputs(), self.inputs())

    def outputs(self) -> list[tuple[str, str | Path | None]]:
        """Return ``(flag, path)`` of every file the run writes (``None``: not asked for)."""
        return [
            ("--jsonl", self.jsonl),
            ("--save", self.save),
            ("--csv", self.csv),
            ("--report", self.report),
        ]

    def inputs(self) -> list[tuple[str, str | Path | None]]:
        """Return ``(flag, path)`` of every file the run reads: no output may replace one."""
        files: list[tuple[str, str | Path | None]] = [
            ("--source", path) for path in source_files(self.source)
        ]
        model = self.model if self.model is not None and Path(self.model).exists() else None
        return [*files, ("--model", model), ("--detector-model", self.detector_model)]


@dataclass(frozen=True)
class RunSummary:
    """What a run did and how fast.

    Attributes:
        frames: frames processed.
        faces: faces classified.
        frames_with_faces: frames with at least one face.
        skipped: frames that failed to decode.
        seconds: wall time of the frame loop.
        fps: ``frames / seconds``.
        startup_seconds: time to load the model, detector, source and sinks.
        stages: per-stage timing (see :data:`STAGES` and :data:`STAGE_UNITS`).
        labels: how often each class was the top label.
        stop_reason: ``end of source``, ``max frames``, ``interrupted`` or a sink's reason.
        source: the source's description.
        detector: the detector name.
        model: the model file name.
        quantized: whether the model has an integer input.
        runtime: the interpreter runtime and version.
        threads: the requested interpreter threads (``None``: runtime default).
        crop: how faces were cut out: ``align``, or ``box``/``both`` with the margin.
        damaged: frames used although their decoder reported damage.
        stop_signal: the signal that interrupted the run (``None``: not interrupted by one).
        detection: detection work split by kind of pass; ``None`` when no frame came.
    """

    frames: int
    faces: int
    frames_with_faces: int
    skipped: int
    seconds: float
    fps: float
    startup_seconds: float
    stages: dict[str, LatencyStats]
    labels: dict[str, int]
    stop_reason: str
    source: str
    detector: str
    model: str
    quantized: bool
    runtime: str
    threads: int | None
    crop: str = ""
    damaged: int = 0
    stop_signal: int | None = None
    detection: DetectionCost | None = None

    @property
    def interrupted(self) -> bool:
        """True when Ctrl-C ended the run."""
        return self.stop_reason == "interrupted"

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict (stages as nested dicts of plain numbers)."""
        out = asdict(self)
        out["stages"] = {name: asdict(stats) for name, stats in self.stages.items()}
        out["detection"] = self.detection.to_dict() if self.detection is not None else None
        return out

    def format(self) -> str:
        """Return the human-readable exit summary."""
        kind = "int8" if self.quantized else "float"
        threads = "default" if self.threads is None else str(self.threads)
        lines = [
            f"{self.frames} frames from {self.source} in {self.seconds:.2f} s: {self.fps:.1f} fps"
            f" ({self.stop_reason}; {self.skipped} skipped"
            + (f", {self.damaged} damaged" if self.damaged else "")
            + f", startup {self.startup_seconds:.2f} s)",
            f"faces: {self.faces} in {self.frames_with_faces} frames"
            + (f" ({100.0 * self.frames_with_faces / self.frames:.0f}%)" if self.frames else ""),
            f"model: {self.model} ({kind}) on {self.runtime}, threads {threads}; "
            f"detector: {self.detector}, crop: {self.crop}",
        ]
        if self.detection is not None:
            lines.append(self.detection.describe())
        if self.labels:
            top = sorted(self.labels.items(), key=lambda kv: (-kv[1], kv[0]))
            lines.append("labels: " + ", ".join(f"{k} {v}" for k, v in top))
        lines.append(f"{'stage':<10}{'median':>9}{'mean':>9}{'p90':>9}  ms")
        for name in STAGES:
            s = self.stages[name]
            lines.append(
                f"{name:<10}{s.median_ms:9.2f}{s.mean_ms:9.2f}{s.p90_ms:9.2f}"
                f"  {STAGE_UNITS[name]} (n={s.count})"
            )
        return "\n".join(lines)


def frame_source_name(source: FrameSource, spec: str) -> Callable[[int], str]:
    """Return the name of the file (or device) each frame index of ``source`` comes from."""
    if isinstance(source, ImageSource):
        paths = [str(p) for p in source.paths]
        return lambda index: paths[index]
    name = str(Path(spec.strip()).expanduser()) if isinstance(source, VideoSource) else spec
    return lambda index: name


def _build_sinks(
    options: RunOptions,
    source: FrameSource,
    stack: contextlib.ExitStack,
    timings: StageTimings | None = None,
    run_info: dict[str, str] | None = None,
    labels: Sequence[str] = (),
) -> tuple[list[Sink], list[PendingFile]]:
    sinks: list[Sink] = []

    def close(exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        # Every sink built so far, also when a later one failed to build; the file outputs
        # are committed together, or (after a write error) none of them.
        close_sinks(sinks, exc, later)

    later: list[PendingFile] = []  # the report, written after the loop
    stack.push(close)
    add = sinks.append

    # The video first: a writer that cannot open fails on the first frame before any other
    # sink has it, so no output holds a frame the video lacks.
    if options.save is not None:
        # Still images get a couple per second, slow enough to look at.
        fps = (source.fps or options.max_fps or 30.0) if source.timed else options.max_fps or 2.0
        add(save_sink(options.save, fps, source.timed, options.durable_after))
    if options.jsonl is not None:
        # Image folders and globs: every line names its file, to join results back to photos.
        image_files = isinstance(source, ImageSource)
        names = frame_source_name(source, options.source) if image_files else None
        add(JsonlSink(options.jsonl, names, options.durable_after))
    if options.csv is not None:
        names = frame_source_name(source, options.source)
        add(CsvSink(options.csv, labels, names, options.durable_after))
    if options.report is not None:
        # The analytics stage loads only for --report (docs/architecture.md).
        from fer_edge.report.html import ReportSink

        add(ReportSink(source.description))
    if options.display:
        add(DisplaySink())
    if options.serve is not None:
        info = {"source": source.description, **(run_info or {})}
        add(LiveServer(parse_address(options.serve), timings, info, token=options.serve_token))
    # Callers' sinks were built by them, but closing them is part of ending a run.
    for sink in options.sinks:
        add(sink)
    return sinks, later


@dataclass
class _Tally:
    """Counts kept while the loop runs."""

    frames: int = 0
    faces: int = 0
    frames_with_faces: int = 0
    labels: Counter[str] = field(default_factory=Counter)

    def add(self, faces: list[FaceResult]) -> None:
        self.frames += 1
        self.faces += len(faces)
        self.frames_with_faces += bool(faces)
        self.labels.update(face.label for face in faces)


def _crop_options(options: RunOptions, detector: str) -> CropOptions:
    """Resolve ``--crop`` and ``--margin`` against the detector's defaults."""
    mode = options.crop or DEFAULT_CROP[detector]
    if mode != "box" and detector == "haar":
        raise FerEdgeError(f"--crop {mode} needs landmarks, which Haar does not give: use yunet")
    margin = DEFAULT_MARGIN[detector] if options.margin is None else options.margin
    return CropOptions(mode=mode, margin=margin)


def run(options: RunOptions) -> RunSummary:
    """Run the device loop until the source ends, ``max_frames``, Ctrl-C or a sink stops it.

    Ctrl-C (or SIGTERM) is not an error here: the current frame is finished, the source is
    closed, every sink is flushed and closed (files moved into place), and the summary says
    ``interrupted``.

    Args:
        options: what to run.

    Returns:
        The run's summary.

    Raises:
        FerEdgeError: bad options, model, detector, source or output path.
    """
    options.validate()
    keep_freed_memory()  # YuNet's per-frame buffers would page-fault anew each frame
    started = time.perf_counter()
    model_path = resolve_model(options.model)
    classifier = FaceClassifier(
        model_path,
        ClassifierOptions(options.threads, options.runtime, options.delegate, options.tta),
    )
    detector = make_detector(
        options.detector,
        options.detector_model,
        options.min_face,
        options.detector_threshold,
        options.detect_width,
        threads=options.threads,
        runtime=options.runtime,
        detect_every=options.detect_every,
        roi_size=options.roi,
    )
    crop = _crop_options(options, detector.name)
    smoother = EmaSmoother(options.smoothing) if options.smoothing is not None else None
    # The loop owns the timings: the pipeline adds detect and classify, the loop the rest.
    timings = StageTimings(STAGES)
    pipeline = FacePipeline(detector, classifier, crop, smoother, timings)
    tally = _Tally()
    stop_reason = "end of source"
    stop = StopRequest()  # replaced by the signal handlers' own once the loop starts
    period = 1.0 / options.max_fps if options.max_fps else 0.0

    with contextlib.ExitStack() as stack:
        source = open_source(
            options.source, options.size, options.max_fps, options.every, options.max_pixels
        )
        stack.callback(source.close)
        run_info = {
            "model": model_path.name,
            "detector": detector.name,
            "runtime": classifier.runtime.describe(),
        }
        sinks, later = _build_sinks(options, source, stack, timings, run_info, classifier.labels)
        report = None
        if options.report is not None:
            # The analytics stage loads only for --report (docs/architecture.md).
            from fer_edge.report.html import ReportSink, write_report

            report = next((sink for sink in sinks if isinstance(sink, ReportSink)), None)
        startup = time.perf_counter() - started
        loop_start = next_due = time.perf_counter()
        iterator = source.frames()
        try:
            # Ctrl-C and SIGTERM (``systemctl stop``) stop after this frame: the frame in
            # flight still reaches every sink, so the outputs agree with each other (every
            # JSONL line has its video frame). A second signal interrupts at once.
            with stop_on_signals() as stop:
                while True:
                    if stop.requested:
                        stop_reason = "interrupted"
                        break
                    if options.max_frames is not None and tally.frames >= options.max_frames:
                        stop_reason = "max frames"
                        break
                    if period:
                        # Pacing sleeps are not capture time.
                        time.sleep(max(0.0, next_due - time.perf_counter()))
                        next_due = max(next_due + period, time.perf_counter())
                    t0 = time.perf_counter()
                    frame = next(iterator, None)
                    capture = time.perf_counter() - t0
                    if frame is None:
                        break
                    timings.add("capture", capture)
                    if not source.timed:
                        # Photos of a folder or glob are unrelated: no smoothing from one to
                        # the next, and a face in the next photo is a new face.
                        pipeline.reset()
                    result = FrameResult(frame, pipeline.process(frame.image))
                    tally.add(result.faces)
                    t0 = time.perf_counter()
                    for sink in sinks:
                        sink.write(result)
                    timings.add("output", time.perf_counter() - t0)
        except KeyboardInterrupt:
            stop_reason = "interrupted"
        except StopRun as reason:
            stop_reason = str(reason) or "stopped"
        seconds = time.perf_counter() - loop_start
        summary = RunSummary(
            frames=tally.frames,
            faces=tally.faces,
            frames_with_faces=tally.frames_with_faces,
            skipped=source.skipped,
            seconds=seconds,
            fps=tally.frames / seconds if seconds > 0 else 0.0,
            startup_seconds=startup,
            stages=timings.stats(),
            labels=dict(tally.labels),
            stop_reason=stop_reason,
            source=source.description,
            detector=detector.name,
            model=model_path.name,
            quantized=classifier.is_quantized,
            runtime=classifier.runtime.describe(),
            threads=options.threads,
            crop=crop.describe(),
            damaged=source.damaged,
            stop_signal=stop.signum if stop_reason == "interrupted" else None,
            detection=detector.cost if tally.frames else None,
        )
        if report is not None and options.report is not None and summary.frames:
            # Written into the run's commit: a report is replaced only with its JSONL and CSV.
            pending = PendingFile(options.report, "--report")
            later.append(pending)
            write_report([report.builder.build(summary.to_dict())], pending.tmp)
    return summary
