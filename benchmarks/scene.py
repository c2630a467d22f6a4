"""``fer-edge bench --scene``: the whole device loop on a scene with known faces and labels.

A classifier's accuracy on dataset crops is not what a camera user gets: the detector must find
the face, the crop must frame it like the training images, and no ghost boxes may appear. This
builds a scene video from a class-folder split (faces upscaled and pasted at known places,
:mod:`fer_edge.bench.facevideo`), runs :func:`fer_edge.device.runner.run` on it once per
setting (detector, crop, detection width, threshold) and scores every frame against the truth:

- **found**: share of shown faces with a matching box (one box per face, see
  :func:`~fer_edge.bench.facevideo.match_faces`);
- **right on found**: share of found faces whose label is the true class;
- **end to end**: found and right, over all shown faces;
- **crop accuracy**: the same model on the same faces' own dataset crops (the ceiling);
- **false / 100 frames**: boxes on no face or a second box on a found face; **nested**: boxes
  inside another box of the same frame;
- **fps**: the loop's frame rate (decoding included), and its ratio to the ``haar`` setting
  of the same run when there is one. With several rounds every setting runs once per round,
  settings interleaved, and the fps is the median over the rounds: the load of a shared machine
  drifts over minutes, and settings run one after the other would each meet a different load.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from fer_edge.bench.environment import Environment, collect_environment
from fer_edge.bench.loop import device_runner
from fer_edge.bench.render import TableReport
from fer_edge.errors import FerEdgeError
from fer_edge.models import resolve_model

SCENE_SCHEMA = "fer-edge-bench-scene/1"
SCENE_HEADERS: tuple[str, ...] = (
    "setting",
    "detector",
    "crop",
    "frames",
    "faces",
    "found",
    "right on found",
    "end to end",
    "crop acc",
    "e2e / crop",
    "false /100 fr",
    "nested",
    "id switches",
    "det ms/fr",
    "x full",
    "full/ROI passes",
    "M MACs/fr",
    "fps",
    "x haar fps",
)

#: Named settings. ``haar`` is the default before YuNet shipped (full resolution, box crop with
#: a 2% margin): the speed baseline. ``yunet-box`` is ``--detector yunet`` as it was then (full
#: resolution, score 0.7, box crop without margin); ``yunet-aligned`` is YuNet at full
#: resolution with the aligned crop; ``full`` is the default before tracking (a full-frame
#: detection every frame): the detection-cost baseline; ``default`` is exactly what
#: ``fer-edge run`` does now.
PRESETS: dict[str, dict[str, Any]] = {
    "haar": {"detector": "haar", "crop": "box", "margin": 0.02, "detect_width": 0},
    "yunet-box": {
        "detector": "yunet",
        "crop": "box",
        "margin": 0.0,
        "detector_threshold": 0.7,
        "detect_width": 0,
    },
    "yunet-aligned": {"detector": "yunet", "crop": "align", "detect_width": 0},
    "full": {"detect_every": 1},
    "default": {},
}
DEFAULT_SETTINGS: tuple[str, ...] = ("haar", "yunet-box", "yunet-aligned", "full", "default")
#: Setting keys a ``preset:key=value`` override may change, with their RunOptions field.
_KEYS: dict[str, str] = {
    "detector": "detector",
    "crop": "crop",
    "margin": "margin",
    "width": "detect_width",
    "threshold": "detector_threshold",
    "smooth": "smoothing",
    "model": "detector_model",
    "every": "detect_every",
    "roi": "roi",
}
#: Keys whose values are whole numbers.
_INT_KEYS = ("width", "every", "roi")


@dataclass(frozen=True)
class SceneSetting:
    """One configuration of the device loop to score.

    Attributes:
        name: as given (``default``, ``yunet-box:margin=-0.05``, ...).
        overrides: :class:`~fer_edge.device.runner.RunOptions` fields that differ from the
            ``fer-edge run`` defaults.
    """

    name: str
    overrides: dict[str, Any] = field(default_factory=dict)


def parse_setting(text: str) -> SceneSetting:
    """Parse ``PRESET[:key=value...]``.

    Keys: detector, crop, margin, width, threshold, smooth, model, every (``--detect-every``),
    roi (``--roi``).

    ``model`` is a YuNet file, or ``onnx`` for the bundled ONNX file on OpenCV's DNN module
    instead of the bundled ``.tflite`` (``default:model=onnx`` is the default detector before
    it moved to the TFLite interpreter).

    Raises:
        FerEdgeError: an unknown preset or key, or a value that is not a number where one is
            needed.
    """
    preset, *pairs = text.strip().split(":")
    if preset not in PRESETS:
        raise FerEdgeError(
            f"--settings: unknown setting {preset!r}; choose from {', '.join(PRESETS)}"
        )
    overrides = dict(PRESETS[preset])
    for pair in pairs:
        key, _, value = pair.partition("=")
        if key not in _KEYS or not value:
            raise FerEdgeError(f"--settings: {text!r}: expected key=value with a key in {_KEYS}")
        if key in ("detector", "crop"):
            overrides[_KEYS[key]] = value
            continue
        if key == "model":
            if value == "onnx":
                from fer_edge.detect import default_yunet_onnx

                overrides[_KEYS[key]] = default_yunet_onnx()
            else:
                overrides[_KEYS[key]] = Path(value)
            continue
        try:
            number = float(value)
        except ValueError:
            raise FerEdgeError(f"--settings: {text!r}: {key} must be a number") from None
        if key == "smooth" and number == 0:
            overrides[_KEYS[key]] = None
        else:
            overrides[_KEYS[key]] = int(number) if key in _INT_KEYS else number
    return SceneSetting(text.strip(), overrides)


def parse_frame_size(text: str | None) -> tuple[int, int] | None:
    """Parse ``WxH`` (``640x480``); ``None`` stays ``None``.

    Raises:
        FerEdgeError: not two positive integers joined by ``x``.
    """
    if text is None:
        return None
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise FerEdgeError(f"--frame-size: expected WxH such as 640x480, got {text!r}") from None
    if width < 1 or height < 1:
        raise FerEdgeError(f"--frame-size: expected a positive WxH, got {text!r}")
    return width, height


@dataclass(frozen=True)
class SceneBenchOptions:
    """The scene and the settings to run on it.

    Attributes:
        faces: a class-folder split (``ROOT/<class>/*.png``), e.g. FER2013's ``val``.
        count: faces to show, sampled evenly across classes (seeded).
        per_frame: faces in each frame.
        frame_size: ``(width, height)`` of the scene.
        face_size: pasted face side in pixels (144: FER2013's 48 px upscaled 3x).
        hold: frames each group of faces stays (drifting a few pixels per frame).
        gap: empty frames between groups. Without one, a face turns into the next in place and
            the loop's per-face smoothing averages two people for a frame or two (on 3 faces
            per 640x480 frame that cost 5.7 points end to end); a person leaving first is
            what a camera sees.
        seed: sampling, placement and background seed.
        clutter: out-of-focus lights, rectangles and edges in the background (where Haar
            puts ghost boxes) instead of a plain one.
        settings: what to run (see :data:`PRESETS`).
        model: the ``.tflite`` model (``None``: the bundled one).
        threads: interpreter threads (``None``: the runtime's default).
        video: keep the scene video here (``None``: a temporary file).
        rounds: runs of every setting, interleaved; fps is their median (the faces and labels
            are the first round's: the loop is deterministic on a video).
    """

    faces: Path
    count: int = 300
    per_frame: int = 1
    frame_size: tuple[int, int] = (640, 480)
    face_size: int = 144
    hold: int = 3
    gap: int = 1
    seed: int = 0
    clutter: bool = False
    settings: tuple[SceneSetting, ...] = tuple(parse_setting(s) for s in DEFAULT_SETTINGS)
    model: Path | None = None
    threads: int | None = None
    video: Path | None = None
    rounds: int = 3


@dataclass(frozen=True)
class SceneScore:
    """One setting's result on the scene.

    Attributes:
        setting: the setting's name.
        detector: the detector that ran.
        crop: the crop the loop used (``align`` or ``box`` with its margin).
        frames: frames scored.
        shown: faces shown, summed over frames.
        found: shown faces that got a matching box.
        right: found faces labelled with their true class.
        crop_correct: shown faces whose own dataset crop the model classifies right.
        false_boxes: boxes on no face, or a second box on a found face.
        nested: boxes lying inside another box of the same frame.
        fps: the loop's frames per second (the median over rounds).
        detect_ms: median detection time per frame (the median over rounds).
        fps_rounds: the fps of each round, in the order run.
        id_switches: a shown face whose id differs from its id in the last frame it was found
            in (the same face counted as a new one; see :func:`count_id_switches`).
        detect_mean_ms: mean detection time per frame, every frame and pass counted (the
            median over rounds): the detection work the tracker saves.
        passes: full-frame and ROI detections in the run.
        pass_ms: mean time of a full-frame and of an ROI detection (the medians over rounds).
        macs_per_frame: the detector's mean MACs per frame (``None``: unknown, e.g. Haar).
    """

    setting: str
    detector: str
    crop: str
    frames: int
    shown: int
    found: int
    right: int
    crop_correct: int
    false_boxes: int
    nested: int
    fps: float
    detect_ms: float
    fps_rounds: tuple[float, ...] = ()
    id_switches: int = 0
    detect_mean_ms: float = 0.0
    passes: tuple[int, int] = (0, 0)
    pass_ms: tuple[float, float] = (0.0, 0.0)
    macs_per_frame: float | None = None

    @property
    def found_rate(self) -> float:
        """Share of shown faces found."""
        return self.found / self.shown if self.shown else 0.0

    @property
    def right_on_found(self) -> float:
        """Share of found faces labelled right."""
        return self.right / self.found if self.found else 0.0

    @property
    def end_to_end(self) -> float:
        """Share of shown faces found and labelled right."""
        return self.right / self.shown if self.shown else 0.0

    @property
    def crop_accuracy(self) -> float:
        """The model's accuracy on the same faces' own crops."""
        return self.crop_correct / self.shown if self.shown else 0.0

    @property
    def kept(self) -> float:
        """End-to-end accuracy as a share of crop accuracy (the goal: at least 0.95)."""
        return self.end_to_end / self.crop_accuracy if self.crop_correct else 0.0

    @property
    def false_per_100(self) -> float:
        """False and duplicate boxes per 100 frames."""
        return 100.0 * self.false_boxes / self.frames if self.frames else 0.0

    def to_dict(self) -> dict[str, Any]:
        """Return counts and the derived rates as plain numbers."""
        derived = ("found_rate", "right_on_found", "end_to_end", "crop_accuracy", "kept")
        return {
            **dataclasses.asdict(self),
            **{name: round(getattr(self, name), 4) for name in derived},
            "false_per_100": round(self.false_per_100, 3),
        }


def nested_count(boxes: Sequence[Any], share: float) -> int:
    """Count boxes with at least ``share`` of their area inside a larger box of the same list."""
    return sum(
        any(
            i != j
            and box.area
            and other.area >= box.area
            and other.intersection(box) >= share * box.area
            for j, other in enumerate(boxes)
        )
        for i, box in enumerate(boxes)
    )


def score_scene(
    setting: str,
    truth: Any,
    detected: dict[int, list[Any]],
    crop_right: Sequence[Sequence[bool]],
    summary: Any,
) -> SceneScore:
    """Score one run's faces against the scene truth.

    Args:
        setting: the setting's name.
        truth: the :class:`~fer_edge.bench.facevideo.SceneTruth` of the video.
        detected: the faces (:class:`~fer_edge.faces.FaceResult`) per frame index; a
            frame without an entry had no faces.
        crop_right: per frame, per shown face: whether the model is right on its own crop.
        summary: the run's :class:`~fer_edge.device.runner.RunSummary`.
    """
    from fer_edge.bench.facevideo import match_faces
    from fer_edge.detect import NESTED_FRACTION

    shown = found = right = crop_correct = false_boxes = nested = 0
    ids: list[dict[int, int | None]] = []  # per frame: shown face -> the run's id for it
    for index, (boxes, labels) in enumerate(zip(truth.boxes, truth.labels, strict=True)):
        faces = detected.get(index, [])
        shown += len(boxes)
        crop_correct += sum(crop_right[index])
        ids.append({})
        for face, hit in zip(faces, match_faces(boxes, [f.box for f in faces]), strict=True):
            if hit is None:
                false_boxes += 1
                continue
            found += 1
            right += face.label == labels[hit]
            ids[-1][truth.faces[index][hit]] = face.id
        nested += nested_count([f.box for f in faces], NESTED_FRACTION)
    cost = summary.detection
    return SceneScore(
        setting=setting,
        detector=summary.detector,
        crop=summary.crop,
        frames=len(truth.boxes),
        shown=shown,
        found=found,
        right=right,
        crop_correct=crop_correct,
        false_boxes=false_boxes,
        nested=nested,
        fps=summary.fps,
        detect_ms=summary.stages["detect"].median_ms,
        fps_rounds=(summary.fps,),
        id_switches=count_id_switches(ids),
        detect_mean_ms=cost.ms_per_frame,
        passes=(cost.full.count, cost.roi.count),
        pass_ms=(cost.full.mean_ms, cost.roi.mean_ms),
        macs_per_frame=cost.macs_per_frame,
    )


def count_id_switches(ids: Sequence[dict[int, int | None]]) -> int:
    """Count id switches: a shown face found with another id than when it was last found.

    Args:
        ids: per frame, each found face's index in the scene -> the id the run gave it.
    """
    last: dict[int, int | None] = {}
    switches = 0
    for frame in ids:
        for face, face_id in frame.items():
            if face in last and last[face] != face_id:
                switches += 1
            last[face] = face_id
    return switches


def median_of_rounds(rounds: Sequence[SceneScore]) -> SceneScore:
    """Return the first round's score with the fps and detection times of all rounds' median."""
    first = rounds[0]
    full_ms, roi_ms = np.median([r.pass_ms for r in rounds], axis=0)
    return dataclasses.replace(
        first,
        fps=float(np.median([r.fps for r in rounds])),
        detect_ms=float(np.median([r.detect_ms for r in rounds])),
        detect_mean_ms=float(np.median([r.detect_mean_ms for r in rounds])),
        fps_rounds=tuple(r.fps for r in rounds),
        pass_ms=(float(full_ms), float(roi_ms)),
    )


@dataclass
class SceneReport(TableReport):
    """Every setting's score on one scene.

    Attributes:
        created: UTC timestamp.
        environment: machine and library versions (load average at the start).
        options: the scene, as recorded.
        scores: one per setting, in the order run.
        load_after: the 1-minute load average at the end.
    """

    mode = "--scene"
    headers = SCENE_HEADERS
    left = 3

    created: str
    environment: Environment
    options: dict[str, Any]
    scores: list[SceneScore] = field(default_factory=list)
    load_after: float | None = None

    def baseline_fps(self) -> float | None:
        """The ``haar`` setting's fps in this run, if it ran."""
        return next((s.fps for s in self.scores if s.setting == "haar"), None)

    def baseline_detect_ms(self) -> float | None:
        """The ``full`` setting's mean detection ms per frame in this run, if it ran."""
        return next((s.detect_mean_ms for s in self.scores if s.setting == "full"), None)

    def cells(self) -> list[list[str]]:
        """Return one row per setting, in :data:`SCENE_HEADERS` order."""
        base = self.baseline_fps()
        full = self.baseline_detect_ms()
        return [
            [
                s.setting,
                s.detector,
                s.crop,
                str(s.frames),
                str(s.shown),
                f"{100 * s.found_rate:.1f}%",
                f"{100 * s.right_on_found:.1f}%",
                f"{100 * s.end_to_end:.1f}%",
                f"{100 * s.crop_accuracy:.1f}%",
                f"{s.kept:.3f}",
                f"{s.false_per_100:.2f}",
                str(s.nested),
                str(s.id_switches),
                f"{s.detect_mean_ms:.2f}",
                f"{s.detect_mean_ms / full:.2f}x" if full else "",
                f"{s.passes[0]}/{s.passes[1]}",
                "" if s.macs_per_frame is None else f"{s.macs_per_frame / 1e6:.1f}",
                f"{s.fps:.1f}",
                f"{s.fps / base:.2f}x" if base else "",
            ]
            for s in self.scores
        ]

    def how(self) -> list[str]:
        """Return the lines that say how the numbers were measured."""
        o = self.options
        return [
            f"scene: {o['count']} faces from {o['faces']}, {o['per_frame']} per frame, "
            f"{o['face_size']} px on {o['frame_size'][0]}x{o['frame_size'][1]}"
            f"{' cluttered' if o['clutter'] else ''}, {o['hold']} frames each and "
            f"{o['gap']} empty between (seed {o['seed']}); model {o['model']}",
            f"fps: median of {o.get('rounds', 1)} round(s), settings interleaved",
            f"machine: {self.environment.summary()}, load {self.environment.load_1m} -> "
            f"{self.load_after}",
        ]

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON document written by ``--json``."""
        return self.document(
            SCENE_SCHEMA,
            load_after=self.load_after,
            options=self.options,
            scores=[s.to_dict() for s in self.scores],
        )


class _Collect:
    """A sink that keeps each frame's faces."""

    def __init__(self) -> None:
        self.faces: dict[int, list[Any]] = {}

    def write(self, result: Any) -> None:
        self.faces[result.frame.index] = list(result.faces)

    def close(self) -> None:
        pass


def _crop_right(images: Sequence[np.ndarray], classes: Sequence[str], model: Path) -> list[bool]:
    """Whether the model labels each face's own dataset crop right."""
    from fer_edge.classifier import FaceClassifier

    classifier = FaceClassifier(model)
    missing = sorted(set(classes) - set(classifier.labels))
    if missing:
        raise FerEdgeError(f"--scene: classes {missing} are not among the model's labels")
    return [
        classifier.labels[int(np.argmax(classifier.probabilities(image)))] == name
        for image, name in zip(images, classes, strict=True)
    ]


def bench_scene(options: SceneBenchOptions) -> SceneReport:
    """Build the scene video and run every setting on it.

    Args:
        options: the scene and the settings.

    Returns:
        The :class:`SceneReport`, settings in the order given.

    Raises:
        FerEdgeError: a bad scene (no faces, faces that do not fit the frame, classes the model
            lacks) or a setting the device loop rejects.
    """
    from fer_edge.bench.facevideo import compose_frames, sample_faces, write_scene

    runner = device_runner()
    if options.count < 1:
        raise FerEdgeError(f"--limit: the scene needs at least one face, got {options.count}")
    if options.hold < 1:
        raise FerEdgeError(f"--hold: must be at least 1 frame, got {options.hold}")
    if options.gap < 0:
        raise FerEdgeError(f"--gap: must be 0 or more frames, got {options.gap}")
    if options.rounds < 1:
        raise FerEdgeError(f"--rounds: must be at least 1, got {options.rounds}")
    model = resolve_model(options.model)
    images, classes = sample_faces(options.faces, options.count, options.seed)
    own_right = _crop_right(images, classes, model)
    frames = compose_frames(
        images,
        frame_size=options.frame_size,
        face_size=options.face_size,
        per_frame=options.per_frame,
        hold=options.hold,
        seed=options.seed,
        clutter=options.clutter,
        gap=options.gap,
    )
    try:
        # compose_frames checks that the faces fit when the first frame is asked for.
        frames = itertools.chain([next(frames)], frames)
    except ValueError as exc:
        raise FerEdgeError(f"--scene: {exc}") from None
    report = SceneReport(
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        environment=collect_environment(),
        options={
            "faces": str(options.faces),
            "count": len(images),
            "per_frame": options.per_frame,
            "frame_size": list(options.frame_size),
            "face_size": options.face_size,
            "hold": options.hold,
            "gap": options.gap,
            "seed": options.seed,
            "clutter": options.clutter,
            "model": model.name,
            "threads": options.threads,
            "settings": [s.name for s in options.settings],
            "rounds": options.rounds,
        },
    )
    with tempfile.TemporaryDirectory(prefix="fer-edge-scene-") as tmp:
        video = options.video or Path(tmp) / "scene.mp4"
        truth = write_scene(video, frames, classes)
        crop_right = [[own_right[i] for i in shown] for shown in truth.faces]
        rounds: dict[str, list[SceneScore]] = {s.name: [] for s in options.settings}
        for _ in range(options.rounds):
            for setting in options.settings:
                collect = _Collect()
                run_options = dataclasses.replace(
                    runner.RunOptions(model=model, source=str(video), threads=options.threads),
                    sinks=[collect],
                    **setting.overrides,
                )
                summary = runner.run(run_options)
                if summary.interrupted:
                    raise KeyboardInterrupt
                score = score_scene(setting.name, truth, collect.faces, crop_right, summary)
                rounds[setting.name].append(score)
        report.scores.extend(median_of_rounds(rounds[s.name]) for s in options.settings)
    report.load_after = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    return report
