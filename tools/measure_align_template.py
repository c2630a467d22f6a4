"""Measure where YuNet's five landmarks sit in FER2013 training crops: the alignment template.

Every sampled training face is upscaled (as a face in front of a camera is larger than 48 px)
and pasted on the scene background of :mod:`fer_edge.bench.facevideo` with room around it, the
bundled YuNet detects it, and its landmarks are mapped back to 48x48 pixel coordinates. The
template is the per-coordinate median over all faces and scales (robust to the faces where a
landmark is off; ``sd`` in the printout is 1.4826 x the median absolute deviation), averaged
with its mirror image: training flips faces, so the framing the model learned is symmetric.
``fer_edge.facecrop.FER2013_TEMPLATE`` holds the result; re-run this to
check it or to measure a template for other training data.

Usage (from the repository root)::

    python tools/measure_align_template.py [--data ../shared/data/fer2013/train] [--limit 4000]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from fer_edge.atomic import write_json
from fer_edge.bench.facevideo import background, found
from fer_edge.data import IMAGE_SUFFIXES
from fer_edge.detect import Box, YuNetDetector, default_yunet_model
from fer_edge.facecrop import LANDMARKS, MIRROR_PAIRS, AlignTemplate

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "fer2013" / "train"
SIZE = 48


def sample_files(root: Path, limit: int, seed: int) -> list[Path]:
    """Return a seeded random sample of the image files under ``root/<class>/``."""
    files = sorted(p for p in root.glob("*/*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise SystemExit(f"{root}: no <class>/ image folders")
    order = np.random.default_rng(seed).permutation(len(files))
    return [files[i] for i in order[:limit]]


def landmarks_in_crop(
    detector: YuNetDetector, face: np.ndarray, scale: int, canvas: np.ndarray
) -> np.ndarray | None:
    """Return YuNet's landmarks of ``face`` in the crop's own pixel coordinates.

    The face is upscaled ``scale`` times and pasted in the middle of ``canvas``; ``None`` when
    YuNet misses it.
    """
    side = SIZE * scale
    up = cv2.resize(face, (side, side), interpolation=cv2.INTER_CUBIC)
    frame = canvas.copy()
    y0, x0 = (frame.shape[0] - side) // 2, (frame.shape[1] - side) // 2
    frame[y0 : y0 + side, x0 : x0 + side] = cv2.cvtColor(up, cv2.COLOR_GRAY2BGR)
    truth = Box(x0, y0, side, side)
    hits = [b for b in detector.detect(frame) if b.landmarks and found(truth, b)]
    if not hits:
        return None
    best = max(hits, key=lambda b: b.score)
    points = np.asarray(best.landmarks, dtype=np.float64) - [x0, y0]
    # Pixel centres: upscaled pixel u sits at (u + 0.5) / scale - 0.5 in the crop.
    return (points + 0.5) / scale - 0.5


def symmetric(points: np.ndarray) -> np.ndarray:
    """Average ``(5, 2)`` points with their horizontal mirror image (pairs swapped)."""
    mirrored = points.copy()
    mirrored[:, 0] = (SIZE - 1) - mirrored[:, 0]
    for a, b in MIRROR_PAIRS:
        mirrored[[a, b]] = mirrored[[b, a]]
    return (points + mirrored) / 2


def main(argv: list[str] | None = None) -> int:
    """Measure and print the template; return the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="class-folder split")
    parser.add_argument("--limit", type=int, default=4000, help="faces to sample")
    parser.add_argument("--scales", default="3,4", help="upscale factors, comma-separated")
    parser.add_argument("--threshold", type=float, default=0.5, help="YuNet score threshold")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="also write the template as JSON here")
    args = parser.parse_args(argv)

    scales = [int(s) for s in args.scales.split(",")]
    files = sample_files(args.data, args.limit, args.seed)
    detector = YuNetDetector(default_yunet_model(), min_face=8, score_threshold=args.threshold)
    started = time.perf_counter()
    points, tried = [], 0
    for scale in scales:
        side = 2 * SIZE * scale  # the face takes the middle half of the canvas
        canvas = background(side, side, seed=scale)
        for path in files:
            face = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
            if face is None or face.shape != (SIZE, SIZE):
                continue
            tried += 1
            found_points = landmarks_in_crop(detector, face, scale, canvas)
            if found_points is not None:
                points.append(found_points)
    if not points:
        print("YuNet found no face", file=sys.stderr)
        return 1
    stack = np.stack(points)
    median = np.median(stack, axis=0)
    spread = 1.4826 * np.median(np.abs(stack - median), axis=0)
    template = symmetric(median)
    measured = (
        f"YuNet ({default_yunet_model().name}, score >= {args.threshold}) on {len(files)} "
        f"{args.data.parent.name}/{args.data.name} faces upscaled x{args.scales} on a "
        f"2x-sized scene background: per-point median of {len(points)} detections "
        f"({len(points) / tried:.1%} of {tried}), mirror-averaged"
    )
    result = AlignTemplate(tuple((float(x), float(y)) for x, y in template), measured=measured)
    print(f"{measured}; {time.perf_counter() - started:.0f} s")
    header = ("landmark", "median x", "median y", "sd x", "sd y", "template x", "template y")
    print("".join(f"{h:<12}" if i == 0 else f"{h:>11}" for i, h in enumerate(header)))
    for i, name in enumerate(LANDMARKS):
        print(
            f"{name:<12}{median[i, 0]:11.2f}{median[i, 1]:11.2f}{spread[i, 0]:11.2f}"
            f"{spread[i, 1]:11.2f}{template[i, 0]:11.3f}{template[i, 1]:11.3f}"
        )
    print("points=(" + ", ".join(f"({x:.3f}, {y:.3f})" for x, y in result.points) + ")")
    if args.json:
        write_json(args.json, result.to_dict())
    return 0


if __name__ == "__main__":
    sys.exit(main())
