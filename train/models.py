"""The model registry: every family fer-edge can train, by name.

Every builder takes ``input_shape`` and ``num_classes`` and returns a ``tf_keras`` functional
model that ends in a softmax and survives int8 quantisation-aware training: BatchNormalization
only directly after a convolution (so it folds), no standalone BN after Dense layers, and no
Rescaling or augmentation layers inside (scaling lives in :mod:`fer_edge.preprocess`,
augmentation in the tf.data pipeline).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fer_edge.errors import FerEdgeError
from fer_edge.tfcompat import tf_and_keras

Builder = Callable[..., Any]


@dataclass(frozen=True)
class ModelFamily:
    """One entry of the registry.

    Attributes:
        name: the ``--model`` name.
        builder: ``builder(input_shape, num_classes, **options) -> keras.Model``.
        summary: one line for ``--list-models``.
        channels: input channels the family expects (3 for ImageNet backbones).
        learning_rate: default peak Adam learning rate. Networks with BatchNorm throughout take
            a high one; at 2e-3 the mlp and the dense-headed seed CNNs collapse onto the
            majority class of FER2013 (happy), so they default lower.
    """

    name: str
    builder: Builder
    summary: str
    channels: int = 1
    learning_rate: float = 1e-3


#: BatchNorm moving-average momentum. Keras' 0.99 needs thousands of steps before the
#: inference statistics catch up; 0.9 settles in tens, which small datasets need.
BN_MOMENTUM = 0.9


def _bn(name: str) -> Any:
    _, keras = tf_and_keras()
    return keras.layers.BatchNormalization(momentum=BN_MOMENTUM, name=name)


def _conv_bn_relu(x: Any, filters: int, kernel: int = 3, strides: int = 1, name: str = "") -> Any:
    _, keras = tf_and_keras()
    x = keras.layers.Conv2D(
        filters, kernel, strides=strides, padding="same", use_bias=False, name=f"{name}_conv"
    )(x)
    x = _bn(f"{name}_bn")(x)
    return keras.layers.ReLU(name=f"{name}_relu")(x)


def _sep_bn(x: Any, filters: int, strides: int = 1, name: str = "", relu: bool = True) -> Any:
    """Depthwise 3x3 + pointwise 1x1, each followed by BN (folds); ReLU between and after.

    Written as two layers rather than ``SeparableConv2D`` so each BN sits directly after the
    convolution it folds into. ``relu=False`` leaves the output linear (before a residual add).
    """
    _, keras = tf_and_keras()
    x = keras.layers.DepthwiseConv2D(
        3, strides=strides, padding="same", use_bias=False, name=f"{name}_dw"
    )(x)
    x = _bn(f"{name}_dw_bn")(x)
    x = keras.layers.ReLU(name=f"{name}_dw_relu")(x)
    x = keras.layers.Conv2D(filters, 1, use_bias=False, name=f"{name}_pw")(x)
    x = _bn(f"{name}_pw_bn")(x)
    return keras.layers.ReLU(name=f"{name}_pw_relu")(x) if relu else x


def build_mlp(input_shape: tuple[int, ...], num_classes: int, dropout: float = 0.3) -> Any:
    """The multi-layer-perceptron baseline: 2304 pixels -> 512 -> 256 -> classes."""
    _, keras = tf_and_keras()
    inputs = keras.Input(input_shape, name="face")
    x = keras.layers.Flatten()(inputs)
    for units in (512, 256):
        x = keras.layers.Dense(units, activation="relu")(x)
        x = keras.layers.Dropout(dropout)(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax", name="probs")(x)
    return keras.Model(inputs, outputs, name="mlp")


def build_cnn_basic(input_shape: tuple[int, ...], num_classes: int) -> Any:
    """The 4-class notebook CNN: Conv 64 (7x7), 2x Conv 128, Conv 256, Dense 64, dropout 0.25."""
    _, keras = tf_and_keras()
    layers = keras.layers
    inputs = keras.Input(input_shape, name="face")
    x = layers.Conv2D(64, 7, padding="same", activation="relu")(inputs)
    x = layers.MaxPooling2D()(x)
    x = layers.Conv2D(128, 3, padding="same", activation="relu")(x)
    x = layers.Conv2D(128, 3, padding="same", activation="relu")(x)
    x = layers.MaxPooling2D()(x)
    x = layers.Conv2D(256, 3, padding="same", activation="relu")(x)
    x = layers.MaxPooling2D()(x)
    x = layers.Flatten()(x)
    x = layers.Dense(64, activation="relu")(x)
    x = layers.Dropout(0.25)(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="probs")(x)
    return keras.Model(inputs, outputs, name="cnn-basic")


def build_cnn_4stage(input_shape: tuple[int, ...], num_classes: int) -> Any:
    """Four conv stages (64, 64, 128, 128 kernels), each conv-BN-ReLU + pool, two Dense 256.

    Dropout is light (0.1 per stage, 0.3 per dense layer): with 0.25 and 0.5 it stayed on the
    majority class of FER2013 for the first 8 epochs.
    """
    _, keras = tf_and_keras()
    layers = keras.layers
    inputs = keras.Input(input_shape, name="face")
    x = inputs
    for i, filters in enumerate((64, 64, 128, 128)):
        x = _conv_bn_relu(x, filters, name=f"stage{i + 1}")
        x = layers.MaxPooling2D()(x)
        x = layers.Dropout(0.1)(x)
    x = layers.Flatten()(x)
    for _ in range(2):
        x = layers.Dense(256, activation="relu")(x)
        x = layers.Dropout(0.3)(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="probs")(x)
    return keras.Model(inputs, outputs, name="cnn-4stage")


def build_cnn_deep(input_shape: tuple[int, ...], num_classes: int) -> Any:
    """The "deep CNN" (65.5% in its write-up, about 4.5 M parameters).

    Conv 64 (3x3), Conv 128 (5x5), Conv 512 (3x3), Conv 512 (3x3), each with BN, ReLU, 2x2 max
    pool and dropout 0.25; then Dense 256 and Dense 512 with dropout. Change for int8: the
    original put BatchNormalization after the Dense layers; a BN there cannot fold into
    anything, so the dense layers here have none.
    """
    _, keras = tf_and_keras()
    layers = keras.layers
    inputs = keras.Input(input_shape, name="face")
    x = inputs
    for i, (filters, kernel) in enumerate(((64, 3), (128, 5), (512, 3), (512, 3))):
        x = _conv_bn_relu(x, filters, kernel, name=f"block{i + 1}")
        x = layers.MaxPooling2D()(x)
        x = layers.Dropout(0.25)(x)
    x = layers.Flatten()(x)
    for units in (256, 512):
        x = layers.Dense(units, activation="relu")(x)
        x = layers.Dropout(0.25)(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="probs")(x)
    return keras.Model(inputs, outputs, name="cnn-deep")


def _residual_block(x: Any, filters: int, strides: int, name: str) -> Any:
    _, keras = tf_and_keras()
    layers = keras.layers
    shortcut = x
    y = _conv_bn_relu(x, filters, 3, strides, name=f"{name}_a")
    y = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_b_conv")(y)
    y = _bn(f"{name}_b_bn")(y)
    if strides != 1 or x.shape[-1] != filters:
        # Projection shortcut where the shape changes; identity otherwise.
        shortcut = layers.Conv2D(filters, 1, strides=strides, use_bias=False, name=f"{name}_proj")(
            x
        )
        shortcut = _bn(f"{name}_proj_bn")(shortcut)
    y = layers.Add(name=f"{name}_add")([y, shortcut])
    return layers.ReLU(name=f"{name}_out")(y)


def build_resnet(
    input_shape: tuple[int, ...],
    num_classes: int,
    widths: tuple[int, ...] = (32, 64, 128, 256),
    blocks: tuple[int, ...] = (2, 2, 2, 2),
    dropout: float = 0.3,
) -> Any:
    """A ResNet-18-style network for 48x48 faces.

    A 3x3 stem (no early downsampling: the faces are small), then stages of basic residual
    blocks with identity shortcuts, and projection shortcuts where a stage halves the
    resolution and widens; global average pooling head.
    """
    _, keras = tf_and_keras()
    layers = keras.layers
    inputs = keras.Input(input_shape, name="face")
    x = _conv_bn_relu(inputs, widths[0], name="stem")
    for s, (filters, count) in enumerate(zip(widths, blocks, strict=True)):
        for b in range(count):
            strides = 2 if s > 0 and b == 0 else 1
            x = _residual_block(x, filters, strides, name=f"s{s + 1}b{b + 1}")
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dropout(dropout)(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="probs")(x)
    return keras.Model(inputs, outputs, name="resnet")


def build_edge(
    input_shape: tuple[int, ...],
    num_classes: int,
    width: float = 1.0,
    dropout: float = 0.3,
) -> Any:
    """fer-edge's own Pi-first network: about 20 M multiply-accumulates per face at width 1.

    Full 3x3 convolutions only where channels are few (the stem at 48x48 and a strided conv
    to 24x24), then residual blocks of depthwise-separable convolutions at 24, 12 and 6 px,
    and a global-average-pool head. Int8 with XNNPACK runs it at roughly the cost of a 10 M-MAC
    float model. ``width`` scales every channel count.
    """
    _, keras = tf_and_keras()
    layers = keras.layers

    def ch(n: int) -> int:
        return max(8, int(round(n * width / 8)) * 8)

    inputs = keras.Input(input_shape, name="face")
    x = _conv_bn_relu(inputs, ch(16), name="stem1")
    x = _conv_bn_relu(x, ch(32), strides=2, name="stem2")
    for s, (filters, count) in enumerate(((64, 2), (128, 2), (256, 2))):
        for b in range(count):
            name = f"s{s + 1}b{b + 1}"
            strides = 2 if s > 0 and b == 0 else 1
            y = _sep_bn(x, ch(filters), strides=strides, name=f"{name}_1")
            y = _sep_bn(y, ch(filters), name=f"{name}_2", relu=False)
            if strides != 1 or x.shape[-1] != ch(filters):
                x = layers.Conv2D(
                    ch(filters), 1, strides=strides, use_bias=False, name=f"{name}_proj"
                )(x)
                x = _bn(f"{name}_proj_bn")(x)
            x = layers.ReLU(name=f"{name}_out")(layers.Add(name=f"{name}_add")([y, x]))
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dropout(dropout)(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="probs")(x)
    return keras.Model(inputs, outputs, name="edge")


def _without_input_scaling(model: Any) -> Any:
    """Return ``model`` rebuilt without its Rescaling/Normalization layers (EfficientNet's).

    They are not quantisable, and fer-edge scales inputs in :mod:`fer_edge.preprocess`. The
    functional config is rewired so consumers of a dropped layer read its input instead.
    """
    _, keras = tf_and_keras()
    dropped = {
        layer.name: layer.inbound_nodes[0].inbound_layers.name
        for layer in model.layers
        if isinstance(layer, keras.layers.Rescaling | keras.layers.Normalization)
    }
    if not dropped:
        return model

    def source(name: str) -> str:
        while name in dropped:
            name = dropped[name]
        return name

    config = model.get_config()
    config["layers"] = [layer for layer in config["layers"] if layer["name"] not in dropped]
    for layer in config["layers"]:
        for node in layer["inbound_nodes"]:
            for inbound in node:
                inbound[0] = source(inbound[0])
    rebuilt = keras.Model.from_config(config)
    for layer in rebuilt.layers:
        layer.set_weights(model.get_layer(layer.name).get_weights())
    return rebuilt


def _backbone(app_name: str) -> Builder:
    def build(
        input_shape: tuple[int, ...],
        num_classes: int,
        weights: str | None = None,
        dropout: float = 0.3,
    ) -> Any:
        _, keras = tf_and_keras()
        if weights is not None and not Path(weights).is_file():
            raise FerEdgeError(f"--weights: {weights} does not exist")
        if weights is not None and input_shape[-1] != 3:
            raise FerEdgeError("--weights: ImageNet weights need a 3-channel input spec")
        app = getattr(keras.applications, app_name)
        inputs = keras.Input(input_shape, name="face")
        # input_tensor (not a nested model): tfmot cannot quantise a model inside a model.
        # weights=None: never download at run time; a local ImageNet file is loaded below.
        base = app(include_top=False, weights=None, input_tensor=inputs, pooling="avg")
        if weights is not None:
            base.load_weights(weights, by_name=True, skip_mismatch=True)
        x = keras.layers.Dropout(dropout)(base.output)
        outputs = keras.layers.Dense(num_classes, activation="softmax", name="probs")(x)
        model = keras.Model(inputs, outputs, name=app_name.lower())
        return _without_input_scaling(model)

    build.__doc__ = (
        f"tf_keras.applications.{app_name} without its top, trained from scratch or from a local "
        "ImageNet weights file (3-channel input: the gray plane is repeated)."
    )
    return build


REGISTRY: dict[str, ModelFamily] = {
    family.name: family
    for family in (
        ModelFamily("mlp", build_mlp, "multi-layer perceptron baseline", learning_rate=3e-4),
        ModelFamily(
            "cnn-basic", build_cnn_basic, "4-class notebook CNN (7x7 stem, Dense 64)", 1, 5e-4
        ),
        ModelFamily(
            "cnn-4stage", build_cnn_4stage, "4 conv stages 64/64/128/128, 2x Dense 256", 1, 5e-4
        ),
        ModelFamily(
            "cnn-deep", build_cnn_deep, "deep CNN: 64/128/512/512 convs, Dense 256/512", 1, 5e-4
        ),
        ModelFamily("resnet", build_resnet, "ResNet-18-style, widths 32-256, GAP head"),
        ModelFamily(
            "edge", build_edge, "Pi-first separable residual net, 33 M MACs", learning_rate=2e-3
        ),
        ModelFamily("vgg16", _backbone("VGG16"), "VGG16 backbone (tf_keras.applications)", 3),
        ModelFamily("resnet50", _backbone("ResNet50"), "ResNet50 backbone", 3),
        ModelFamily("efficientnetb0", _backbone("EfficientNetB0"), "EfficientNetB0 backbone", 3),
    )
}


def get_family(name: str) -> ModelFamily:
    """Return a registry entry or raise a clear error listing the valid names."""
    if name not in REGISTRY:
        raise FerEdgeError(f"--model: unknown model {name!r}; choose from {', '.join(REGISTRY)}")
    return REGISTRY[name]


def build_model(
    name: str, input_shape: tuple[int, ...] = (48, 48, 1), num_classes: int = 7, **options: Any
) -> Any:
    """Build a registry model by name (see :data:`REGISTRY`)."""
    return get_family(name).builder(tuple(input_shape), num_classes, **options)


def count_macs(model: Any) -> int:
    """Count multiply-accumulates of one forward pass (conv, depthwise, dense; batch of one).

    Nested models (the application backbones) are counted layer by layer.
    """
    _, keras = tf_and_keras()
    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            total += count_macs(layer)
            continue
        out_shape = layer.output_shape
        if isinstance(layer, keras.layers.DepthwiseConv2D):
            kh, kw = layer.kernel_size
            cin = layer.input_shape[-1]
            total += out_shape[1] * out_shape[2] * kh * kw * cin * layer.depth_multiplier
        elif isinstance(layer, keras.layers.SeparableConv2D):
            kh, kw = layer.kernel_size
            cin = layer.input_shape[-1]
            hw = out_shape[1] * out_shape[2]
            total += hw * kh * kw * cin * layer.depth_multiplier
            total += hw * cin * layer.depth_multiplier * layer.filters
        elif isinstance(layer, keras.layers.Conv2D):
            kh, kw = layer.kernel_size
            cin = layer.input_shape[-1] // layer.groups
            total += out_shape[1] * out_shape[2] * kh * kw * cin * layer.filters
        elif isinstance(layer, keras.layers.Dense):
            total += int(layer.input_shape[-1]) * layer.units
    return int(total)
