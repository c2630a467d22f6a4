"""``fer-edge bench --pipeline``: frame rate and per-stage times of the full device loop.

In the device a "pipeline" is one frame's processing (``FacePipeline``); this bench times the
whole run loop, so its names say "loop". Only the flag keeps its name, ``--pipeline``, and
the JSON document its schema, ``fer-edge-bench-pipeline/1``.

Runs :func:`fer_edge.device.runner.run` on a video (or camera) with no output sinks, once per
runtime and thread count, and reports what the loop spent on capture, detection, classifying
each face (crop, preprocess, invoke) and output.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from fer_edge.bench.environment import Environment, collect_environment
from fer_edge.bench.render import TableReport
from fer_edge.bench.results import Skip
from fer_edge.errors import FerEdgeError
from fer_edge.tracking import DEFAULT_DETECT_EVERY

LOOP_SCHEMA = "fer-edge-bench-pipeline/1"
LOOP_HEADERS: tuple[str, ...] = (
    "runtime",
    "thr",
    "detect every",
    "frames",
    "faces",
    "fps",
    "capture ms",
    "detect ms",
    "det mean ms/fr",
    "full ms (n)",
    "ROI ms (n)",
    "M MACs/fr",
    "classify ms/face",
    "output ms",
    "startup s",
)


@dataclass(frozen=True)
class LoopBenchOptions:
    """What to run through the device loop.

    Attributes:
        source: a video file, image folder or camera (as for ``fer-edge run --source``).
        model: the ``.tflite`` model (``None``: the bundled model).
        detector: ``yunet`` (the run default) or ``haar``.
        detector_model: a YuNet ``.tflite`` or ONNX file (``yunet`` only; ``None``: the bundled
            ``.tflite``).
        threads: interpreter thread counts; one run each.
        runtimes: runtimes to compare; one that is not installed is skipped.
        max_frames: stop each run after this many frames (``None``: the whole source).
        smoothing: the EMA weight, as in ``fer-edge run`` (``None``: off).
        detect_every: ``--detect-every`` values; one run each (``1``: a full-frame detection
            every frame, the default before tracking).
    """

    source: str
    model: Path | None = None
    detector: str = "yunet"
    detector_model: Path | None = None
    threads: tuple[int, ...] = (1,)
    runtimes: tuple[str, ...] = ("auto",)
    max_frames: int | None = None
    smoothing: float | None = 0.5
    detect_every: tuple[int, ...] = (DEFAULT_DETECT_EVERY,)


@dataclass
class LoopReport(TableReport):
    """The runs of one loop bench (``--pipeline``).

    Attributes:
        created: UTC timestamp.
        environment: machine and library versions.
        options: the options, as recorded.
        runs: ``(runtime name, threads, RunSummary)`` per run (the summary says its
            ``--detect-every``).
        skipped: runtimes that would not load.
    """

    mode = "--pipeline"
    headers = LOOP_HEADERS
    left = 1

    created: str
    environment: Environment
    options: dict[str, Any]
    runs: list[tuple[str, int, Any]] = field(default_factory=list)
    skipped: list[Skip] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON document written by ``--json``."""
        return self.document(
            LOOP_SCHEMA,
            options=self.options,
            runs=[
                {"runtime": name, "threads": threads, **summary.to_dict()}
                for name, threads, summary in self.runs
            ],
            skipped=[s.to_dict() for s in self.skipped],
        )

    def cells(self) -> list[list[str]]:
        """Return one table row per run, in :data:`LOOP_HEADERS` order."""
        rows = []
        for _, threads, s in self.runs:
            stage = s.stages
            cost = s.detection
            macs = cost.macs_per_frame if cost else None
            rows.append(
                [
                    s.runtime,
                    str(threads),
                    str(cost.detect_every) if cost else "",
                    str(s.frames),
                    str(s.faces),
                    f"{s.fps:.1f}",
                    f"{stage['capture'].median_ms:.2f}",
                    f"{stage['detect'].median_ms:.2f}",
                    f"{cost.ms_per_frame:.2f}" if cost else "",
                    f"{cost.full.mean_ms:.2f} ({cost.full.count})" if cost else "",
                    f"{cost.roi.mean_ms:.2f} ({cost.roi.count})" if cost else "",
                    "" if macs is None else f"{macs / 1e6:.1f}",
                    f"{stage['classify'].median_ms:.3f}" if stage["classify"].count else "",
                    f"{stage['output'].median_ms:.3f}",
                    f"{s.startup_seconds:.2f}",
                ]
            )
        return rows

    def how(self) -> list[str]:
        """Return the lines that say how the numbers were measured."""
        first = self.runs[0][2] if self.runs else None
        lines = [f"machine: {self.environment.summary()}, load {self.environment.load_1m}"]
        if first is not None:
            lines.append(
                f"source: {first.source}; model {first.model}; detector {first.detector}; "
                "stage times are medians (classify per face, the rest per frame), no output "
                "sinks; det mean: every detection pass and change check over every frame"
            )
        return lines + [s.describe() for s in self.skipped]


def device_runner() -> Any:
    """Return :mod:`fer_edge.device.runner`, imported on first use (the loop benches need it).

    Raises:
        FerEdgeError: it does not import here (naming why), instead of a traceback.
    """
    try:
        from fer_edge.device import runner
    except ImportError as exc:
        raise FerEdgeError(
            f"--pipeline needs fer_edge.device.runner, which does not import here ({exc})"
        ) from None
    return runner


def bench_loop(options: LoopBenchOptions) -> LoopReport:
    """Run the device loop once per runtime and thread count and collect the summaries.

    Args:
        options: the source, model, detector and the runtime/thread grid.

    Returns:
        The :class:`LoopReport`.

    Raises:
        FerEdgeError: no ``--source``, no runtime loads, or the device loop rejects the
            model, detector or source.
    """
    if not options.source:
        raise FerEdgeError("--pipeline needs --source VIDEO (a video file, folder or camera)")
    from fer_edge.bench.measure import load_runtimes

    runner = device_runner()
    runtimes, skipped = load_runtimes(options.runtimes)
    report = LoopReport(
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        environment=collect_environment(),
        options={
            "source": options.source,
            "model": str(options.model) if options.model else None,
            "detector": options.detector,
            "threads": list(options.threads),
            "runtimes": list(options.runtimes),
            "max_frames": options.max_frames,
            "smoothing": options.smoothing,
            "detect_every": list(options.detect_every),
        },
        skipped=skipped,
    )
    for runtime, threads, every in itertools.product(
        runtimes, options.threads, options.detect_every
    ):
        summary = runner.run(
            runner.RunOptions(
                model=options.model,
                source=options.source,
                detector=options.detector,
                detector_model=options.detector_model,
                threads=threads,
                runtime=runtime.name,
                max_frames=options.max_frames,
                smoothing=options.smoothing,
                detect_every=every,
            )
        )
        if summary.interrupted:
            raise KeyboardInterrupt
        report.runs.append((runtime.name, threads, summary))
    return report
