"""Small real models for tests, the CI benchmark and the emulated-Pi check.

One place builds and briefly trains them, so every caller exercises the same real Keras ->
TFLite path as a full training run, in seconds.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from fer_edge.labels import FER2013_CLASSES
from fer_edge.modelmeta import ModelMeta, add_to_zip_model
from fer_edge.preprocess import InputSpec, normalize
from fer_edge.tfcompat import tf_and_keras


def build_tiny_cnn(
    widths: Sequence[int] = (8,), num_classes: int = 7, padding: str = "valid", seed: int = 0
) -> Any:
    """Return a plain CNN: one stride-2 3x3 ReLU conv per width, global pooling, softmax."""
    _, keras = tf_and_keras()
    keras.utils.set_random_seed(seed)
    face = keras.Input((48, 48, 1))
    x = face
    for width in widths:
        x = keras.layers.Conv2D(width, 3, strides=2, padding=padding, activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax")(x)
    return keras.Model(face, outputs)


def fit_tiny(
    model: Any,
    images: np.ndarray,
    labels: np.ndarray,
    epochs: int,
    learning_rate: float = 3e-3,
    batch_size: int = 32,
    sharpen: float = 1.0,
) -> Any:
    """Fit ``model`` on uint8 faces and integer labels; return it.

    ``sharpen`` multiplies the last layer's weights (a softmax temperature of ``1 / sharpen``,
    top labels unchanged): a briefly trained model otherwise leaves many faces within one
    int8 step of a tie, and int8-vs-float agreement would measure rounding luck.
    """
    _, keras = tf_and_keras()
    model.compile(keras.optimizers.Adam(learning_rate), "sparse_categorical_crossentropy")
    model.fit(normalize(images), labels, batch_size=batch_size, epochs=epochs, verbose=0)
    if sharpen != 1.0:
        head = model.layers[-1]
        head.set_weights([w * sharpen for w in head.get_weights()])
    return model


def export_pair(
    model: Any,
    out: str | os.PathLike[str],
    stem: str,
    representative: np.ndarray,
    meta: ModelMeta,
) -> dict[str, Path]:
    """Export ``model`` as ``STEM_float.tflite`` and full-int8 ``STEM_int8.tflite``.

    Args:
        model: a Keras model.
        out: the folder.
        stem: the file-name prefix.
        representative: uint8 faces to calibrate the int8 export on.
        meta: the metadata embedded in both files.
    """
    from fer_edge.convert.export import to_tflite, write_tflite

    folder = Path(out)
    calibration = normalize(representative)
    return {
        "float": write_tflite(folder / f"{stem}_float.tflite", to_tflite(model), meta),
        "int8": write_tflite(
            folder / f"{stem}_int8.tflite", to_tflite(model, "int8", calibration), meta
        ),
    }


def fit_registry_model(
    name: str,
    images: np.ndarray,
    labels: np.ndarray,
    out: str | os.PathLike[str],
    epochs: int,
    augment: Any = None,
    **build_options: Any,
) -> Path:
    """Fit a registry model briefly and save it as ``fer-edge train`` does (metadata inside).

    Without ``augment`` nothing is augmented: flips and rotations change a grating's
    orientation, which is its class.
    """
    from fer_edge.train.inputs import NO_AUGMENT, make_dataset
    from fer_edge.train.models import build_model

    _, keras = tf_and_keras()
    keras.utils.set_random_seed(0)
    spec = InputSpec()
    model = build_model(name, **build_options)
    for layer in model.layers:
        # Fast-moving BN statistics: a hundred steps is all a test can afford.
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = 0.8
    model.compile(keras.optimizers.Adam(3e-3), "categorical_crossentropy", metrics=["accuracy"])
    batches = make_dataset(images, labels, spec, 7, 16, True, augment or NO_AUGMENT)
    model.fit(batches, epochs=epochs, verbose=0)
    path = Path(out) / "model.keras"
    model.save(path)
    add_to_zip_model(path, ModelMeta(FER2013_CLASSES, spec, name=f"tiny-{name}"))
    return path
