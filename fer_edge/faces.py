"""A frame and what the pipeline makes of it: its classified faces, handed on to every sink.

These types sit below the device's pipeline and sinks, the benches and the report alike, so
data flows one way: sources yield :class:`Frame` objects, the pipeline finds each one's
:class:`FaceResult` list, the loop hands the two on as a :class:`FrameResult`, and the sinks only
read it.

The JSONL record of a frame (``fer-edge run --jsonl``, the live view's ``/faces``, ``run
--report``) is defined here once: :func:`jsonl_record` writes it and :func:`parse_record`
checks it for readers (``fer-edge report``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fer_edge.detect import Box

#: Suffix of the run summary a JSONL file can have beside it (``run.jsonl`` ->
#: ``run.summary.json``); ``fer-edge run --out-dir`` writes them so.
SUMMARY_SUFFIX = ".summary.json"

#: BGR box colours per FER2013 class; other labels get :data:`DEFAULT_COLOR`.
LABEL_COLORS: dict[str, tuple[int, int, int]] = {
    "angry": (40, 40, 230),
    "disgust": (40, 140, 40),
    "fear": (160, 60, 160),
    "happy": (40, 200, 250),
    "sad": (200, 120, 40),
    "surprise": (230, 200, 40),
    "neutral": (200, 200, 200),
}
DEFAULT_COLOR = (60, 220, 60)


@dataclass(frozen=True)
class Frame:
    """One frame from a source.

    Attributes:
        index: the frame's position in its source (skipped frames leave gaps).
        t: seconds: the timestamp inside a video file, else seconds since the source opened.
        image: BGR uint8 ``(H, W, 3)``.
        name: the file name for image sources, else ``""``.
    """

    index: int
    t: float
    image: np.ndarray
    name: str = ""


@dataclass(frozen=True)
class FaceResult:
    """One classified face in one frame.

    Attributes:
        box: the detector's box in frame pixels.
        label: the top class after smoothing.
        score: its probability.
        scores: every class's probability, in model label order.
        id: the face's id, the same in every frame while it stays in view (``None``: untracked).
    """

    box: Box
    label: str
    score: float
    scores: dict[str, float] = field(default_factory=dict)
    id: int | None = None

    @classmethod
    def from_probs(
        cls, box: Box, probs: np.ndarray, labels: Sequence[str], face_id: int | None = None
    ) -> FaceResult:
        """Build a result from a probability vector in ``labels`` order."""
        top = int(np.argmax(probs))
        scores = {name: float(p) for name, p in zip(labels, probs, strict=True)}
        return cls(box, labels[top], float(probs[top]), scores, face_id)

    def to_dict(self, digits: int = 4) -> dict[str, Any]:
        """Return the JSONL form: ``{"id", "box": [x, y, w, h], "label", "score", "scores"}``."""
        return {
            **({} if self.id is None else {"id": self.id}),
            "box": self.box.as_list(),
            "label": self.label,
            "score": round(self.score, digits),
            "scores": {k: round(v, digits) for k, v in self.scores.items()},
        }


@dataclass(frozen=True)
class FrameResult:
    """One frame and its classified faces: what every sink is given.

    Attributes:
        frame: the frame as the source yielded it (its image is not to be modified).
        faces: the faces, largest first.
    """

    frame: Frame
    faces: list[FaceResult] = field(default_factory=list)


def jsonl_record(result: FrameResult, source: str | None = None) -> dict[str, Any]:
    """Return one JSONL line's object: ``{"frame", "t", ["source",] "faces": [...]}``.

    ``source`` names the image file the frame came from (image folders and globs), so results
    can be joined back to the photos.
    """
    return {
        "frame": int(result.frame.index),
        "t": round(float(result.frame.t), 3),
        **({} if source is None else {"source": source}),
        "faces": [face.to_dict() for face in result.faces],
    }


#: Bounds of a plausible record (issue 27): frames and ids fit the int64 arrays, times stay
#: under 30 years (the charts' axes overflow on 1e308), scores are probabilities give or take.
_MAX_INT, _MAX_T, _MAX_SCORE = 2**53, 1e9, 1e6


def parse_record(record: Mapping[str, Any]) -> tuple[int, float, list[Mapping[str, Any]]]:
    """Check one frame record's shape (what :func:`jsonl_record` writes) for a reader.

    Returns:
        ``(frame, t, faces)``; each face a mapping with ``scores`` holding its ``label``, and
        maybe an integer ``id``.

    Raises:
        ValueError: the record is not a frame record.
    """
    if not isinstance(record, Mapping):
        raise ValueError("not a JSON object")
    frame, t, faces = record.get("frame"), record.get("t"), record.get("faces")
    if not isinstance(frame, int) or isinstance(frame, bool) or not 0 <= frame < _MAX_INT:
        raise ValueError("no integer 'frame'")
    if not isinstance(t, (int, float)) or isinstance(t, bool) or not abs(t) <= _MAX_T:
        raise ValueError("no finite number 't'")
    if not isinstance(faces, list):
        raise ValueError("no list 'faces'")
    for face in faces:
        if not isinstance(face, Mapping):
            raise ValueError("a face is not an object")
        scores, label, face_id = face.get("scores"), face.get("label"), face.get("id")
        if not isinstance(scores, Mapping) or not scores or label not in scores:
            raise ValueError("a face without 'scores' holding its 'label'")
        if not all(isinstance(v, (int, float)) and abs(v) <= _MAX_SCORE for v in scores.values()):
            raise ValueError("a face score is not a finite number")
        if face_id is not None and (
            not isinstance(face_id, int) or isinstance(face_id, bool) or abs(face_id) >= _MAX_INT
        ):
            raise ValueError("a face 'id' is not an integer")
    return frame, float(t), faces
