"""fer-edge convert: bad input fails early with one clear line (no training, no conversion)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from fer_edge.cli import main
from fer_edge.convert import ConvertOptions, convert
from fer_edge.convert.dataset import load_for_model
from fer_edge.convert.qat import quantisation_aware, unquantisable_layers
from fer_edge.convert.source import load_source
from fer_edge.errors import FerEdgeError
from fer_edge.labels import FER2013_CLASSES, SUBSETS
from fer_edge.modelmeta import ModelMeta, add_to_zip_model
from fer_edge.preprocess import InputSpec
from fer_edge.synthetic import write_folder_dataset


def _keras():
    from fer_edge.tfcompat import tf_and_keras

    return tf_and_keras()[1]


def _save(model, path: Path, labels=FER2013_CLASSES, meta: bool = True) -> Path:
    model.save(path)
    if meta:
        add_to_zip_model(path, ModelMeta(tuple(labels), InputSpec(), name=path.stem))
    return path


def _tiny_cnn(num_classes: int = 7, head=None):
    """Conv-BN-ReLU, pooling and a softmax head; ``head`` may insert layers before it."""
    keras = _keras()
    inputs = keras.Input((48, 48, 1))
    x = keras.layers.Conv2D(4, 3, use_bias=False)(inputs)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    if head is not None:
        x = head(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax")(x)
    return keras.Model(inputs, outputs)


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    """Small untrained Keras models saved the way the trainer saves them."""
    keras = _keras()
    layers = keras.layers
    root = tmp_path_factory.mktemp("convert_models")
    paths = {"good": _save(_tiny_cnn(), root / "good.keras")}
    paths["fer4"] = _save(_tiny_cnn(4), root / "fer4.keras", labels=SUBSETS["fer4"])
    paths["no_meta"] = _save(_tiny_cnn(), root / "no_meta.keras", meta=False)

    inputs = keras.Input((48, 48, 1))
    x = layers.Rescaling(1 / 255.0, name="scale")(inputs)
    x = layers.Conv2D(4, 3)(x)
    x = layers.GlobalAveragePooling2D()(x)
    paths["rescaling"] = _save(
        keras.Model(inputs, layers.Dense(7, activation="softmax")(x)), root / "rescaling.keras"
    )

    def dense_bn(x):
        x = layers.Dense(16, name="fc")(x)
        return layers.BatchNormalization(name="fc_bn")(x)

    paths["dense_bn"] = _save(_tiny_cnn(head=dense_bn), root / "dense_bn.keras")

    def recurrent(x):
        x = layers.Reshape((4, 1))(x)
        return layers.LSTM(8, name="rnn")(x)

    paths["lstm"] = _save(_tiny_cnn(head=recurrent), root / "lstm.keras")
    return paths


@pytest.fixture(scope="module")
def data7(tmp_path_factory) -> Path:
    return write_folder_dataset(tmp_path_factory.mktemp("d7") / "data", {"train": 3, "val": 2})


@pytest.fixture(scope="module")
def data4(tmp_path_factory) -> Path:
    return write_folder_dataset(
        tmp_path_factory.mktemp("d4") / "data", {"train": 3, "val": 2}, classes=SUBSETS["fer4"]
    )


def _options(model: Path, data: Path, tmp_path: Path, **kw) -> ConvertOptions:
    return ConvertOptions(model=model, data=data, out=tmp_path / "out", **kw)


# --- the model file -------------------------------------------------------------------------


def test_text_file_is_not_a_keras_model(tmp_path, data7):
    fake = tmp_path / "model.keras"
    fake.write_text("not a model\n")
    with pytest.raises(FerEdgeError, match=r"model\.keras: not a Keras model"):
        convert(_options(fake, data7, tmp_path))
    assert not (tmp_path / "out").exists()


def test_tflite_and_missing_files_are_refused(tmp_path, data7, tiny_tflite):
    with pytest.raises(FerEdgeError, match="cannot be converted again"):
        load_source(tiny_tflite["float"])
    with pytest.raises(FerEdgeError, match="no such model file"):
        load_source(tmp_path / "missing.keras")


def test_model_without_metadata_needs_classes(models):
    with pytest.raises(FerEdgeError, match="no fer-edge metadata.*--classes.*7 outputs"):
        load_source(models["no_meta"])
    source = load_source(models["no_meta"], classes="fer7")
    assert source.meta.labels == FER2013_CLASSES
    assert (source.meta.input.height, source.meta.input.channels) == (48, 1)
    with pytest.raises(FerEdgeError, match="7 outputs but 4 labels"):
        load_source(models["no_meta"], classes="fer4")


# --- layers int8 QAT cannot quantise ------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "pattern"),
    [
        ("rescaling", r"layer 'scale' \(Rescaling\) is a preprocessing layer"),
        ("dense_bn", r"layer 'fc_bn' \(BatchNormalization\) follows 'fc' \(Dense\), not a conv"),
        ("lstm", r"layer 'rnn' \(LSTM\) has no int8 quantisation support"),
    ],
)
def test_unquantisable_layer_is_named_before_any_work(kind, pattern, models, data7, tmp_path):
    with pytest.raises(FerEdgeError, match=pattern) as caught:
        convert(_options(models[kind], data7, tmp_path, int8=True))
    assert str(models[kind]) in str(caught.value)
    assert "\n" not in str(caught.value)
    assert not (tmp_path / "out").exists()


def test_conv_bn_model_has_no_quantisation_problems(models):
    assert unquantisable_layers(load_source(models["good"]).model) == []


def test_tfmot_refusal_is_translated(models):
    # Skip the pre-check: tfmot's own RuntimeError must still come out as a named layer.
    model = load_source(models["rescaling"]).model
    with pytest.raises(FerEdgeError, match=r"layer 'scale' \(Rescaling\) has no int8"):
        quantisation_aware(model, preserve_sparsity=False, model_path="m.keras")


# --- classes of the data versus the model ------------------------------------------------


def test_data_with_more_classes_than_the_model(models, data7, tmp_path):
    source = load_source(models["fer4"])
    with pytest.raises(FerEdgeError, match=r"holds class angry, disgust, fear.*--classes"):
        load_for_model(data7, source.meta, classes=None, model_path=source.path)
    dataset = load_for_model(data7, source.meta, classes="fer4", model_path=source.path)
    assert dataset.classes == SUBSETS["fer4"]
    assert set(dataset.split("train").labels.tolist()) == {0, 1, 2, 3}


def test_data_missing_a_class_of_the_model(models, data4):
    source = load_source(models["good"])
    with pytest.raises(FerEdgeError, match=r"no images of class angry, disgust, fear"):
        load_for_model(data4, source.meta, classes=None, model_path=source.path)


def test_classes_flag_must_match_the_model(models, data7, tmp_path):
    with pytest.raises(FerEdgeError, match=r"--classes: happy,sad,surprise,neutral does not"):
        convert(_options(models["good"], data7, tmp_path, classes="fer4"))


def test_unknown_class_folder_is_reported(models, tmp_path):
    data = write_folder_dataset(tmp_path / "data", {"train": 2, "val": 1})
    (data / "train" / "bored").mkdir()
    (data / "train" / "bored" / "x.png").write_bytes(b"")
    with pytest.raises(FerEdgeError, match=r"bored"):
        convert(_options(models["good"], data, tmp_path))


# --- options -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kw", "flag"),
    [
        ({"prune": 1.5}, "--prune"),
        ({"prune": 0.0}, "--prune"),
        ({"ptq": ("int4",)}, "--ptq"),
        ({"edgetpu": True, "ptq": ("float16",)}, "--edgetpu"),
        ({"representative": 0, "ptq": ("int8",)}, "--representative"),
        ({"name": "a/b"}, "--name"),
    ],
)
def test_bad_options_name_their_flag(kw, flag, models, data7, tmp_path):
    with pytest.raises(FerEdgeError, match=f"^{flag}"):
        convert(_options(models["good"], data7, tmp_path, **kw))


# --- the command line --------------------------------------------------------------------


def test_cli_prints_one_error_line(models, data7, tmp_path):
    fake = tmp_path / "model.keras"
    fake.write_bytes(b"PK\x03\x04 truncated zip")
    result = CliRunner().invoke(main, ["convert", str(fake), "--data", str(data7)])
    assert result.exit_code == 1
    assert result.output.startswith("Error: ") and "not a Keras model" in result.output
    assert "Traceback" not in result.output

    result = CliRunner().invoke(
        main, ["convert", str(models["dense_bn"]), "--data", str(data7), "--int8"]
    )
    assert result.exit_code == 1
    assert "'fc_bn' (BatchNormalization)" in result.output


def test_cli_converts_and_prints_the_table(models, data7, tmp_path):
    out = tmp_path / "out"
    args = ["convert", str(models["good"]), "-d", str(data7), "-o", str(out)]
    result = CliRunner().invoke(main, [*args, "--ptq", "int8", "--representative", "5"])
    assert result.exit_code == 0, result.output
    assert "good_float32.tflite" in result.output and "good_ptq_int8.tflite" in result.output
    assert "val acc" in result.output and "agree" in result.output
    card = json.loads((out / "good_ptq_int8.json").read_text())
    assert card["method"] == "ptq-int8" and card["float_model"] == "good_float32.tflite"
    assert card["input_dtype"] == "int8" and card["source"] == str(models["good"])


def test_out_under_a_file_fails_before_the_data_loads(models, data7, tmp_path, monkeypatch):
    import fer_edge.convert.conversion as conversion

    def no_loading(*args, **kwargs):
        raise AssertionError("the data was loaded before --out was checked")

    monkeypatch.setattr(conversion, "load_for_model", no_loading)
    blocker = tmp_path / "blocker"
    blocker.write_text("a file")
    with pytest.raises(FerEdgeError, match="--out: cannot create .*blocker is a file"):
        convert(ConvertOptions(model=models["good"], data=data7, out=blocker / "models"))
