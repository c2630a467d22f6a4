"""Import TensorFlow with Keras 2 (tf_keras), the only Keras that tfmot supports."""

from __future__ import annotations

import os
from types import ModuleType


def tf_and_keras() -> tuple[ModuleType, ModuleType]:
    """Return ``(tensorflow, tf_keras)``, making sure TensorFlow uses legacy Keras.

    ``TF_USE_LEGACY_KERAS`` must be set before TensorFlow is first imported, so every training
    and conversion module gets TensorFlow through this function rather than importing it.
    """
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf
    import tf_keras as keras

    return tf, keras


def tfmot() -> ModuleType:
    """Return ``tensorflow_model_optimization``, imported after :func:`tf_and_keras`.

    tfmot reads the Keras choice when it is first imported, so it must come second.
    """
    tf_and_keras()
    import tensorflow_model_optimization

    return tensorflow_model_optimization
