"""What a conversion produced: one record per exported model, and the run's report."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class ExportedModel:
    """One exported ``.tflite`` and what was measured on it.

    Attributes:
        path: the model file (metadata embedded).
        card: its model card (``path`` with ``.json``).
        method: ``float``, ``ptq-dynamic``, ``ptq-float16``, ``ptq-int8``, ``qat-int8``,
            ``pruned-float`` or ``pqat-int8``.
        float_model: file name of the float32 model of the same network, in the same folder.
        size_bytes: file size.
        gzip_bytes: gzip-compressed file size (zeros from pruning compress away).
        sparsity: share of zero weights in conv and fully-connected kernels.
        sparsity_all_kernels: the same with depthwise kernels included.
        target_sparsity: the ``--prune`` target, or ``None``.
        val_accuracy: top-1 accuracy on ``val``, measured through the TFLite interpreter.
        float_val_accuracy: the same for the float32 model.
        agreement: share of ``val`` faces with the same top-1 as the float32 model.
        input_dtype: the input tensor dtype (``int8`` or ``float32``).
        output_dtype: the output tensor dtype.
        fine_tune: fine-tuning settings, or ``None`` for post-training methods.
        seconds: wall time spent making this model (fine-tuning included).
    """

    path: Path
    card: Path
    method: str
    float_model: str
    size_bytes: int
    gzip_bytes: int
    sparsity: float
    sparsity_all_kernels: float
    target_sparsity: float | None
    val_accuracy: float
    float_val_accuracy: float
    agreement: float
    input_dtype: str
    output_dtype: str
    fine_tune: dict[str, Any] | None
    seconds: float


@dataclass(frozen=True)
class EdgeTpuResult:
    """The outcome of compiling one int8 model with ``edgetpu_compiler``.

    Attributes:
        source: the int8 model that was compiled.
        model: the compiled ``*_edgetpu.tflite``, or ``None`` if compilation failed.
        log: the kept compiler log, or ``None`` if the compiler never ran.
        ok: True if the compiled model was written.
        message: one line for the user.
    """

    source: Path
    model: Path | None
    log: Path | None
    ok: bool
    message: str


@dataclass
class ConvertReport:
    """Everything one ``fer-edge convert`` run produced.

    Attributes:
        source: the Keras model converted.
        out: the output folder.
        models: the exported models, float32 first.
        val_images: number of ``val`` images every model was judged on.
        val_carved: True if ``val`` was carved out of ``train``.
        edgetpu: compilation results (empty without ``--edgetpu``).
        edgetpu_help: how to compile elsewhere, when the compiler is missing.
        seconds: wall time of the whole run.
    """

    source: Path
    out: Path
    models: list[ExportedModel] = field(default_factory=list)
    val_images: int = 0
    val_carved: bool = False
    edgetpu: list[EdgeTpuResult] = field(default_factory=list)
    edgetpu_help: str = ""
    seconds: float = 0.0

    def by_method(self, method: str) -> ExportedModel:
        """Return the exported model made by ``method`` (e.g. ``qat-int8``)."""
        for model in self.models:
            if model.method == method:
                return model
        raise KeyError(method)
