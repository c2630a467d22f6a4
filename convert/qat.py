"""Int8 quantisation-aware training: the QAT model, and clear errors for layers it cannot handle.

tfmot's default 8-bit registry knows Conv/Depthwise/Dense/BN/ReLU/Add/pooling, but not every
layer a registry model uses (EfficientNet's squeeze-and-excite ``Multiply``). Those layers get
:class:`OutputQuantizeConfig`: no weights, 8-bit output, which is how TFLite runs them anyway.
:func:`qat_model` is that annotation applied (the training tests use it too);
:func:`quantisation_aware` is what ``fer-edge convert`` calls, with tfmot's refusals turned into
one-line errors, and :func:`check_quantisable` finds the layers before any slow work.
"""

from __future__ import annotations

import re
from typing import Any

from fer_edge.errors import FerEdgeError
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


def _inbound(layer: Any) -> list[Any]:
    if not layer.inbound_nodes:
        return []
    inbound = layer.inbound_nodes[0].inbound_layers
    return list(inbound) if isinstance(inbound, list | tuple) else [inbound]


def _bn_problem(keras: Any, layer: Any) -> str:
    """Why a BatchNormalization cannot fold into the convolution before it ("" if it can)."""
    before = _inbound(layer)
    conv = keras.layers.Conv2D | keras.layers.DepthwiseConv2D
    if len(before) == 1 and isinstance(before[0], conv):
        if len(before[0].outbound_nodes) == 1:
            return ""
        return (
            f"follows '{before[0].name}', whose output also feeds other layers, so it cannot "
            "fold into that convolution for int8 and would stay a float op"
        )
    after = ", ".join(f"'{b.name}' ({type(b).__name__})" for b in before) or "the input"
    return (
        f"follows {after}, not a convolution: only a BatchNormalization right after its "
        "Conv2D/DepthwiseConv2D folds into it for int8; anywhere else it stays a float op"
    )


def unquantisable_layers(model: Any) -> list[str]:
    """Return one ``'name' (Class): why`` line per layer that int8 QAT cannot quantise.

    Checks, in the order a user would fix them: models nested in the model, preprocessing
    layers (scaling, augmentation), BatchNormalization that does not directly follow a
    convolution (it cannot fold, so it would stay a float op), and layers tfmot's 8-bit
    registry does not know and :func:`annotate` gives no config.
    """
    _, keras = tf_and_keras()
    problems = []
    for layer in model.layers:
        kind = type(layer).__name__
        where = f"layer '{layer.name}' ({kind})"
        if isinstance(layer, keras.Model):
            problems.append(
                f"{where} is a model inside the model: tfmot cannot quantise nested models"
            )
        elif ".layers.preprocessing." in type(layer).__module__:
            problems.append(
                f"{where} is a preprocessing layer, which int8 QAT cannot quantise: input "
                "scaling belongs in the input spec (fer_edge.preprocess) and augmentation in "
                "the training pipeline"
            )
        elif isinstance(layer, keras.layers.BatchNormalization):
            problem = _bn_problem(keras, layer)
            if problem:
                problems.append(f"{where} {problem}")
    if problems:
        return problems
    scheme = tfmot().quantization.keras.default_8bit.Default8BitQuantizeScheme()
    registry = scheme.get_quantize_registry()
    for wrapper in annotate(model).layers:
        inner = getattr(wrapper, "layer", None)
        # BatchNormalization is folded by tfmot's transforms, not by the registry.
        if inner is None or isinstance(inner, keras.layers.BatchNormalization):
            continue
        if getattr(wrapper, "quantize_config", None) is None and not registry.supports(inner):
            problems.append(
                f"layer '{inner.name}' ({type(inner).__name__}) has no int8 quantisation "
                "support in tfmot (Default8BitQuantizeRegistry)"
            )
    return problems


def check_quantisable(model: Any, model_path: object) -> None:
    """Raise a :class:`FerEdgeError` naming the first layer int8 QAT cannot quantise, and why.

    Run it before any slow work: QAT is the last step of a conversion.
    """
    problems = unquantisable_layers(model)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise FerEdgeError(f"{model_path}: cannot quantise for --int8: {problems[0]}{more}")


def quantisation_aware(model: Any, preserve_sparsity: bool, model_path: object = "") -> Any:
    """Return the int8 quantisation-aware version of ``model``.

    Args:
        model: a float Keras model.
        preserve_sparsity: use tfmot's pruning-preserving scheme, so zero weights of a pruned
            model stay zero through QAT and conversion.
        model_path: named in error messages.

    Raises:
        FerEdgeError: tfmot refuses a layer (named in the message).
    """
    scheme = None
    if preserve_sparsity:
        scheme = tfmot().experimental.combine.Default8BitPrunePreserveQuantizeScheme()
    try:
        return qat_model(model, scheme)
    except RuntimeError as exc:
        found = re.search(r"Layer (\S+?):<class '([^']+)'> is not supported", str(exc))
        if found is None:
            raise
        kind = found.group(2).rsplit(".", 1)[-1]
        raise FerEdgeError(
            f"{model_path}: cannot quantise for --int8: layer '{found.group(1)}' ({kind}) has "
            "no int8 quantisation support in tfmot"
        ) from None
