"""Training faces re-cut the way the device cuts them: through the detector and the crop.

A dataset face and the crop ``fer-edge run`` hands the classifier are framed differently: a
FER2013 image is one fixed, human-made framing, while the device boxes the face with YuNet and
cuts a square from the box (:func:`fer_edge.facecrop.face_crops`), whose size varies with the
face by about 12% (robust spread of the box side against the pasted image, on scenes of
training faces). Classified through the device's crop, faces lose several points against their
own dataset crops. Training on both framings teaches the model the device's.

Each face is upscaled (a random 2-4x, as faces 96-192 px high in a camera frame), put on a
canvas twice its side (half the time plain noise, half the time its own edge pixels smeared
outwards, so neither becomes a cue), detected and cut with the ``fer-edge run`` defaults for
YuNet. Faces the
detector misses keep their own image. The crops are made once, before the first epoch, and
kept in the run folder (``recrop.npz``), like the teachers' predictions.
"""

from __future__ import annotations

import sys

import cv2
import numpy as np
from tqdm import tqdm

from fer_edge.facecrop import CropOptions, face_crops
from fer_edge.preprocess import InputSpec, resize_face

#: The canvas side, in face sides: room for YuNet's box, which reaches above a tight crop.
CANVAS = 2.0
#: Upscale range of the 48 px faces before detection (camera faces 96-192 px high).
SCALES = (2.0, 4.0)


def _canvas(face: np.ndarray, scale: float, rng: np.random.Generator) -> tuple[np.ndarray, int]:
    side = max(8, round(face.shape[0] * scale))
    big = cv2.resize(face, (side, side), interpolation=cv2.INTER_CUBIC)
    size = round(side * CANVAS)
    offset = (size - side) // 2
    if rng.random() < 0.5:
        # The world around a face continues it: smear the face's edge pixels outwards.
        rest = size - side - offset
        return cv2.copyMakeBorder(big, offset, rest, offset, rest, cv2.BORDER_REPLICATE), offset
    noise = np.clip(rng.normal(118.0, 12.0, (size, size)), 0, 255).astype(np.uint8)
    canvas = np.asarray(cv2.GaussianBlur(noise, (0, 0), 2.0), np.uint8)
    canvas[offset : offset + side, offset : offset + side] = big
    return canvas, offset


def device_crops(
    images: np.ndarray,
    spec: InputSpec,
    seed: int = 0,
    progress: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Re-cut uint8 faces ``(N, H, W)`` through the device's default detector and crop.

    Args:
        images: the dataset faces.
        spec: the model's input spec (the crops come back at its size).
        seed: the upscale factors and canvas noise.
        progress: show a progress bar on stderr (a few minutes for FER2013's train split).

    Returns:
        ``(crops, found)``: ``(N, spec.height, spec.width)`` uint8 crops (a face's own image
        where the detector found nothing) and the ``(N,)`` bool mask of faces found.
    """
    from fer_edge.detect import DEFAULT_CROP, DEFAULT_MARGIN, make_detector

    detector = make_detector("yunet", min_face=16)
    options = CropOptions(DEFAULT_CROP["yunet"], DEFAULT_MARGIN["yunet"])
    rng = np.random.default_rng(seed)
    crops = np.empty((len(images), spec.height, spec.width), np.uint8)
    found = np.zeros(len(images), bool)
    faces = tqdm(images, desc="recrop", unit="face", disable=not progress, file=sys.stderr)
    for i, face in enumerate(faces):
        canvas, offset = _canvas(face, float(rng.uniform(*SCALES)), rng)
        side = canvas.shape[0] - 2 * offset
        centre = offset + side / 2.0
        boxes = [
            b
            for b in detector.detect(cv2.cvtColor(canvas, cv2.COLOR_GRAY2BGR))
            if abs(b.x + b.w / 2.0 - centre) < side / 2.0 and abs(b.y + b.h / 2.0 - centre) < side
        ]
        if boxes:
            box = boxes[0]
            crops[i] = face_crops(canvas, box.as_list(), box.landmarks, spec, options)[0]
            found[i] = True
        else:
            crops[i] = resize_face(face, spec)
    return crops, found
