r"""Compose test videos from face images pasted into frames at known places.

Used by the tests (a detector must find the face where it was pasted), the demo in the
resolution note (FER2013 val faces through ``fer-edge run``) and the benchmark's pipeline mode.
The pasted rectangles are the ground truth for :func:`detection_rate`.

    python -m fer_edge.bench.facevideo --faces ../shared/data/fer2013/val --count 80 \\
        --out runs/faces.mp4
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import click
import cv2
import numpy as np

from fer_edge.atomic import atomic_path, write_json
from fer_edge.data import IMAGE_SUFFIXES
from fer_edge.detect import Box
from fer_edge.errors import FerEdgeError


@dataclass(frozen=True)
class ComposedFrame:
    """A frame with faces pasted into it.

    Attributes:
        image: BGR uint8 ``(height, width, 3)``.
        boxes: where each face image was pasted (the ground truth).
        faces: the index of each pasted face in the input sequence.
    """

    image: np.ndarray
    boxes: tuple[Box, ...]
    faces: tuple[int, ...]


def background(width: int, height: int, seed: int = 0, clutter: bool = False) -> np.ndarray:
    """Return a smooth, slightly noisy gray BGR background (no face-like structure).

    With ``clutter``, the kind of scene that gives detectors ghost boxes is drawn over it:
    out-of-focus lights (bright blurred discs of many sizes), window-like bright and dark
    rectangles and a few hard edges.
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    base = 110 + 40 * (xx / width) + 20 * np.sin(yy / height * np.pi)
    noise = cv2.GaussianBlur(rng.normal(0, 6, (height, width)).astype(np.float32), (0, 0), 3)
    gray = base + noise
    if clutter:
        scale = min(width, height) / 480
        layer = np.zeros_like(gray)
        for _ in range(12):
            x, y = (int(v) for v in rng.integers(0, (width, height)))
            w, h = (int(v) for v in rng.integers(10, 90, size=2) * scale)
            cv2.rectangle(layer, (x, y), (x + w, y + h), float(rng.uniform(-60, 60)), cv2.FILLED)
        for _ in range(6):
            x0, y0, x1, y1 = (int(v) for v in rng.integers(0, (width, height, width, height)))
            cv2.line(layer, (x0, y0), (x1, y1), float(rng.uniform(-70, 70)), max(1, round(scale)))
        gray += cv2.GaussianBlur(layer, (0, 0), 1.0)
        lights = np.zeros_like(gray)
        for _ in range(40):
            centre = tuple(int(v) for v in rng.integers(0, (width, height)))
            radius = max(2, int(rng.integers(3, 30) * scale))
            cv2.circle(lights, centre, radius, float(rng.uniform(60, 140)), cv2.FILLED)
        gray += cv2.GaussianBlur(lights, (0, 0), 2.0 * scale)
    return cv2.cvtColor(np.clip(gray, 0, 255).astype(np.uint8), cv2.COLOR_GRAY2BGR)


def _cells(width: int, height: int, count: int) -> list[tuple[int, int, int, int]]:
    """Split the frame into a near-square grid of ``count`` cells ``(x, y, w, h)``."""
    # Never more columns than faces: one face gets the whole frame, not the left half of it.
    cols = min(count, int(np.ceil(np.sqrt(count * width / height))))
    rows = -(-count // cols)
    cw, ch = width // cols, height // rows
    return [(c * cw, r * ch, cw, ch) for r in range(rows) for c in range(cols)][:count]


#: Frames of drift a face's place leaves room for (see :func:`compose_frames`).
DRIFT_FRAMES = 3


def _turn_back(value: int, low: int, high: int) -> int:
    """Reflect ``value`` into ``[low, high]`` (a face drifting past its room turns back)."""
    if value < low:
        return min(high, 2 * low - value)
    if value > high:
        return max(low, 2 * high - value)
    return value


def compose_frames(
    faces: Sequence[np.ndarray],
    frame_size: tuple[int, int] = (640, 480),
    face_size: int = 192,
    per_frame: int = 1,
    hold: int = 1,
    jitter: int = 6,
    seed: int = 0,
    clutter: bool = False,
    gap: int = 0,
) -> Iterator[ComposedFrame]:
    """Yield frames showing ``faces`` in order, ``per_frame`` at a time.

    Each group of faces stays on screen for ``hold`` frames, drifting by up to ``jitter``
    pixels per frame so boxes overlap from frame to frame like a person in front of a camera.
    A face drifts within ``jitter * DRIFT_FRAMES`` pixels of where it was placed (held
    longer, it turns back at that edge), so a long hold fits the frame a short one fits.

    Args:
        faces: face images (gray or BGR, any size); scaled to ``face_size``.
        frame_size: ``(width, height)``.
        face_size: pasted face side in pixels (Haar needs faces well above 48 px).
        per_frame: faces per frame, laid out in a grid.
        hold: frames per group of faces.
        jitter: maximum per-frame drift in pixels.
        seed: randomness for the background, placement and drift.
        clutter: draw lights, rectangles and edges into the background (see
            :func:`background`), where detectors put ghost boxes; a new one behind each group,
            so ghost boxes are counted over many scenes, not one.
        gap: empty frames after each group: people leave before others come, instead of one
            face turning into another in place (which per-face smoothing would average).
    """
    width, height = frame_size
    rng = np.random.default_rng(seed)
    bg = background(width, height, seed, clutter)
    cells = _cells(width, height, per_frame)
    reach = jitter * min(hold, DRIFT_FRAMES)  # the most a face drifts from its place
    room = 2 * reach
    if any(min(cw, ch) < face_size + room for _, _, cw, ch in cells):
        raise ValueError(f"{per_frame} faces of {face_size} px do not fit a {width}x{height} frame")
    for start in range(0, len(faces), per_frame):
        if clutter and start:
            bg = background(width, height, seed + start, clutter)
        group = list(range(start, min(start + per_frame, len(faces))))
        pasted = []
        for i in group:
            face = faces[i]
            if face.ndim == 2:
                face = cv2.cvtColor(face, cv2.COLOR_GRAY2BGR)
            interpolation = cv2.INTER_CUBIC if face.shape[0] < face_size else cv2.INTER_AREA
            pasted.append(cv2.resize(face, (face_size, face_size), interpolation=interpolation))
        # A random place in each face's own cell, far enough from its edges to drift.
        offsets = [
            (
                cx + reach + int(rng.integers(0, cw - face_size - room + 1)),
                cy + reach + int(rng.integers(0, ch - face_size - room + 1)),
            )
            for cx, cy, cw, ch in cells[: len(group)]
        ]
        bounds = [((x - reach, x + reach), (y - reach, y + reach)) for x, y in offsets]
        for _ in range(hold):
            image = bg.copy()
            boxes = []
            for k, face in enumerate(pasted):
                dx, dy = (int(v) for v in rng.integers(-jitter, jitter + 1, size=2))
                (x0, x1), (y0, y1) = bounds[k]
                x = _turn_back(offsets[k][0] + dx, x0, x1)
                y = _turn_back(offsets[k][1] + dy, y0, y1)
                offsets[k] = (x, y)
                image[y : y + face_size, x : x + face_size] = face
                boxes.append(Box(x, y, face_size, face_size))
            yield ComposedFrame(image, tuple(boxes), tuple(group))
        for _ in range(gap):
            yield ComposedFrame(bg.copy(), (), ())


def write_video(
    path: str | os.PathLike[str], frames: Iterable[ComposedFrame], fps: float = 10.0
) -> list[tuple[Box, ...]]:
    """Write frames to a video (atomically) and return each frame's ground-truth boxes.

    ``.avi`` files use MJPG, anything else ``mp4v``.
    """
    path = Path(path)
    fourcc = cv2.VideoWriter.fourcc(*("MJPG" if path.suffix.lower() == ".avi" else "mp4v"))
    truth: list[tuple[Box, ...]] = []
    with atomic_path(path) as tmp:
        writer = None
        try:
            for frame in frames:
                if writer is None:
                    size = (frame.image.shape[1], frame.image.shape[0])
                    writer = cv2.VideoWriter(str(tmp), fourcc, fps, size)
                    if not writer.isOpened():
                        raise FerEdgeError(f"{path}: OpenCV cannot write this video format")
                writer.write(frame.image)
                truth.append(frame.boxes)
        finally:
            if writer is not None:
                writer.release()
        if writer is None:
            raise ValueError("no frames to write")
    return truth


@dataclass(frozen=True)
class SceneTruth:
    """What a composed video shows, frame by frame.

    Attributes:
        boxes: where each face was pasted, per frame.
        faces: which face image each box shows (index into the input), per frame.
        labels: each pasted face's class, per frame, in the same order as ``boxes``.
    """

    boxes: list[tuple[Box, ...]]
    faces: list[tuple[int, ...]]
    labels: list[tuple[str, ...]]


def write_scene(
    path: str | os.PathLike[str],
    frames: Iterable[ComposedFrame],
    classes: Sequence[str],
    fps: float = 10.0,
) -> SceneTruth:
    """Write frames to a video (see :func:`write_video`) and return boxes and labels shown.

    Args:
        path: the video file.
        frames: composed frames (:func:`compose_frames`).
        classes: the class of every face image the frames index into.
        fps: the frame rate stored in the file.
    """
    faces: list[tuple[int, ...]] = []

    def noted() -> Iterator[ComposedFrame]:
        for frame in frames:
            faces.append(frame.faces)
            yield frame

    boxes = write_video(path, noted(), fps)
    return SceneTruth(boxes, faces, [tuple(classes[i] for i in shown) for shown in faces])


def read_frames(path: str | os.PathLike[str]) -> list[np.ndarray]:
    """Decode every frame of a video file (BGR); an empty list if it cannot be opened."""
    capture = cv2.VideoCapture(str(path))
    frames = []
    try:
        while True:
            ok, image = capture.read()
            if not ok:
                break
            frames.append(image)
    finally:
        capture.release()
    return frames


def sample_faces(
    root: str | os.PathLike[str], count: int, seed: int = 0
) -> tuple[list[np.ndarray], list[str]]:
    """Pick ``count`` face images from ``root/<class>/`` evenly across classes.

    Returns:
        ``(images, classes)``: gray uint8 images and the folder (class) each came from.

    Raises:
        FerEdgeError: ``root`` has no class folders with images.
    """
    root = Path(root)
    rng = np.random.default_rng(seed)
    pools = {}
    for folder in sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []:
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if files:
            pools[folder.name] = [files[i] for i in rng.permutation(len(files))]
    if not pools:
        raise FerEdgeError(f"--faces: {root} has no <class>/ folders with images")
    images: list[np.ndarray] = []
    classes: list[str] = []
    turn = 0
    while len(images) < count and any(pools.values()):
        name = list(pools)[turn % len(pools)]
        turn += 1
        if not pools[name]:
            continue
        image = cv2.imread(str(pools[name].pop(0)), cv2.IMREAD_GRAYSCALE)
        if image is not None:
            images.append(image)
            classes.append(name)
    return images, classes


def _centre(box: Box) -> tuple[float, float]:
    """The face's centre: the landmarks' mean where the detector gives them, else the box's."""
    if box.landmarks:
        xs, ys = zip(*box.landmarks, strict=True)
        return sum(xs) / len(xs), sum(ys) / len(ys)
    return box.x + box.w / 2, box.y + box.h / 2


def found(truth: Box, detected: Box) -> bool:
    """True when ``detected`` is a plausible detection of the face pasted at ``truth``.

    Its centre (landmarks' mean, else the box centre) must lie inside the pasted rectangle and
    its longer side be 0.3-2 times the rectangle's: detectors box the face, not the pasted
    image, and on a tight FER2013 crop (forehead and chin cut off) YuNet boxes the whole head it
    infers, up to 1.8 times the pasted side, with its landmarks still on the face.
    """
    cx, cy = _centre(detected)
    inside = truth.x <= cx < truth.x + truth.w and truth.y <= cy < truth.y + truth.h
    ratio = max(detected.w, detected.h) / max(truth.w, truth.h)
    return inside and 0.3 <= ratio <= 2.0


def match_faces(truth: Sequence[Box], detected: Sequence[Box]) -> list[int | None]:
    """Match one frame's detections to its pasted faces, one to one.

    Returns:
        For each detection, the index of the pasted face it found, or ``None`` for a false or
        duplicate box (a second box on a face already found). Detections are taken in order
        (detectors report the best first), each pasted face at most once.
    """
    taken: set[int] = set()
    matches: list[int | None] = []
    for box in detected:
        hit = next((i for i, t in enumerate(truth) if i not in taken and found(t, box)), None)
        if hit is not None:
            taken.add(hit)
        matches.append(hit)
    return matches


def detection_rate(
    truth: Sequence[Sequence[Box]], detected: Sequence[Sequence[Box]]
) -> tuple[float, int]:
    """Score detections against the pasted boxes, frame by frame (see :func:`match_faces`).

    Returns:
        ``(rate, false_positives)``: the share of pasted faces found, and the detections that
        match no pasted face or one already found (duplicates).
    """
    if len(truth) != len(detected):
        raise ValueError(f"{len(truth)} truth frames but {len(detected)} detected frames")
    total = hits = extra = 0
    for want, got in zip(truth, detected, strict=True):
        matches = match_faces(want, got)
        total += len(want)
        hits += sum(m is not None for m in matches)
        extra += sum(m is None for m in matches)
    return (hits / total if total else 0.0), extra


@click.command("facevideo")
@click.option(
    "--faces",
    "faces_root",
    type=click.Path(path_type=Path),
    required=True,
    help="Folder of <class>/ face images, e.g. ../shared/data/fer2013/val.",
)
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Video (.mp4/.avi).")
@click.option("--count", default=80, show_default=True, help="Faces to show.")
@click.option("--face-size", default=192, show_default=True, help="Pasted face side (px).")
@click.option("--per-frame", default=1, show_default=True, help="Faces per frame.")
@click.option("--hold", default=3, show_default=True, help="Frames per group of faces.")
@click.option("--fps", default=10.0, show_default=True, help="Frame rate stored in the video.")
@click.option("--seed", default=0, show_default=True, help="Sampling and placement seed.")
@click.option("--clutter", is_flag=True, help="Lights and edges in the background.")
def compose_cmd(
    faces_root: Path,
    out: Path,
    count: int,
    face_size: int,
    per_frame: int,
    hold: int,
    fps: float,
    seed: int,
    clutter: bool,
) -> None:
    """Compose a video of face images at known places; writes OUT and OUT's .truth.json."""
    images, classes = sample_faces(faces_root, count, seed)
    frames = compose_frames(
        images, face_size=face_size, per_frame=per_frame, hold=hold, seed=seed, clutter=clutter
    )
    truth = write_scene(out, frames, classes, fps)
    card = out.with_suffix(".truth.json")
    write_json(
        card,
        {
            "video": out.name,
            "faces": classes,
            "boxes": [[b.as_list() for b in frame] for frame in truth.boxes],
            "labels": [list(frame) for frame in truth.labels],
        },
    )
    click.echo(f"wrote {out} ({len(truth.boxes)} frames, {len(images)} faces) and {card.name}")


if __name__ == "__main__":
    compose_cmd()
