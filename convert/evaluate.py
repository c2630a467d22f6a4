"""Judge exported models the way the device runs them: through the shared FaceClassifier."""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from fer_edge.classifier import ClassifierOptions, FaceClassifier
from fer_edge.data import Split


@dataclass(frozen=True)
class Evaluation:
    """A model's top-1 predictions on a split.

    Attributes:
        predictions: top-1 class index per image.
        accuracy: share of images whose top-1 is the label.
        input_dtype: the model's input tensor dtype, as the interpreter reports it.
    """

    predictions: np.ndarray
    accuracy: float
    input_dtype: str

    def agreement(self, reference: Evaluation) -> float:
        """Share of images on which this model's top-1 equals ``reference``'s."""
        return float(np.mean(self.predictions == reference.predictions))


def evaluate_tflite(
    path: str | os.PathLike[str], split: Split, options: ClassifierOptions | None = None
) -> Evaluation:
    """Run every image of ``split`` through an exported model and score it."""
    classifier = FaceClassifier(path, options)
    probs = classifier.probabilities_batch(split.images)
    predictions = np.argmax(probs, axis=1)
    accuracy = float(np.mean(predictions == split.labels)) if len(split) else float("nan")
    return Evaluation(predictions, accuracy, classifier.input_dtype.name)
