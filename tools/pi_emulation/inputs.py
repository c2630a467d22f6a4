"""The inputs of the x86 vs aarch64 comparison: short videos of faces and a tiny int8 model.

All are made on the x86 host (training needs TensorFlow, which a Pi never installs) and then
read by both runs, so any difference in the outputs comes from the platform.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from fer_edge.bench.facevideo import compose_frames, sample_faces
from fer_edge.detect import Box
from fer_edge.labels import FER2013_CLASSES
from fer_edge.modelmeta import ModelMeta
from fer_edge.synthetic import synthetic_images

#: The public-domain face that OpenCV's Haar cascade finds (see tests/data).
ASTRONAUT = Path(__file__).resolve().parents[2] / "tests" / "data" / "astronaut_face.png"


def training_set(
    fer_root: str | os.PathLike[str] | None, count: int = 2800
) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(images, labels)`` to train the tiny model on.

    FER2013 faces (``count`` of them, balanced across classes) when a FER2013-style split
    folder is given, else generated gratings, which need nothing but numpy.
    """
    if fer_root is None:
        return synthetic_images(count // len(FER2013_CLASSES))
    images, classes = sample_faces(fer_root, count)
    labels = np.asarray([FER2013_CLASSES.index(c) for c in classes], dtype=np.int64)
    return np.stack([cv2.resize(i, (48, 48), interpolation=cv2.INTER_AREA) for i in images]), labels


def train_tiny_int8(
    path: str | os.PathLike[str],
    images: np.ndarray,
    labels: np.ndarray,
    epochs: int = 20,
    sharpen: float = 3.0,
    seed: int = 0,
) -> Path:
    """Train a small CNN briefly and save it as a full-int8 model with fer-edge metadata.

    The model is not meant to be accurate, only to behave like a trained one: different
    labels for different faces and probabilities with clear margins. A few epochs give the
    labels; multiplying the last layer's weights by ``sharpen`` (a softmax temperature of
    ``1 / sharpen``, top labels unchanged) gives the margins. Without them most faces sit
    within one int8 step of a tie, and label agreement would measure rounding luck.

    Args:
        path: the ``.tflite`` file to write.
        images: ``(N, 48, 48)`` uint8 gray faces.
        labels: ``(N,)`` FER2013 class indices.
        epochs: passes over the images.
        sharpen: factor on the logits.
        seed: weights and shuffling seed.

    Returns:
        ``path``.
    """
    from fer_edge.convert.export import to_tflite, write_tflite
    from fer_edge.convert.tiny import build_tiny_cnn, fit_tiny
    from fer_edge.preprocess import normalize

    model = build_tiny_cnn((16, 32, 64), len(FER2013_CLASSES), seed=seed)
    fit_tiny(model, images, labels, epochs, sharpen=sharpen)
    representative = normalize(images[:: max(1, len(images) // 100)])
    flatbuffer = to_tflite(model, "int8", representative=representative)
    meta = ModelMeta(FER2013_CLASSES, name="pi-emulation-tiny", extra={"purpose": "pi-emulation"})
    return write_tflite(path, flatbuffer, meta)


def astronaut() -> np.ndarray:
    """Return the astronaut's face, gray."""
    face = cv2.imread(str(ASTRONAUT), cv2.IMREAD_GRAYSCALE)
    if face is None:
        raise FileNotFoundError(ASTRONAUT)
    return face


def face_images(
    fer_root: str | os.PathLike[str] | None = None, fer_count: int = 24
) -> list[np.ndarray]:
    """Return gray face images: astronaut variants, then FER2013 faces when a root is given.

    The astronaut is shown brighter, darker, lower in contrast, blurred and mirrored, so even
    without FER2013 the model sees inputs that differ, yet the detector still finds each one.

    Args:
        fer_root: a folder of ``<class>/`` face images (e.g. FER2013's val split), or ``None``.
        fer_count: FER faces to take from it.
    """
    face = astronaut()
    variants = [
        face,
        cv2.convertScaleAbs(face, alpha=1.0, beta=40),
        cv2.convertScaleAbs(face, alpha=0.7, beta=0),
        cv2.convertScaleAbs(face, alpha=0.5, beta=64),
        cv2.GaussianBlur(face, (0, 0), 2.0),
        cv2.flip(face, 1),
    ]
    if fer_root is not None:
        variants += sample_faces(fer_root, fer_count)[0]
    return variants


def make_video(
    path: str | os.PathLike[str],
    faces: list[np.ndarray],
    hold: int = 2,
    seed: int = 0,
    frame_size: tuple[int, int] = (640, 480),
    face_size: int = 192,
    per_frame: int = 1,
    jitter: int = 4,
) -> list[tuple[Box, ...]]:
    """Write a lossless FFV1 video showing ``faces``, ``per_frame`` at a time.

    Lossless matters: the same MJPG or mp4v file decodes to slightly different pixels on x86
    and aarch64 (and across OpenCV versions), which would blur what the comparison measures.
    FFV1 frames decode bit-identically everywhere, so both runs see the same pixels.

    Args:
        path: the ``.avi`` file to write.
        faces: gray face images, each shown for ``hold`` frames.
        hold: frames per face.
        seed: placement and drift seed.
        frame_size: ``(width, height)``.
        face_size: pasted face side in pixels.
        per_frame: faces shown together.
        jitter: most drift per frame, in pixels.

    Returns:
        The ground-truth boxes of each frame.
    """
    truth = []
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"FFV1"), 10.0, frame_size)
    if not writer.isOpened():
        raise RuntimeError(f"{path}: this OpenCV cannot write FFV1 video")
    frames = compose_frames(
        faces, frame_size, face_size, per_frame=per_frame, hold=hold, jitter=jitter, seed=seed
    )
    try:
        for frame in frames:
            writer.write(frame.image)
            truth.append(frame.boxes)
    finally:
        writer.release()
    return truth


def edited_faces() -> list[np.ndarray]:
    """Return the astronaut with its mouth edited, which moves the bundled model off "happy".

    The bundled model reads every plain astronaut variant as happy at its top probability,
    where a change in the pipeline would not show; with the mouth darkened, mirrored upside
    down, covered or the face inverted, it spreads its probabilities (fear, surprise, neutral)
    and a changed crop or TTA moves them. YuNet still finds each one.
    """
    face = astronaut()
    height, width = face.shape
    top, bottom = int(0.65 * height), int(0.9 * height)
    left, right = int(0.2 * width), int(0.8 * width)
    dark, covered, flipped = face.copy(), face.copy(), face.copy()
    dark[top:bottom, left:right] = 30
    covered[top:bottom, left:right] = int(np.median(face))
    flipped[int(0.62 * height) : bottom] = cv2.flip(face[int(0.62 * height) : bottom], 0)
    return [dark, flipped, covered, 255 - face]


def make_default_video(
    path: str | os.PathLike[str], fer_root: str | os.PathLike[str] | None, frames: int = 60
) -> list[tuple[Box, ...]]:
    """Write the video for ``fer-edge run``'s defaults: 320x240, two 96 px faces per frame.

    The astronaut variants (:func:`face_images`, :func:`edited_faces`), then FER2013 faces
    when ``fer_root`` is given (the astronaut ones again and again when not), two at a time,
    each pair held for two frames: ``frames`` frames and about twice as many faces. QVGA keeps
    the emulated runs short (qemu runs YuNet, a float network, at about 1 s per 320x240 frame
    on the 2-core machine, 1.5-3 s per 640x480 one); 96 px faces are twice what the
    classifier takes (48 px) and above ``--min-face``.
    """
    count = frames  # two per frame, each pair held for two frames
    images = face_images(None) + edited_faces()
    if fer_root is not None:
        images += sample_faces(fer_root, max(0, count - len(images)))[0]
    images = [images[i % len(images)] for i in range(count)]
    return make_video(path, images, frame_size=(320, 240), face_size=96, per_frame=2, jitter=2)
