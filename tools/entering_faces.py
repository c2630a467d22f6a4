"""Faces that slide into view from a side, stay, and slide out: tracking against full frames.

The scene bench (``fer-edge bench --scene``) shows faces that appear in place; this scene has
them enter and leave the frame, the case a tracker between detections can get wrong: a face is
half in view, moving, when the detector must first find it. Each face (FER2013 validation
faces, 144 px) comes in from the left or the right at 6-15 px per frame, stays 30 frames and
leaves the other way; the video is an mp4 like a camera's. A face counts as shown in frames
where at least 75% of it is in view; boxes on faces less in view are counted apart from boxes
on no face at all (false boxes).

    .venv/bin/python tools/entering_faces.py --faces ../shared/data/fer2013/val --count 24
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import click
import cv2
import numpy as np

from fer_edge.bench.facevideo import background, match_faces, sample_faces
from fer_edge.detect import Box, make_detector

SIDE = 144
SIZE = (640, 480)


def entering_scene(
    faces: list[np.ndarray], seed: int
) -> tuple[list[np.ndarray], list[tuple], list[tuple]]:
    """Return the frames and, per frame, the faces at least 75% in view and any part in view."""
    rng = np.random.default_rng(seed)
    width, height = SIZE
    scene = background(width, height, seed)
    frames, truth, parts = [], [], []
    for k, image in enumerate(faces):
        face = cv2.resize(image, (SIDE, SIDE), interpolation=cv2.INTER_CUBIC)
        face = cv2.cvtColor(face, cv2.COLOR_GRAY2BGR)
        y = int(rng.integers(20, height - SIDE - 20))
        speed = int(rng.integers(6, 16))
        stop = (width - SIDE) // 2
        xs = [*range(-SIDE, stop, speed), *[stop] * 30, *range(stop, width + 1, speed)]
        if k % 2:  # every other face from the right
            xs = [width - SIDE - x for x in xs]
        for x in xs:
            frame = scene.copy()
            x0, x1 = max(0, x), min(width, x + SIDE)
            if x1 > x0:
                frame[y : y + SIDE, x0:x1] = face[:, x0 - x : x1 - x]
            frames.append(frame)
            truth.append((Box(x0, y, x1 - x0, SIDE),) if x1 - x0 >= 0.75 * SIDE else ())
            parts.append((Box(x0, y, x1 - x0, SIDE),) if x1 > x0 else ())
        frames.append(scene.copy())
        truth.append(())
        parts.append(())
    return frames, truth, parts


@click.command()
@click.option("--faces", type=click.Path(exists=True, path_type=Path), required=True)
@click.option("--count", default=24, show_default=True, help="Faces to show, one at a time.")
@click.option("--seed", default=1, show_default=True)
@click.option(
    "--every", "settings", default="1,10", show_default=True, help="--detect-every values."
)
def main(faces: Path, count: int, seed: int, settings: str) -> None:
    """Print faces found and extra boxes per --detect-every, and the tracker's passes."""
    images, _ = sample_faces(faces, count, seed)
    frames, truth, parts = entering_scene(images, seed)
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "entering.mp4")
        writer = cv2.VideoWriter(path, cv2.VideoWriter.fourcc(*"mp4v"), 30, SIZE)
        for frame in frames:
            writer.write(frame)
        writer.release()
        capture = cv2.VideoCapture(path)
        decoded = [capture.read()[1] for _ in frames]
    shown = sum(len(t) for t in truth)
    click.echo(f"{len(frames)} frames, {shown} faces shown at least 75% in view")
    for every in (int(v) for v in settings.split(",")):
        detector = make_detector("yunet", threads=1, detect_every=every)
        found = partial = false = 0
        for boxes, part, frame in zip(truth, parts, decoded, strict=True):
            detected = detector.detect(frame)
            hits = match_faces(boxes, detected)
            found += sum(h is not None for h in hits)
            extra = [box for box, h in zip(detected, hits, strict=True) if h is None]
            on_part = [any(box.intersection(p) >= 0.5 * box.area for p in part) for box in extra]
            partial += sum(on_part)
            false += len(extra) - sum(on_part)
        click.echo(
            f"--detect-every {every}: found {found} ({100 * found / shown:.1f}%), "
            f"boxes on faces under 75% in view {partial}, elsewhere {false}; "
            f"{detector.cost.describe()}"
        )


if __name__ == "__main__":
    main()
