"""Compare two ``fer-edge run --jsonl`` outputs of the same input, face by face.

The reference is the x86 run; the candidate the emulated aarch64 run. Faces are paired by
their box within a frame; a pair whose boxes differ still gets its label and probabilities
compared (if the boxes overlap), but counts as a box mismatch. Pure Python and numpy-free, so
it can also run on the device side.
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
        box_mismatches: frames whose lists of boxes are not identical.
        max_box_shift: the largest coordinate difference between paired boxes, in pixels.
        paired: faces found in both runs (same frame, overlapping boxes).
        label_matches: paired faces with the same top label.
        max_prob_diff: the largest probability difference over paired faces and classes.
        prob_tolerance: the allowed ``max_prob_diff``: one int8 output step plus JSONL rounding.
        problems: why the comparison fails; empty when it passes.
    """

    frames: tuple[int, int]
    faces: tuple[int, int]
    box_mismatches: int
    max_box_shift: int
    paired: int
    label_matches: int
    max_prob_diff: float
    prob_tolerance: float
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
    min_agreement: float = MIN_LABEL_AGREEMENT,
) -> Comparison:
    """Compare two runs over the same input.

    Args:
        reference: the x86 run's JSONL records.
        candidate: the emulated run's JSONL records.
        prob_step: the model's output quantisation step (its scale, e.g. 1/256); 0 for float.
        min_agreement: the least share of paired faces that must share a label.

    Returns:
        The comparison; its ``problems`` list every failed criterion.
    """
    ref_frames = {r["frame"]: r["faces"] for r in reference}
    cand_frames = {r["frame"]: r["faces"] for r in candidate}
    box_mismatches = max_shift = paired = matches = 0
    max_diff = 0.0
    for frame, ref_faces in ref_frames.items():
        cand_faces = cand_frames.get(frame, [])
        if [f["box"] for f in ref_faces] != [f["box"] for f in cand_faces]:
            box_mismatches += 1
        unused = list(cand_faces)
        for ref in ref_faces:
            best = max(unused, key=lambda c: iou(ref["box"], c["box"]), default=None)
            if best is None or iou(ref["box"], best["box"]) < MIN_PAIR_IOU:
                continue
            unused.remove(best)
            paired += 1
            matches += ref["label"] == best["label"]
            shifts = (abs(a - b) for a, b in zip(ref["box"], best["box"], strict=True))
            max_shift = max(max_shift, *shifts)
            for name, p in ref["scores"].items():
                max_diff = max(max_diff, abs(p - best["scores"].get(name, float("inf"))))
    box_mismatches += sum(1 for frame in cand_frames if frame not in ref_frames)
    ref_count = sum(len(faces) for faces in ref_frames.values())
    cand_count = sum(len(faces) for faces in cand_frames.values())
    tolerance = prob_step + JSONL_ROUNDING
    problems = []
    if len(reference) != len(candidate):
        problems.append(f"{len(candidate)} frames, reference has {len(reference)}")
    if box_mismatches:
        problems.append(f"boxes differ in {box_mismatches} frames (up to {max_shift} px)")
    if ref_count != cand_count or paired != ref_count:
        problems.append(f"{cand_count} faces ({paired} paired), reference has {ref_count}")
    agreement = matches / paired if paired else 1.0
    if agreement < min_agreement:
        problems.append(f"labels agree on {agreement:.1%} of faces, need {min_agreement:.0%}")
    if max_diff > tolerance:
        problems.append(f"probabilities differ by up to {max_diff:.4f}, allowed {tolerance:.4f}")
    return Comparison(
        frames=(len(reference), len(candidate)),
        faces=(ref_count, cand_count),
        box_mismatches=box_mismatches,
        max_box_shift=max_shift,
        paired=paired,
        label_matches=matches,
        max_prob_diff=max_diff,
        prob_tolerance=tolerance,
        problems=tuple(problems),
    )
