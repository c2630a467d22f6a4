"""Int8 quantisation-aware-training annotation shared by training tests and conversion.

tfmot's default 8-bit registry knows Conv/Depthwise/Dense/BN/ReLU/Add/pooling, but not every
layer a registry model uses (EfficientNet's squeeze-and-excite ``Multiply``). Those layers get
:class:`OutputQuantizeConfig`: no weights, 8-bit output, which is how TFLite runs them anyway.
"""

from __future__ import annotations

from typing import Any

from fer_edge.tfcompat import tf_and_keras, tfmot


def output_quantize_config_class() -> type:
    """Return the QuantizeConfig class that quantises only a layer's output (8 bit)."""
    qk = tfmot().quantization.keras
    quantizers = qk.quantizers

    class OutputQuantizeConfig(qk.QuantizeConfig):  # type: ignore[name-defined]
        """Quantise a weightless layer's output with a moving-average 8-bit quantizer."""

        def get_weights_and_quantizers(self, layer: Any) -> list:
            return []

        def get_activations_and_quantizers(self, layer: Any) -> list:
            return []

        def set_quantize_weights(self, layer: Any, quantize_weights: list) -> None:
            pass

        def set_quantize_activations(self, layer: Any, quantize_activations: list) -> None:
            pass

        def get_output_quantizers(self, layer: Any) -> list:
            return [
                quantizers.MovingAverageQuantizer(
                    num_bits=8, per_axis=False, symmetric=False, narrow_range=False
                )
            ]

        def get_config(self) -> dict:
            return {}

    return OutputQuantizeConfig


def _needs_output_config(layer: Any) -> bool:
    _, keras = tf_and_keras()
    if isinstance(layer, keras.layers.Multiply):
        return True
    activation = getattr(layer, "activation", None)
    return isinstance(layer, keras.layers.Activation) and getattr(activation, "__name__", "") in {
        "swish",
        "silu",
    }


def annotate(model: Any) -> Any:
    """Return ``model`` annotated for quantisation (every layer; custom configs where needed)."""
    qk = tfmot().quantization.keras
    config_class = output_quantize_config_class()

    def clone(layer: Any) -> Any:
        if _needs_output_config(layer):
            return qk.quantize_annotate_layer(layer, config_class())
        return layer

    _, keras = tf_and_keras()
    with qk.quantize_scope({"OutputQuantizeConfig": config_class}):
        cloned = keras.models.clone_model(model, clone_function=clone)
        cloned.set_weights(model.get_weights())
        return qk.quantize_annotate_model(cloned)


def quantize_scope() -> Any:
    """Return the scope under which annotated models are applied, saved and loaded."""
    qk = tfmot().quantization.keras
    return qk.quantize_scope({"OutputQuantizeConfig": output_quantize_config_class()})


def qat_model(model: Any, scheme: Any = None) -> Any:
    """Return the quantisation-aware version of ``model`` (``scheme``: tfmot scheme or default).

    Pass ``tfmot.experimental.combine.Default8BitPrunePreserveQuantizeScheme()`` for a pruned
    model, so its sparsity survives quantisation.
    """
    qk = tfmot().quantization.keras
    annotated = annotate(model)
    with quantize_scope():
        return (
            qk.quantize_apply(annotated, scheme)
            if scheme is not None
            else qk.quantize_apply(annotated)
        )
