"""The inputs of the x86 vs aarch64 comparison: an int8 model and a short video of faces.

Both are made on the x86 host (training needs TensorFlow, which a Pi never installs) and then
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
    face = cv2.imread(str(ASTRONAUT), cv2.IMREAD_GRAYSCALE)
    if face is None:
        raise FileNotFoundError(ASTRONAUT)
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
    path: str | os.PathLike[str], faces: list[np.ndarray], hold: int = 2, seed: int = 0
) -> list[tuple[Box, ...]]:
    """Write a lossless 640x480 FFV1 video showing ``faces`` one at a time.

    Lossless matters: the same MJPG or mp4v file decodes to slightly different pixels on x86
    and aarch64 (and across OpenCV versions), which would blur what the comparison measures.
    FFV1 frames decode bit-identically everywhere, so both runs see the same pixels.

    Args:
        path: the ``.avi`` file to write.
        faces: gray face images, each shown for ``hold`` frames.
        hold: frames per face.
        seed: placement and drift seed.

    Returns:
        The ground-truth boxes of each frame.
    """
    truth = []
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"FFV1"), 10.0, (640, 480))
    if not writer.isOpened():
        raise RuntimeError(f"{path}: this OpenCV cannot write FFV1 video")
    try:
        for frame in compose_frames(faces, face_size=192, hold=hold, jitter=4, seed=seed):
            writer.write(frame.image)
            truth.append(frame.boxes)
    finally:
        writer.release()
    return truth
