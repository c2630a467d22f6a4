"""tf.data input pipelines: normalised faces in, augmented batches out.

Pixels are normalised by :func:`fer_edge.preprocess.normalize` (the one preprocessing path);
augmentation runs here, outside the model, so the model stays quantisable.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from fer_edge.preprocess import InputSpec, normalize
from fer_edge.tfcompat import tf_and_keras


@dataclass(frozen=True)
class AugmentOptions:
    """Training-time augmentation (all applied per image, on the fly).

    Attributes:
        flip: random horizontal flips (expressions are symmetric enough).
        rotation: maximum rotation in degrees.
        shift: maximum translation as a fraction of the image size.
        zoom: maximum zoom in or out as a fraction (0.1: 90% to 110%).
        brightness: maximum brightness change, in input units (after normalisation).
        contrast: maximum contrast change as a fraction (0.2: 80% to 120%).
        erase: probability of random erasing (a gray rectangle of 2-20% of the face).
        mixup: mixup Beta(alpha, alpha) parameter; 0 disables it.
    """

    flip: bool = True
    rotation: float = 10.0
    shift: float = 0.1
    zoom: float = 0.1
    brightness: float = 0.1
    contrast: float = 0.2
    erase: float = 0.0
    mixup: float = 0.0


NO_AUGMENT = AugmentOptions(False, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)


def to_inputs(images: np.ndarray, spec: InputSpec) -> np.ndarray:
    """Turn stored uint8 faces ``(N, H, W)`` into model inputs ``(N, H, W, C)``."""
    return normalize(images, spec)


def _affine(tf: Any, x: Any, options: AugmentOptions, spec: InputSpec) -> Any:
    n = tf.shape(x)[0]
    h, w = float(spec.height), float(spec.width)
    angle = tf.random.uniform([n], -1.0, 1.0) * options.rotation * math.pi / 180.0
    scale = 1.0 + tf.random.uniform([n], -options.zoom, options.zoom)
    tx = tf.random.uniform([n], -options.shift, options.shift) * w
    ty = tf.random.uniform([n], -options.shift, options.shift) * h
    cos, sin = tf.cos(angle) / scale, tf.sin(angle) / scale
    cx, cy = (w - 1) / 2.0, (h - 1) / 2.0
    # Output->input map: rotate and scale about the centre, then shift.
    a0, a1 = cos, -sin
    b0, b1 = sin, cos
    a2 = cx - a0 * cx - a1 * cy - tx
    b2 = cy - b0 * cx - b1 * cy - ty
    zeros = tf.zeros([n])
    transforms = tf.stack([a0, a1, a2, b0, b1, b2, zeros, zeros], axis=1)
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=x,
        transforms=transforms,
        output_shape=tf.shape(x)[1:3],
        fill_value=0.0,
        interpolation="BILINEAR",
        fill_mode="REFLECT",
    )


def _erase(tf: Any, x: Any, probability: float) -> Any:
    shape = tf.shape(x)
    n, h, w = shape[0], shape[1], shape[2]
    hf, wf = tf.cast(h, tf.float32), tf.cast(w, tf.float32)
    area = tf.random.uniform([n], 0.02, 0.2) * hf * wf
    ratio = tf.exp(tf.random.uniform([n], math.log(0.3), math.log(3.3)))
    eh = tf.minimum(tf.sqrt(area * ratio), hf)
    ew = tf.minimum(tf.sqrt(area / ratio), wf)
    y0 = tf.random.uniform([n]) * (hf - eh)
    x0 = tf.random.uniform([n]) * (wf - ew)
    rows = tf.cast(tf.range(h), tf.float32)[None, :, None]
    cols = tf.cast(tf.range(w), tf.float32)[None, None, :]
    inside = (
        (rows >= y0[:, None, None])
        & (rows < (y0 + eh)[:, None, None])
        & (cols >= x0[:, None, None])
        & (cols < (x0 + ew)[:, None, None])
    )
    apply = tf.random.uniform([n]) < probability
    mask = tf.logical_and(inside, apply[:, None, None])[..., None]
    fill = tf.reduce_mean(x, axis=[1, 2, 3], keepdims=True)
    return tf.where(mask, fill, x)


def _augment_batch(
    tf: Any, x: Any, y: Any, options: AugmentOptions, spec: InputSpec
) -> tuple[Any, Any]:
    # tf is passed in: tf.data traces this function, and must not trace the import shim.
    n = tf.shape(x)[0]
    if options.flip:
        flip = tf.random.uniform([n, 1, 1, 1]) < 0.5
        x = tf.where(flip, tf.reverse(x, axis=[2]), x)
    if options.rotation or options.shift or options.zoom:
        x = _affine(tf, x, options, spec)
    lo = spec.offset
    hi = 255.0 * spec.scale + spec.offset
    if options.contrast:
        factor = 1.0 + tf.random.uniform([n, 1, 1, 1], -options.contrast, options.contrast)
        mean = tf.reduce_mean(x, axis=[1, 2, 3], keepdims=True)
        x = (x - mean) * factor + mean
    if options.brightness:
        delta = tf.random.uniform([n, 1, 1, 1], -options.brightness, options.brightness)
        x = x + delta * (hi - lo)
    x = tf.clip_by_value(x, lo, hi)
    if options.erase:
        x = _erase(tf, x, options.erase)
    if options.mixup:
        gamma1 = tf.random.gamma([n], options.mixup)
        gamma2 = tf.random.gamma([n], options.mixup)
        lam = gamma1 / (gamma1 + gamma2)
        # Keep the dominant image first so class weights (by argmax) stay meaningful.
        lam = tf.maximum(lam, 1.0 - lam)
        order = tf.random.shuffle(tf.range(n))
        x = lam[:, None, None, None] * x + (1.0 - lam[:, None, None, None]) * tf.gather(x, order)
        y = lam[:, None] * y + (1.0 - lam[:, None]) * tf.gather(y, order)
    return x, y


def make_dataset(
    images: np.ndarray,
    labels: np.ndarray,
    spec: InputSpec,
    num_classes: int,
    batch_size: int = 64,
    training: bool = False,
    augment: AugmentOptions | None = None,
    seed: int = 0,
    soft: np.ndarray | None = None,
    alternates: np.ndarray | None = None,
    alternate_share: float = 0.0,
    targets: np.ndarray | None = None,
    sample: bool = False,
) -> Any:
    """Build a ``tf.data.Dataset`` of ``(inputs, one_hot_labels)`` batches.

    Args:
        images: uint8 faces ``(N, H, W)`` as stored by :mod:`fer_edge.data`.
        labels: int labels ``(N,)``.
        spec: the model's input spec (normalisation, channels).
        num_classes: number of classes (one-hot depth).
        batch_size: batch size.
        training: shuffle every epoch and apply ``augment``.
        augment: augmentation options (``None``: the defaults; :data:`NO_AUGMENT`: none).
        seed: shuffle seed.
        soft: teacher probabilities ``(N, num_classes)``: the targets become
            ``[one_hot | soft]`` (see :mod:`fer_edge.train.distill`), mixed along by mixup.
        alternates: another framing of each face (uint8, like ``images``; see
            :mod:`fer_edge.train.recrop`); in training, each face is shown in it with
            probability ``alternate_share``, drawn anew every epoch, before augmentation.
        alternate_share: see ``alternates``.
        targets: per-face target distributions ``(N, num_classes)`` (FER+ vote shares) that
            replace the one-hot labels.
        sample: in training, replace each face's target by a one-hot label drawn from it,
            anew every epoch (FER+'s "probability" mode).
    """
    tf, _ = tf_and_keras()
    x = to_inputs(images, spec)
    if targets is not None:
        y = np.asarray(targets, dtype=np.float32)
    else:
        y = np.eye(num_classes, dtype=np.float32)[np.asarray(labels, dtype=np.int64)]
    if soft is not None:
        y = np.concatenate([y, np.asarray(soft, dtype=np.float32)], axis=1)
    mixing = training and alternates is not None and alternate_share > 0
    if mixing:
        pairs = (x, to_inputs(np.asarray(alternates), spec))
        ds = tf.data.Dataset.from_tensor_slices((pairs, y))
    else:
        ds = tf.data.Dataset.from_tensor_slices((x, y))
    if training:
        ds = ds.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size)
    if mixing:

        def pick(pair: Any, target: Any) -> tuple[Any, Any]:
            own, other = pair
            use = tf.random.uniform([tf.shape(own)[0], 1, 1, 1]) < alternate_share
            return tf.where(use, other, own), target

        ds = ds.map(pick, num_parallel_calls=tf.data.AUTOTUNE)
    if training and sample:

        def draw(image: Any, target: Any) -> tuple[Any, Any]:
            shares, rest = target[:, :num_classes], target[:, num_classes:]
            drawn = tf.random.categorical(tf.math.log(shares), 1)[:, 0]
            return image, tf.concat([tf.one_hot(drawn, num_classes), rest], axis=1)

        ds = ds.map(draw, num_parallel_calls=tf.data.AUTOTUNE)
    options = augment if augment is not None else AugmentOptions()
    if training and options != NO_AUGMENT:
        ds = ds.map(
            lambda a, b: _augment_batch(tf, a, b, options, spec),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
    return ds.prefetch(tf.data.AUTOTUNE)


def class_weights(labels: np.ndarray, num_classes: int, power: float = 0.5) -> dict[int, float]:
    """Return per-class loss weights ``(N / (K * n_k)) ** power``, normalised to mean 1.

    ``power=1`` is full inverse-frequency weighting; the square root (default) helps rare
    classes (FER2013's disgust is 1.5% of the data) without wrecking the common ones.
    """
    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=num_classes).astype(float)
    raw = np.where(counts > 0, (counts.sum() / (num_classes * np.maximum(counts, 1))) ** power, 0)
    raw = raw / raw[counts > 0].mean()
    return {k: float(v) for k, v in enumerate(raw)}
