"""``--precision``: float32, or mixed precision on the layers where it measures faster.

Mixed precision keeps every variable in float32 and runs chosen layers in a 16-bit type:
``float16`` on GPUs (with loss scaling), ``bfloat16`` on CPUs with AVX512-BF16 or AMX.

On such a CPU (an AMD EPYC with avx512_bf16; op times from a profile of one ``edge`` training
step on one thread) bfloat16 halves the time of the convolutions (168 -> 84 ms per batch of 64)
and cuts batch-norm's (67 -> 46 ms), but oneDNN's bfloat16 depthwise backprop is 5x slower than
its float32 one (17 -> 97 ms). So on CPUs every layer but ``DepthwiseConv2D`` computes in
bfloat16; GPUs use float16 on every layer, the TensorFlow guide's recipe. The output layer
(the softmax) always computes in float32.

The layers keep their names and classes; only their dtype policy changes, so checkpoints load
as before, and :func:`to_float32` turns a mixed model back into the float32 model that
``model.keras``, evaluation and TFLite export use.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fer_edge.errors import FerEdgeError
from fer_edge.tfcompat import tf_and_keras

#: The ``--precision`` choices.
PRECISIONS: tuple[str, ...] = ("float32", "mixed")

#: CPU flags (``/proc/cpuinfo``) with native bfloat16 arithmetic.
BF16_CPU_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})

#: Layer classes kept float32 under ``mixed_bfloat16`` on CPUs (slower in bfloat16).
CPU_FLOAT32_LAYERS: tuple[str, ...] = ("DepthwiseConv2D",)


@dataclass(frozen=True)
class PrecisionPlan:
    """Which Keras dtype policy each layer gets.

    Attributes:
        precision: the ``--precision`` choice (``float32`` or ``mixed``).
        policy: the mixed policy (``mixed_float16``, ``mixed_bfloat16``) or ``float32``.
        float32_layers: layer classes that stay float32 under ``policy`` (``DepthwiseConv2D``
            on CPUs), besides the output layer.
    """

    precision: str = "float32"
    policy: str = "float32"
    float32_layers: tuple[str, ...] = ()

    @property
    def loss_scaling(self) -> bool:
        """True if the optimizer needs loss scaling (float16 gradients underflow)."""
        return self.policy == "mixed_float16"

    def policy_for(self, layer: Any, outputs: frozenset[str] = frozenset()) -> str:
        """Return the dtype policy name for ``layer`` (``outputs``: names of output layers)."""
        if self.policy == "float32" or layer.name in outputs:
            return "float32"
        return "float32" if type(layer).__name__ in self.float32_layers else self.policy

    def describe(self) -> str:
        """Return one line for the training log."""
        if self.policy == "float32":
            return "float32"
        kept = "".join(f", {name}" for name in self.float32_layers)
        return f"{self.policy} (float32 output{kept})"


def cpu_flags(cpuinfo: str | None = None) -> frozenset[str]:
    """Return the CPU feature flags from ``/proc/cpuinfo`` (empty where there is none)."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
        except OSError:
            return frozenset()
    for line in cpuinfo.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() in ("flags", "Features"):
            return frozenset(value.split())
    return frozenset()


def plan_precision(
    precision: str, gpu: bool | None = None, flags: frozenset[str] | None = None
) -> PrecisionPlan:
    """Choose the dtype policies for ``--precision``.

    Args:
        precision: ``float32`` or ``mixed``.
        gpu: train on GPUs (``None``: whether TensorFlow sees one).
        flags: CPU flags (``None``: this machine's).

    Raises:
        FerEdgeError: an unknown choice, or ``mixed`` on a CPU without native bfloat16, where
            TensorFlow would emulate it and train slower than in float32.
    """
    if precision not in PRECISIONS:
        raise FerEdgeError(f"--precision: choose from {', '.join(PRECISIONS)}, not {precision!r}")
    if precision == "float32":
        return PrecisionPlan()
    if gpu is None:
        tf, _ = tf_and_keras()
        gpu = bool(tf.config.list_physical_devices("GPU"))
    if gpu:
        return PrecisionPlan(precision, "mixed_float16")
    if not (cpu_flags() if flags is None else flags) & BF16_CPU_FLAGS:
        raise FerEdgeError(
            "--precision mixed: this CPU has no native bfloat16 (avx512_bf16 or amx_bf16) and "
            "no GPU is visible; training would be slower than --precision float32"
        )
    return PrecisionPlan(precision, "mixed_bfloat16", CPU_FLOAT32_LAYERS)


def _output_layers(model: Any) -> frozenset[str]:
    return frozenset(model.output_names)


def _with_policies(model: Any, policy_for: Any) -> Any:
    _, keras = tf_and_keras()

    def clone(layer: Any) -> Any:
        config = layer.get_config()
        if not isinstance(layer, keras.layers.InputLayer):
            config["dtype"] = policy_for(layer)
        return layer.__class__.from_config(config)

    copy = keras.models.clone_model(model, clone_function=clone)
    copy.set_weights(model.get_weights())
    return copy


def apply_precision(model: Any, plan: PrecisionPlan) -> Any:
    """Return ``model`` with the plan's dtype policies (the model itself for float32).

    Layer names, classes and weights are kept. Call it where the model is built (inside the
    strategy scope): the copy's variables are created here.
    """
    if plan.policy == "float32":
        return model
    outputs = _output_layers(model)
    return _with_policies(model, lambda layer: plan.policy_for(layer, outputs))


def is_float32(model: Any) -> bool:
    """True if every layer of ``model`` computes in float32."""
    return all(layer.dtype_policy.name == "float32" for layer in model.layers)


def to_float32(model: Any) -> Any:
    """Return ``model`` with every layer in float32 (the model itself if it already is).

    A mixed model cannot become a TFLite model (the converter has no bfloat16 Conv2D) and
    tfmot cannot quantise it, so everything after training uses this float32 twin.
    """
    if is_float32(model):
        return model
    return _with_policies(model, lambda layer: "float32")


def wrap_optimizer(optimizer: Any, plan: PrecisionPlan) -> Any:
    """Add dynamic loss scaling to ``optimizer`` when the plan computes in float16."""
    if not plan.loss_scaling:
        return optimizer
    _, keras = tf_and_keras()
    return keras.mixed_precision.LossScaleOptimizer(optimizer)
