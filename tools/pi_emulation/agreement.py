"""Compare two ``fer-edge run --jsonl`` outputs of the same input, face by face.

The reference is the x86 run; the candidate the emulated aarch64 run. Faces are paired by
their box within a frame; a pair whose boxes differ by more than the tolerance still gets its
label and probabilities compared (if the boxes overlap), but counts as a box mismatch. Only
the JSONL's outputs are compared (faces, boxes, labels, probabilities), never how the run got
them, so the comparison holds whatever the loop does between detections. Pure Python and
numpy-free, so it can also run on the device side.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

#: Scores in the JSONL are rounded to 4 decimals, which can move a difference by up to 1e-4.
JSONL_ROUNDING = 1e-4
#: The share of faces that must get the same label on both platforms.
MIN_LABEL_AGREEMENT = 0.95
#: Boxes that overlap less than this are not the same face.
MIN_PAIR_IOU = 0.5


@dataclass(frozen=True)
class Tolerance:
    """How far a candidate run may stray from the reference and still pass.

    Attributes:
        box_px: the most any box coordinate may differ, in pixels (0: identical boxes).
        prob_steps: the most any probability may differ, in the model's output steps (its
            int8 scale), plus :data:`JSONL_ROUNDING`.
        mean_steps: the most the probabilities may differ on average (over every class of
            every paired face), in output steps, plus :data:`JSONL_ROUNDING`: a platform moves
            a few outputs, a broken pipeline moves most of them.
        min_agreement: the least share of paired faces that must share a label.
    """

    box_px: int = 0
    prob_steps: float = 1.0
    mean_steps: float = 1.0
    min_agreement: float = MIN_LABEL_AGREEMENT

    def __str__(self) -> str:
        return (
            f"boxes within {self.box_px} px, probabilities within {self.prob_steps:g} output "
            f"steps ({self.mean_steps:g} on average), labels equal on {self.min_agreement:.0%} "
            "of faces"
        )

    def prob_tolerance(self, prob_step: float) -> float:
        """Return the allowed probability difference for a model with this output step."""
        return self.prob_steps * prob_step + JSONL_ROUNDING

    def mean_tolerance(self, prob_step: float) -> float:
        """Return the allowed mean probability difference for a model with this output step."""
        return self.mean_steps * prob_step + JSONL_ROUNDING


#: The tiny shallow model with the Haar detector: boxes to the pixel, one int8 step.
STRICT = Tolerance(box_px=0, prob_steps=1.0)
#: fer-edge run's defaults (YuNet in float32, the bundled deep int8 model, flip TTA, smoothing).
#: Measured 2026-12-05 on three videos and both runtimes (docs/pi-emulation.md): boxes
#: identical, labels all equal, probabilities up to 12 output steps apart (one face, LiteRT;
#: otherwise up to 7.5) and 0.41 steps on average. Moving the crop, margin, TTA or smoothing
#: moves the same faces on x86 by 37 to 102 steps, 2.5 to 7.3 on average. Allowed: 2 px per
#: box coordinate (YuNet's float box rounding to the neighbouring integer, with margin); 24
#: steps at most (2x the largest measured) and 1 step on average (2.4x the measured mean,
#: 2.5x below the smallest change's); labels equal on 95% of faces.
DEFAULTS = Tolerance(box_px=2, prob_steps=24.0, mean_steps=1.0)


def read_jsonl(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Read a ``--jsonl`` file: one ``{"frame", "t", "faces"}`` object per line.

    Raises:
        ValueError: a line is not JSON or lacks ``frame``/``faces`` (the message names it).
    """
    records = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}:{number}: not JSON ({exc.msg})") from None
        if not isinstance(record, dict) or "frame" not in record or "faces" not in record:
            raise ValueError(f"{path}:{number}: expected an object with 'frame' and 'faces'")
        records.append(record)
    return records


def iou(a: list[int], b: list[int]) -> float:
    """Intersection over union of two ``[x, y, w, h]`` boxes."""
    ix = max(0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


@dataclass(frozen=True)
class Comparison:
    """How closely a candidate run matches the reference run.

    Attributes:
        frames: frames in the reference and in the candidate.
        faces: faces in the reference and in the candidate.
        box_mismatches: frames whose faces do not pair up one to one with every box within
            the tolerance.
        max_box_shift: the largest coordinate difference between paired boxes, in pixels.
        min_iou: the smallest overlap of paired boxes (1.0 when there are none).
        paired: faces found in both runs (same frame, overlapping boxes).
        label_matches: paired faces with the same top label.
        max_prob_diff: the largest probability difference over paired faces and classes.
        mean_prob_diff: the mean probability difference over paired faces and classes.
        prob_tolerance: the allowed ``max_prob_diff``: some int8 output steps plus JSONL
            rounding (see :class:`Tolerance`).
        mean_tolerance: the allowed ``mean_prob_diff``.
        box_tolerance: the allowed ``max_box_shift``, in pixels.
        problems: why the comparison fails; empty when it passes.
    """

    frames: tuple[int, int]
    faces: tuple[int, int]
    box_mismatches: int
    max_box_shift: int
    min_iou: float
    paired: int
    label_matches: int
    max_prob_diff: float
    mean_prob_diff: float
    prob_tolerance: float
    mean_tolerance: float
    box_tolerance: int
    problems: tuple[str, ...] = field(default=())

    @property
    def label_agreement(self) -> float:
        """The share of paired faces with the same label (1.0 when there are none)."""
        return self.label_matches / self.paired if self.paired else 1.0

    @property
    def ok(self) -> bool:
        """True when the candidate matches the reference within tolerance."""
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict, agreement and verdict included."""
        return {**asdict(self), "label_agreement": self.label_agreement, "ok": self.ok}


def compare_runs(
    reference: list[dict[str, Any]],
    candidate: list[dict[str, Any]],
    prob_step: float,
    tolerance: Tolerance = STRICT,
) -> Comparison:
    """Compare two runs over the same input.

    Args:
        reference: the x86 run's JSONL records.
        candidate: the emulated run's JSONL records.
        prob_step: the model's output quantisation step (its scale, e.g. 1/256); 0 for float.
        tolerance: how far the candidate may differ (:data:`STRICT` or :data:`DEFAULTS`).

    Returns:
        The comparison; its ``problems`` list every failed criterion.
    """
    ref_frames = {r["frame"]: r["faces"] for r in reference}
    cand_frames = {r["frame"]: r["faces"] for r in candidate}
    box_mismatches = max_shift = paired = matches = 0
    max_diff, min_overlap = 0.0, 1.0
    diffs: list[float] = []
    for frame, ref_faces in ref_frames.items():
        cand_faces = cand_frames.get(frame, [])
        frame_ok = len(ref_faces) == len(cand_faces)
        unused = list(cand_faces)
        for ref in ref_faces:
            best = max(unused, key=lambda c: iou(ref["box"], c["box"]), default=None)
            overlap = iou(ref["box"], best["box"]) if best is not None else 0.0
            if best is None or overlap < MIN_PAIR_IOU:
                frame_ok = False
                continue
            unused.remove(best)
            paired += 1
            matches += ref["label"] == best["label"]
            shift = max(abs(a - b) for a, b in zip(ref["box"], best["box"], strict=True))
            frame_ok &= shift <= tolerance.box_px
            max_shift, min_overlap = max(max_shift, shift), min(min_overlap, overlap)
            diffs += [
                abs(p - best["scores"].get(k, float("inf"))) for k, p in ref["scores"].items()
            ]
        box_mismatches += not frame_ok
    box_mismatches += sum(1 for frame in cand_frames if frame not in ref_frames)
    ref_count = sum(len(faces) for faces in ref_frames.values())
    cand_count = sum(len(faces) for faces in cand_frames.values())
    max_diff = max(diffs, default=0.0)
    mean_diff = sum(diffs) / len(diffs) if diffs else 0.0
    allowed = tolerance.prob_tolerance(prob_step)
    allowed_mean = tolerance.mean_tolerance(prob_step)
    problems = []
    if len(reference) != len(candidate):
        problems.append(f"{len(candidate)} frames, reference has {len(reference)}")
    if box_mismatches:
        problems.append(
            f"boxes differ in {box_mismatches} frames (up to {max_shift} px, "
            f"allowed {tolerance.box_px})"
        )
    if ref_count != cand_count or paired != ref_count:
        problems.append(f"{cand_count} faces ({paired} paired), reference has {ref_count}")
    agreement = matches / paired if paired else 1.0
    if agreement < tolerance.min_agreement:
        problems.append(
            f"labels agree on {agreement:.1%} of faces, need {tolerance.min_agreement:.0%}"
        )
    if max_diff > allowed:
        problems.append(f"probabilities differ by up to {max_diff:.4f}, allowed {allowed:.4f}")
    if mean_diff > allowed_mean:
        problems.append(
            f"probabilities differ by {mean_diff:.4f} on average, allowed {allowed_mean:.4f}"
        )
    return Comparison(
        frames=(len(reference), len(candidate)),
        faces=(ref_count, cand_count),
        box_mismatches=box_mismatches,
        max_box_shift=max_shift,
        min_iou=min_overlap,
        paired=paired,
        label_matches=matches,
        max_prob_diff=max_diff,
        mean_prob_diff=mean_diff,
        prob_tolerance=allowed,
        mean_tolerance=allowed_mean,
        box_tolerance=tolerance.box_px,
        problems=tuple(problems),
    )
