"""Read what a converted TFLite model really is: tensor dtypes and the weight kernels."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fer_edge.runtime import Runtime, load_runtime

#: Ops whose second input is a weight kernel.
KERNEL_OPS: tuple[str, ...] = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")
#: Tensor dtypes allowed in a full-integer model: int8 activations and weights, int32 biases
#: and shape operands.
INTEGER_DTYPES: frozenset[str] = frozenset({"int8", "int32"})


@dataclass(frozen=True)
class Kernel:
    """The stored weights of one convolution or fully-connected op.

    Attributes:
        op: the TFLite op (one of :data:`KERNEL_OPS`).
        name: the weight tensor's name.
        values: the stored values (float32, float16 or int8, as in the file).
    """

    op: str
    name: str
    values: np.ndarray


@dataclass(frozen=True)
class TfliteInfo:
    """The facts about a TFLite model that conversion checks and reports.

    Attributes:
        input_dtype: dtype name of the single input tensor.
        output_dtype: dtype name of the single output tensor.
        tensors: ``(name, dtype name)`` of every tensor.
        kernels: the weight kernels of every conv and fully-connected op.
    """

    input_dtype: str
    output_dtype: str
    tensors: tuple[tuple[str, str], ...]
    kernels: tuple[Kernel, ...]

    def non_integer_tensors(self) -> list[str]:
        """Return ``name (dtype)`` of every tensor a full-integer model must not have."""
        return [f"{name} ({dtype})" for name, dtype in self.tensors if dtype not in INTEGER_DTYPES]

    @property
    def is_full_integer(self) -> bool:
        """True if input, output and every tensor are int8 (int32 for biases and shapes)."""
        return (
            self.input_dtype == "int8"
            and self.output_dtype == "int8"
            and not self.non_integer_tensors()
        )


def inspect_tflite(model: bytes, runtime: Runtime | None = None) -> TfliteInfo:
    """Load ``model`` in a TFLite interpreter and read its tensors and kernels.

    Weights stored compressed (float16, or int8 in dynamic-range models) that reach their op
    through a ``DEQUANTIZE`` are read as stored.
    """
    interp = (runtime or load_runtime()).interpreter(model_content=model)
    details = {d["index"]: d for d in interp.get_tensor_details()}
    ops = interp._get_ops_details()  # the one interpreter API that lists op inputs
    producer = {out: op for op in ops for out in op["outputs"]}
    kernels = []
    for op in ops:
        if op["op_name"] not in KERNEL_OPS or len(op["inputs"]) < 2:
            continue
        index = int(op["inputs"][1])
        source = producer.get(index)
        if source is not None and source["op_name"] == "DEQUANTIZE":
            index = int(source["inputs"][0])
        kernels.append(
            Kernel(op["op_name"], details[index]["name"], np.array(interp.get_tensor(index)))
        )
    return TfliteInfo(
        input_dtype=np.dtype(interp.get_input_details()[0]["dtype"]).name,
        output_dtype=np.dtype(interp.get_output_details()[0]["dtype"]).name,
        tensors=tuple(
            (d["name"] or f"#{i}", np.dtype(d["dtype"]).name) for i, d in sorted(details.items())
        ),
        kernels=tuple(kernels),
    )
