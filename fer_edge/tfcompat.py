"""Import TensorFlow with Keras 2 (tf_keras), the only Keras that tfmot supports."""

from __future__ import annotations

import os
from types import ModuleType
from typing import Any

from fer_edge.quiet import runtime_chatter


def tf_and_keras() -> tuple[ModuleType, ModuleType]:
    """Return ``(tensorflow, tf_keras)``, making sure TensorFlow uses legacy Keras.

    ``TF_USE_LEGACY_KERAS`` must be set before TensorFlow is first imported, so every training
    and conversion module gets TensorFlow through this function rather than importing it.
    """
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # TensorFlow's absl logs (oneDNN, CUDA stubs, "failed call to cuInit" on a machine
    # without a GPU) come before it reads TF_CPP_MIN_LOG_LEVEL: keep them off the terminal,
    # so an error after the import is the one line on stderr. Listing the GPUs once here
    # makes the device probe, and its log lines, happen inside the quiet block.
    with runtime_chatter():
        import tensorflow as tf
        import tf_keras as keras

        tf.config.list_physical_devices("GPU")

    return tf, keras


def copy_model(model: Any) -> Any:
    """Return an independent copy of a Keras model, weights included (new layer objects)."""
    _, keras = tf_and_keras()
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    return copy


def tfmot() -> ModuleType:
    """Return ``tensorflow_model_optimization``, imported after :func:`tf_and_keras`.

    tfmot reads the Keras choice when it is first imported, so it must come second.
    """
    tf_and_keras()
    import tensorflow_model_optimization

    return tensorflow_model_optimization
