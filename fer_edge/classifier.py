"""One classifier for float and int8 TFLite models.

Quantised or not is read from the tensors' own dtypes and scale/zero-point, never from the file
name. Preprocessing comes from :mod:`fer_edge.preprocess`, labels and the input spec from the
model's metadata.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fer_edge.errors import FerEdgeError
from fer_edge.modelmeta import ModelMeta, read_meta
from fer_edge.preprocess import InputSpec, dequantize, preprocess
from fer_edge.runtime import Runtime, load_runtime


@dataclass(frozen=True)
class Prediction:
    """The classification of one face.

    Attributes:
        label: the top-1 class name.
        score: its probability.
        probs: float32 probabilities in the order of ``labels``.
        labels: the class names.
    """

    label: str
    score: float
    probs: np.ndarray
    labels: tuple[str, ...]

    def scores(self) -> dict[str, float]:
        """Return ``{class: probability}``."""
        return {c: float(p) for c, p in zip(self.labels, self.probs, strict=True)}


#: Test-time augmentation choices: ``none`` (one invoke per face) or ``flip`` (the face and its
#: mirror image, probabilities averaged: two invokes per face).
TTA_CHOICES: tuple[str, ...] = ("none", "flip")


def check_tta(name: str) -> str:
    """Return ``name`` if it is a TTA choice, else raise the one ``--tta`` error."""
    if name not in TTA_CHOICES:
        raise FerEdgeError(f"--tta: unknown mode {name!r}; choose from {', '.join(TTA_CHOICES)}")
    return name


@dataclass(frozen=True)
class ClassifierOptions:
    """How to run a classifier.

    Attributes:
        threads: interpreter CPU threads (``None``: runtime default).
        runtime: ``auto``, ``litert``, ``tflite_runtime`` or ``tf``.
        delegate: ``"edgetpu"`` or ``None``.
        tta: test-time augmentation, one of :data:`TTA_CHOICES`; ``None`` takes the model's
            own recommendation (metadata ``extra["tta"]``, chosen by measurement when the
            model was bundled), else ``none``.
    """

    threads: int | None = None
    runtime: str = "auto"
    delegate: str | None = None
    tta: str | None = None


class FaceClassifier:
    """Classify face crops with a self-describing ``.tflite`` model.

    The interpreter and the tensor details are set up once here; :meth:`classify` only
    preprocesses, invokes and dequantises.
    """

    def __init__(
        self,
        model_path: str | os.PathLike[str],
        options: ClassifierOptions | None = None,
        runtime: Runtime | None = None,
    ) -> None:
        options = options or ClassifierOptions()
        self.path = Path(model_path)
        if self.path.suffix.lower() != ".tflite":
            raise FerEdgeError(f"--model: {self.path} is not a .tflite file")
        self.meta: ModelMeta = read_meta(self.path)
        self.runtime = runtime or load_runtime(options.runtime)
        self._interp = self.runtime.interpreter(
            model_path=str(self.path), threads=options.threads, delegate=options.delegate
        )
        inputs = self._interp.get_input_details()
        outputs = self._interp.get_output_details()
        if len(inputs) != 1 or len(outputs) != 1:
            raise FerEdgeError(f"{self.path}: expected one input and one output tensor")
        spec = self.meta.input
        expected = (1, spec.height, spec.width, spec.channels)
        shape = tuple(int(v) for v in inputs[0]["shape"])  # plain ints print without np.int32
        if shape != expected:
            raise FerEdgeError(
                f"{self.path}: input shape {shape} does not match its metadata {expected}"
            )
        if int(np.prod(outputs[0]["shape"])) != len(self.meta.labels):
            raise FerEdgeError(
                f"{self.path}: {int(np.prod(outputs[0]['shape']))} outputs but "
                f"{len(self.meta.labels)} labels"
            )
        self._in_index = inputs[0]["index"]
        self._in_dtype = np.dtype(inputs[0]["dtype"])
        self._in_quant = tuple(inputs[0]["quantization"])
        self._out_index = outputs[0]["index"]
        self._out_quant = tuple(outputs[0]["quantization"])
        self.tta = check_tta(options.tta or str(self.meta.extra.get("tta", "none")))

    @property
    def labels(self) -> tuple[str, ...]:
        """Class names in output order."""
        return self.meta.labels

    @property
    def input_spec(self) -> InputSpec:
        """The model's input spec."""
        return self.meta.input

    @property
    def input_dtype(self) -> np.dtype:
        """The input tensor dtype (float32 or an integer type)."""
        return self._in_dtype

    @property
    def is_quantized(self) -> bool:
        """True for models with an integer input tensor."""
        return bool(np.issubdtype(self._in_dtype, np.integer))

    def prepare(self, face: np.ndarray) -> np.ndarray:
        """Preprocess (and quantise) one face crop into this model's input tensor."""
        return preprocess(face, self.input_spec, self._in_dtype, self._in_quant)

    def invoke(self, tensor: np.ndarray) -> np.ndarray:
        """Run a prepared input tensor and return dequantised float32 probabilities."""
        self._interp.set_tensor(self._in_index, tensor)
        self._interp.invoke()
        raw = self._interp.get_tensor(self._out_index)[0]
        return dequantize(raw, *self._out_quant)

    def probabilities(self, face: np.ndarray) -> np.ndarray:
        """Return class probabilities for one face crop (any size, gray or BGR).

        With ``tta="flip"`` the mirrored face is classified too and the two averaged; the
        mirror is taken on the prepared tensor (a flip commutes with resizing and
        quantisation), so it costs one more invoke and no second preprocessing.
        """
        tensor = self.prepare(face)
        probs = self.invoke(tensor)
        if self.tta == "flip":
            mirrored = np.ascontiguousarray(tensor[:, :, ::-1, :])
            probs = (probs + self.invoke(mirrored)) / 2.0
        return probs

    def classify(self, face: np.ndarray) -> Prediction:
        """Classify one face crop (any size, gray or BGR)."""
        probs = self.probabilities(face)
        top = int(np.argmax(probs))
        return Prediction(self.labels[top], float(probs[top]), probs, self.labels)

    def probabilities_batch(self, faces: np.ndarray) -> np.ndarray:
        """Return an ``(N, classes)`` probability array for a stack of gray faces."""
        out = np.zeros((len(faces), len(self.labels)), np.float32)
        for i, face in enumerate(faces):
            out[i] = self.probabilities(face)
        return out
