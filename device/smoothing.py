"""Per-face smoothing of class probabilities across frames.

A face's label flickers between frames because a crop shifts by a pixel or the expression is
between two classes. An exponential moving average over the probabilities of the "same" face
(its box overlaps a box of the previous frame) steadies it; a new face starts from its own
probabilities. The same association gives every face a stable ``id``: a face keeps its id for
as long as its box keeps overlapping its box in the previous frame.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from fer_edge.detect import Box


@dataclass(frozen=True)
class SmoothedFace:
    """A face carried over from the previous frame, as the smoother remembers it.

    Not a face's whole track through a run: that is the report's ``Track``.

    Attributes:
        box: its box in that frame.
        probs: its smoothed probabilities.
        frames: how many consecutive frames it has been seen in.
        id: the face's id, unique within the smoother's lifetime (ids count up from 1).
    """

    box: Box
    probs: np.ndarray
    frames: int = 1
    id: int = 0


class EmaSmoother:
    """Exponential moving average of probabilities for boxes matched by IoU.

    ``smoothed = alpha * new + (1 - alpha) * previous`` for a face whose box overlaps one of the
    previous frame's boxes by at least ``iou_threshold``; matching is one-to-one, best overlap
    first. Faces that disappear for a frame are forgotten. After :meth:`update`,
    ``tracks[i]`` belongs to ``boxes[i]``; with ``alpha=1`` it only tracks ids.
    """

    def __init__(self, alpha: float = 0.5, iou_threshold: float = 0.3):
        """Create a smoother.

        Args:
            alpha: weight of the newest frame, in (0, 1]; 1 means no smoothing.
            iou_threshold: minimum box overlap to count as the same face.

        Raises:
            ValueError: ``alpha`` or ``iou_threshold`` out of range.
        """
        if not 0.0 < alpha <= 1.0:
            raise ValueError(f"alpha must be in (0, 1], got {alpha}")
        if not 0.0 < iou_threshold <= 1.0:
            raise ValueError(f"iou_threshold must be in (0, 1], got {iou_threshold}")
        self.alpha = float(alpha)
        self.iou_threshold = float(iou_threshold)
        self.tracks: list[SmoothedFace] = []
        self._last_id = 0

    def update(self, boxes: Sequence[Box], probs: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Smooth one frame's probabilities and remember them for the next frame.

        Args:
            boxes: this frame's face boxes.
            probs: their raw probabilities, same order.

        Returns:
            Smoothed probabilities (float32), same order as ``boxes``.
        """
        if len(boxes) != len(probs):
            raise ValueError(f"{len(boxes)} boxes but {len(probs)} probability vectors")
        matches = self._match(boxes)
        smoothed: list[np.ndarray] = []
        tracks: list[SmoothedFace] = []
        for i, (box, p) in enumerate(zip(boxes, probs, strict=True)):
            p = np.asarray(p, dtype=np.float32)
            previous = matches.get(i)
            if previous is None:
                self._last_id += 1
                out, frames, face_id = p.copy(), 1, self._last_id
            else:
                out = (self.alpha * p + (1.0 - self.alpha) * previous.probs).astype(np.float32)
                frames, face_id = previous.frames + 1, previous.id
            smoothed.append(out)
            tracks.append(SmoothedFace(box, out, frames, face_id))
        self.tracks = tracks
        return smoothed

    def _match(self, boxes: Sequence[Box]) -> dict[int, SmoothedFace]:
        pairs = sorted(
            (
                (box.iou(track.box), i, j)
                for i, box in enumerate(boxes)
                for j, track in enumerate(self.tracks)
            ),
            reverse=True,
        )
        matched: dict[int, SmoothedFace] = {}
        used: set[int] = set()
        for overlap, i, j in pairs:
            if overlap < self.iou_threshold:
                break
            if i in matched or j in used:
                continue
            matched[i] = self.tracks[j]
            used.add(j)
        return matched

    @property
    def ids(self) -> list[int]:
        """The ids of the faces of the last :meth:`update`, in its box order."""
        return [track.id for track in self.tracks]

    def reset(self) -> None:
        """Forget every face (e.g. after a scene cut); new faces get new ids."""
        self.tracks = []
