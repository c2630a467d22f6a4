"""Face crops: a detected face in a frame -> the model's input framing, in one place.

A classifier is only as good as the crop it is handed: it learned FER2013's framing (where the
eyes, nose and mouth sit in the 48x48 image), so a live crop must reproduce it. Three modes:

- **aligned** (detectors with landmarks, e.g. YuNet): a similarity transform (rotation, uniform
  scale, shift) maps the five detected landmarks onto an :class:`AlignTemplate` (where those
  landmarks sit in the training crops) and warps the frame straight to the model's input size;
- **box** (detectors without landmarks, e.g. Haar): a square about the box centre, grown by a
  margin, resized by :func:`fer_edge.preprocess.resize_face`;
- **both**: the model sees both crops and their probabilities are averaged (two framings whose
  errors differ, like test-time augmentation).

The device, the benchmarks and any training-time re-crop call :func:`face_crops` (or
:func:`crop_face` for a single crop); nothing else cuts faces out of frames. Coordinates are
OpenCV pixel coordinates (pixel centres at integers).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from fer_edge.preprocess import DEFAULT_SPEC, InputSpec, resize_face, to_gray

#: The five landmarks in YuNet's order (the subject's right eye is on the image's left).
LANDMARKS: tuple[str, ...] = ("right_eye", "left_eye", "nose", "mouth_right", "mouth_left")
#: Crop modes (see the module docstring).
CROP_MODES: tuple[str, ...] = ("align", "box", "both")
#: Index pairs that swap under a horizontal flip.
MIRROR_PAIRS: tuple[tuple[int, int], ...] = ((0, 1), (3, 4))


@dataclass(frozen=True)
class AlignTemplate:
    """Where the five landmarks sit in a model's input images.

    Attributes:
        points: five ``(x, y)`` in :data:`LANDMARKS` order, in pixel coordinates of a
            ``width`` x ``height`` input.
        width: input width the points refer to.
        height: input height the points refer to.
        measured: how the points were measured (data, detector, statistic).
    """

    points: tuple[tuple[float, float], ...]
    width: int = 48
    height: int = 48
    measured: str = ""

    def __post_init__(self) -> None:
        if len(self.points) != len(LANDMARKS) or any(len(p) != 2 for p in self.points):
            raise ValueError(f"an alignment template needs {len(LANDMARKS)} (x, y) points")

    def scaled(self, width: int, height: int) -> np.ndarray:
        """Return the points as a float32 ``(5, 2)`` array for a ``width`` x ``height`` input.

        The framing is a property of the data, not of the pixel count, so a 64x64 model trained
        on the same crops gets the same template scaled (pixel centres map to pixel centres).
        """
        pts = np.asarray(self.points, dtype=np.float32)
        sx, sy = width / self.width, height / self.height
        return np.stack([(pts[:, 0] + 0.5) * sx - 0.5, (pts[:, 1] + 0.5) * sy - 0.5], axis=1)

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form stored in model metadata."""
        return {
            "landmarks": list(LANDMARKS),
            "points": [[round(float(x), 3), round(float(y), 3)] for x, y in self.points],
            "size": [self.width, self.height],
            "measured": self.measured,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AlignTemplate:
        """Parse :meth:`to_dict` output.

        Raises:
            ValueError: the points or size are malformed.
        """
        try:
            points = tuple((float(x), float(y)) for x, y in data["points"])
            width, height = (int(v) for v in data.get("size", (48, 48)))
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"malformed alignment template ({exc})") from None
        return cls(points, width, height, str(data.get("measured", "")))


#: FER2013's framing, measured by ``tools/measure_align_template.py`` (re-run it to check): the
#: bundled YuNet (score >= 0.5) on 4,000 FER2013 training faces (seeded sample) upscaled 3x and
#: 4x, each centred on a scene background twice its size, landmarks mapped back to 48x48 pixel
#: coordinates; per-coordinate median of the 7,879 detections (98.5%), then averaged with its
#: mirror image (training flips faces, so the framing is symmetric). Spread across faces: about
#: 2.3-3 px (1.4826 x MAD) per coordinate. It depends on FER2013's framing, not on a model.
FER2013_TEMPLATE = AlignTemplate(
    points=(
        (14.142, 18.286),
        (32.858, 18.286),
        (23.5, 28.066),
        (15.756, 36.104),
        (31.244, 36.104),
    ),
    measured=(
        "YuNet face_detection_yunet_2026may.onnx (score >= 0.5) on 4000 fer2013/train faces "
        "upscaled x3,4 on a 2x-sized scene background: per-point median of 7879 detections "
        "(98.5% of 8000), mirror-averaged"
    ),
)


@dataclass(frozen=True)
class CropOptions:
    """How :func:`crop_face` frames a face.

    Attributes:
        mode: ``align``, ``box`` or ``both`` (:data:`CROP_MODES`); without landmarks every mode
            is a box crop.
        margin: box crop: fraction of the box's longer side added on each side (negative:
            inside the box).
        template: the framing to align to (``None``: :data:`FER2013_TEMPLATE`).
    """

    mode: str = "align"
    margin: float = 0.0
    template: AlignTemplate | None = None

    def __post_init__(self) -> None:
        if self.mode not in CROP_MODES:
            raise ValueError(f"crop mode must be one of {CROP_MODES}, got {self.mode!r}")

    def describe(self) -> str:
        """Return ``align``, ``box -0.075`` or ``both -0.075`` (the margin where it applies)."""
        return self.mode if self.mode == "align" else f"{self.mode} {self.margin:+.3f}"


def square_region(
    box: Sequence[float], margin: float, width: int, height: int
) -> tuple[int, int, int, int]:
    """Grow a box by ``margin`` on each side, square it about its centre, clip to the frame.

    Args:
        box: ``(x, y, w, h)`` in frame pixels.
        margin: fraction of the box's longer side added on each side (0.1: 10%).
        width: frame width.
        height: frame height.

    Returns:
        ``(x, y, w, h)`` of the crop region; square unless clipped at the frame edge (then
        possibly empty).
    """
    x, y, w, h = box
    side = max(w, h) * (1.0 + 2.0 * margin)
    cx, cy = x + w / 2.0, y + h / 2.0
    x0, y0 = round(cx - side / 2.0), round(cy - side / 2.0)
    x1, y1 = x0 + max(1, round(side)), y0 + max(1, round(side))
    x0, y0, x1, y1 = max(0, x0), max(0, y0), min(width, x1), min(height, y1)
    return x0, y0, max(0, x1 - x0), max(0, y1 - y0)


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray | None:
    """Return the least-squares similarity (rotation, uniform scale, shift) taking src to dst.

    The closed form (Umeyama 1991) over all points, rather than ``cv2.estimateAffinePartial2D``
    whose RANSAC/LMedS fit keeps a random best subset: with five landmarks every point is
    trusted, and a mouth corner moved by an expression should pull the fit a little, not be
    dropped one frame and kept the next.

    Args:
        src: ``(N, 2)`` points, N >= 2.
        dst: ``(N, 2)`` target points.

    Returns:
        A 2x3 float64 matrix, or ``None`` when the source points coincide.
    """
    src = np.asarray(src, dtype=np.float64).reshape(-1, 2)
    dst = np.asarray(dst, dtype=np.float64).reshape(-1, 2)
    mu_src, mu_dst = src.mean(axis=0), dst.mean(axis=0)
    a, b = src - mu_src, dst - mu_dst
    spread = float((a**2).sum()) / len(src)
    if not np.isfinite(spread) or spread < 1e-9:
        return None
    u, sigma, vt = np.linalg.svd(b.T @ a / len(src))
    flip = np.diag([1.0, -1.0 if np.linalg.det(u) * np.linalg.det(vt) < 0 else 1.0])
    rotation = u @ flip @ vt
    scale = float(np.trace(np.diag(sigma) @ flip)) / spread
    shift = mu_dst - scale * rotation @ mu_src
    return np.hstack([scale * rotation, shift[:, np.newaxis]])


def alignment_matrix(
    landmarks: np.ndarray, template: AlignTemplate, width: int, height: int
) -> np.ndarray | None:
    """Return the 2x3 similarity transform from frame pixels onto the template.

    Args:
        landmarks: ``(5, 2)`` detected points in frame pixels, :data:`LANDMARKS` order.
        template: where the points should land.
        width: output width (the template is scaled to it).
        height: output height.

    Returns:
        The transform (see :func:`similarity_transform`), or ``None`` for degenerate points.
    """
    matrix = similarity_transform(landmarks, template.scaled(width, height))
    if matrix is None or not np.all(np.isfinite(matrix)) or np.linalg.det(matrix[:, :2]) <= 0:
        return None
    return matrix


def _warp(image: np.ndarray, matrix: np.ndarray, width: int, height: int) -> np.ndarray:
    """Warp ``image`` by ``matrix`` to ``width`` x ``height`` gray, anti-aliased.

    ``warpAffine`` samples bilinearly, which aliases when a face is several times larger than
    the output (a 150 px face to 48 px skips two of every three pixels). So the part of the
    frame the output covers is first shrunk with ``INTER_AREA`` (averaging, as
    :func:`~fer_edge.preprocess.resize_face` does for box crops) to about the output scale, and
    the warp then only rotates and fine-scales.
    """
    frame_h, frame_w = image.shape[:2]
    scale = float(np.sqrt(np.linalg.det(matrix[:, :2])))
    inverse = cv2.invertAffineTransform(matrix)
    corners = np.array([[0, 0, 1], [width, 0, 1], [0, height, 1], [width, height, 1]], np.float32)
    src = corners @ inverse.T
    x0 = max(0, int(np.floor(src[:, 0].min())) - 2)
    y0 = max(0, int(np.floor(src[:, 1].min())) - 2)
    x1 = min(frame_w, int(np.ceil(src[:, 0].max())) + 3)
    y1 = min(frame_h, int(np.ceil(src[:, 1].max())) + 3)
    if x1 <= x0 or y1 <= y0:
        # The face lies wholly outside the frame: nothing to average, warp what is there.
        return cv2.warpAffine(to_gray(image), matrix, (width, height), flags=cv2.INTER_LINEAR)
    region = to_gray(image[y0:y1, x0:x1])
    # Region pixel (u, v) is frame pixel (u + x0, v + y0).
    shift = np.array([[1, 0, x0], [0, 1, y0]], np.float64)
    local = matrix.astype(np.float64) @ np.vstack([shift, [0, 0, 1]])
    if scale < 0.75:
        rw, rh = region.shape[1], region.shape[0]
        sw, sh = max(1, round(rw * scale)), max(1, round(rh * scale))
        region = cv2.resize(region, (sw, sh), interpolation=cv2.INTER_AREA)
        kx, ky = sw / rw, sh / rh
        # Shrunk pixel centres: s = (u + 0.5) * k - 0.5, so u = (s + 0.5) / k - 0.5.
        unshrink = np.array([[1 / kx, 0, 0.5 / kx - 0.5], [0, 1 / ky, 0.5 / ky - 0.5], [0, 0, 1]])
        local = local @ unshrink
    return cv2.warpAffine(
        region, local, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )


def crop_face(
    image: np.ndarray,
    box: Sequence[float],
    landmarks: np.ndarray | Sequence[Sequence[float]] | None = None,
    spec: InputSpec = DEFAULT_SPEC,
    options: CropOptions | None = None,
) -> np.ndarray:
    """Cut one face out of a frame in the framing the model was trained on.

    Args:
        image: the frame, gray or BGR.
        box: the face box ``(x, y, w, h)`` in frame pixels.
        landmarks: the five :data:`LANDMARKS` in frame pixels, or ``None`` (box crop).
        spec: the model's input spec; the crop comes back at its size.
        options: the crop; ``align`` and ``both`` give the aligned crop here, ``box`` the box
            crop (see :func:`face_crops` for both at once).

    Returns:
        A ``(spec.height, spec.width)`` uint8 gray image.

    Raises:
        ValueError: the box lies outside the frame (and there are no usable landmarks).
    """
    options = options or CropOptions()
    if options.mode != "box" and landmarks is not None:
        template = options.template or FER2013_TEMPLATE
        matrix = alignment_matrix(np.asarray(landmarks), template, spec.width, spec.height)
        if matrix is not None:
            return _warp(image, matrix, spec.width, spec.height)
    height, width = image.shape[:2]
    x, y, w, h = square_region(box, options.margin, width, height)
    if w == 0 or h == 0:
        raise ValueError(f"face box {list(box)} lies outside the {width}x{height} frame")
    return resize_face(image[y : y + h, x : x + w], spec)


def face_crops(
    image: np.ndarray,
    box: Sequence[float],
    landmarks: np.ndarray | Sequence[Sequence[float]] | None = None,
    spec: InputSpec = DEFAULT_SPEC,
    options: CropOptions | None = None,
) -> list[np.ndarray]:
    """Return the crops a classifier should average for one face (see :func:`crop_face`).

    One crop for ``align`` and ``box``; for ``both`` with landmarks, the aligned crop and then
    the box crop.
    """
    options = options or CropOptions()
    if options.mode == "both" and landmarks is not None:
        aligned = crop_face(image, box, landmarks, spec, options)
        return [aligned, crop_face(image, box, None, spec, options)]
    return [crop_face(image, box, landmarks, spec, options)]
