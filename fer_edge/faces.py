"""A frame and what the pipeline makes of it: its classified faces, handed on to every sink.

These types sit below the device's pipeline and sinks, the benches and the report alike, so
data flows one way: sources yield :class:`Frame` objects, the pipeline finds each one's
:class:`FaceResult` list, the loop hands the two on as a :class:`FrameResult`, and the sinks only
read it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fer_edge.detect import Box


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
