"""fer-edge convert end to end: real training, real tfmot, real converter, real interpreter.

A tiny ``edge`` network learns the generated gratings (about 95% val), then one conversion
makes every variant at once (float32, the three PTQ baselines, pruned float and pruned + PQAT
int8); the plain QAT path runs on the small ``mlp``. Every output is loaded back through the
interpreter and the numbers in the report are recomputed independently.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from fer_edge.classifier import FaceClassifier
from fer_edge.convert import ConvertOptions, ConvertReport, FineTuneOptions, convert
from fer_edge.convert.report import HEADER, summary
from fer_edge.data import Dataset, Split, load_dataset
from fer_edge.labels import FER2013_CLASSES
from fer_edge.modelmeta import ModelMeta, read_meta, sidecar_path
from fer_edge.preprocess import InputSpec
from fer_edge.runtime import load_runtime
from fer_edge.synthetic import write_folder_dataset

CARD_KEYS = {
    "meta",
    "method",
    "source",
    "float_model",
    "sparsity",
    "target_sparsity",
    "val_accuracy",
    "float_val_accuracy",
    "agreement",
    "size_bytes",
    "gzip_bytes",
    "input_dtype",
    "fine_tune",
    "created",
}


def train_registry_model(
    name: str, data: Path | Split, out: Path, epochs: int, augment=None, **build_opts
) -> Path:
    """Fit a registry model briefly on a folder dataset's train split or on a split."""
    from fer_edge.convert.tiny import fit_registry_model

    train = (
        data if isinstance(data, Split) else load_dataset(data, splits=("train",)).split("train")
    )
    return fit_registry_model(name, train.images, train.labels, out, epochs, augment, **build_opts)


def convert_int8(model: Path, data: Path, out: Path, batch_size=16, **options) -> ConvertReport:
    """Convert with --int8: one quick fine-tuning epoch, no augmentation."""
    from fer_edge.train.inputs import NO_AUGMENT

    fine_tune = FineTuneOptions(epochs=1, batch_size=batch_size, augment=NO_AUGMENT)
    return convert(
        ConvertOptions(model=model, data=data, out=out, int8=True, fine_tune=fine_tune, **options)
    )


@pytest.fixture(scope="module")
def grating_data(tmp_path_factory) -> Path:
    return write_folder_dataset(
        tmp_path_factory.mktemp("gratings") / "data", {"train": 60, "val": 12}
    )


@pytest.fixture(scope="module")
def edge_model(tmp_path_factory, grating_data) -> Path:
    run = tmp_path_factory.mktemp("runs_edge")
    return train_registry_model("edge", grating_data, run, epochs=5, width=0.25)


@pytest.fixture(scope="module")
def everything(tmp_path_factory, grating_data, edge_model) -> ConvertReport:
    """One run making every variant: float, dynamic, float16 and int8 PTQ, pruned, PQAT."""
    from fer_edge.train.inputs import NO_AUGMENT

    options = ConvertOptions(
        model=edge_model,
        data=grating_data,
        out=tmp_path_factory.mktemp("models") / "edge",
        int8=True,
        prune=0.5,
        ptq=("dynamic", "float16", "int8"),
        fine_tune=FineTuneOptions(epochs=1, lr=1e-4, batch_size=16, augment=NO_AUGMENT),
        representative=100,
    )
    return convert(options)


@pytest.fixture(scope="module")
def val_split(grating_data):
    return load_dataset(grating_data, splits=("val",)).split("val")


def tensor_dtypes(path: Path) -> tuple[str, str, set[str]]:
    """Read input, output and all tensor dtypes straight from the interpreter."""
    interp = load_runtime().interpreter(model_path=str(path))

    def name(detail: dict) -> str:
        return np.dtype(detail["dtype"]).name

    return (
        name(interp.get_input_details()[0]),
        name(interp.get_output_details()[0]),
        {name(d) for d in interp.get_tensor_details()},
    )


def test_every_variant_is_written_with_clear_names(everything):
    names = sorted(m.path.name for m in everything.models)
    assert names == sorted(
        f"tiny-edge_{tag}.tflite"
        for tag in (
            "float32",
            "ptq_dynamic",
            "ptq_float16",
            "ptq_int8",
            "pruned50_float32",
            "pqat50_int8",
        )
    )
    methods = [m.method for m in everything.models]
    assert methods[0] == "float"
    assert set(methods) == {
        "float",
        "ptq-dynamic",
        "ptq-float16",
        "ptq-int8",
        "pruned-float",
        "pqat-int8",
    }
    # Atomic writes leave no temporary files behind; every model has its card.
    files = sorted(p.name for p in everything.out.iterdir())
    assert files == sorted(names + [n.replace(".tflite", ".json") for n in names])


def test_every_output_runs_and_describes_itself(everything, edge_model):
    for model in everything.models:
        meta = read_meta(model.path)
        assert meta.labels == FER2013_CLASSES
        assert meta.input == InputSpec()
        assert meta.extra["method"] == model.method
        classifier = FaceClassifier(model.path)
        probs = classifier.probabilities_batch(np.full((2, 48, 48), 128, np.uint8))
        assert probs.shape == (2, 7)
        assert np.allclose(probs.sum(axis=1), 1.0, atol=0.05)

        card = json.loads(sidecar_path(model.path).read_text())
        assert set(card) >= CARD_KEYS
        assert ModelMeta.from_dict(card["meta"]) == meta
        assert card["method"] == model.method
        assert card["source"] == str(edge_model)
        assert (model.path.parent / card["float_model"]).is_file()
        assert card["float_model"] == "tiny-edge_float32.tflite"
        assert card["size_bytes"] == model.path.stat().st_size
        assert 0 < card["gzip_bytes"] < card["size_bytes"]
        assert card["input_dtype"] == classifier.input_dtype.name


def test_int8_outputs_are_full_integer(everything):
    for method in ("ptq-int8", "pqat-int8"):
        path = everything.by_method(method).path
        input_dtype, output_dtype, dtypes = tensor_dtypes(path)
        assert (input_dtype, output_dtype) == ("int8", "int8"), method
        assert dtypes <= {"int8", "int32"}, (method, dtypes)
        assert FaceClassifier(path).is_quantized


def test_float_and_weight_only_outputs_take_float_input(everything):
    for method in ("float", "ptq-dynamic", "ptq-float16", "pruned-float"):
        input_dtype, output_dtype, dtypes = tensor_dtypes(everything.by_method(method).path)
        assert (input_dtype, output_dtype) == ("float32", "float32"), method
    assert "float16" in tensor_dtypes(everything.by_method("ptq-float16").path)[2]
    assert "int8" in tensor_dtypes(everything.by_method("ptq-dynamic").path)[2]


def test_reported_accuracy_and_agreement_are_the_interpreters(everything, val_split):
    predictions = {
        m.method: np.argmax(FaceClassifier(m.path).probabilities_batch(val_split.images), axis=1)
        for m in everything.models
    }
    reference = predictions["float"]
    for model in everything.models:
        mine = predictions[model.method]
        assert model.val_accuracy == pytest.approx(np.mean(mine == val_split.labels))
        assert model.agreement == pytest.approx(np.mean(mine == reference))
        assert model.float_val_accuracy == pytest.approx(np.mean(reference == val_split.labels))
    assert everything.by_method("float").val_accuracy >= 0.8  # the float model really learned


def test_int8_agrees_with_the_float_model_of_the_same_weights(everything, val_split):
    # PTQ int8 quantises the float model itself; PQAT int8 the pruned one. Against the dense
    # float reference a PQAT model also differs by what pruning changed (its card's agreement,
    # 88% on this small net, as on the real one), so int8 is judged against pruned-float.
    assert everything.by_method("ptq-int8").agreement >= 0.9

    def top1(method: str) -> np.ndarray:
        path = everything.by_method(method).path
        return np.argmax(FaceClassifier(path).probabilities_batch(val_split.images), axis=1)

    assert np.mean(top1("pqat-int8") == top1("pruned-float")) >= 0.9


def test_pruning_survives_quantisation(everything):
    from fer_edge.convert.sparsity import kernel_sparsity
    from fer_edge.convert.tflite_info import inspect_tflite

    target = 0.5
    pqat = everything.by_method("pqat-int8")
    pruned = everything.by_method("pruned-float")
    for model in (pqat, pruned):
        assert model.target_sparsity == target
        assert model.sparsity >= target - 0.01, model.method
        # Recount the zeros in the file as written.
        kernels = inspect_tflite(model.path.read_bytes()).kernels
        assert kernel_sparsity(kernels).pruned == pytest.approx(model.sparsity)
        assert sum(k.values.size for k in kernels if k.op == "CONV_2D") > 0
    # Zeros compress: the pruned int8 model gzips smaller than the dense one.
    assert pqat.gzip_bytes < everything.by_method("ptq-int8").gzip_bytes
    assert pruned.gzip_bytes < 0.85 * everything.by_method("float").gzip_bytes
    # Unpruned models only have the odd weight that rounds to zero.
    assert everything.by_method("float").sparsity < 0.05


def test_fine_tuning_is_recorded(everything):
    card = json.loads(everything.by_method("pqat-int8").card.read_text())
    assert card["fine_tune"]["epochs"] == 1 and card["fine_tune"]["lr"] == 1e-4
    assert card["target_sparsity"] == 0.5
    assert json.loads(everything.by_method("ptq-int8").card.read_text())["fine_tune"] is None


def test_summary_table_lists_every_model(everything):
    text = summary(everything)
    lines = text.splitlines()
    for column in HEADER:
        assert column in lines[0]
    for model in everything.models:
        row = next(line for line in lines if line.startswith(model.path.name))
        assert f"{100 * model.agreement:.1f}%" in row
        assert f"{100 * model.val_accuracy:.1f}%" in row
        assert f"{model.size_bytes / 1024:.1f} KB" in row
    assert f"{everything.val_images} val faces" in text


def test_cards_read_back_with_the_measured_numbers(everything):
    from fer_edge.card import read_card

    for model in everything.models:
        card_model = read_card(model.path)
        assert card_model is not None and card_model.meta is not None
        assert card_model.meta.labels == read_meta(model.path).labels
        assert card_model.method == model.method
        assert card_model.size_bytes == model.size_bytes
        assert card_model.agreement == pytest.approx(model.agreement, abs=1e-6)
        assert card_model.sparsity == pytest.approx(model.sparsity, abs=1e-6)


def test_plain_qat_int8(tmp_path_factory, grating_data):
    """The --int8 path without pruning, on the quick-to-quantise mlp."""
    run = tmp_path_factory.mktemp("runs_mlp")
    model = train_registry_model("mlp", grating_data, run, epochs=1)
    report = convert_int8(
        model, grating_data, tmp_path_factory.mktemp("models") / "mlp", batch_size=32
    )
    assert [m.path.name for m in report.models] == [
        "tiny-mlp_float32.tflite",
        "tiny-mlp_qat_int8.tflite",
    ]
    qat = report.by_method("qat-int8")
    input_dtype, output_dtype, dtypes = tensor_dtypes(qat.path)
    assert (input_dtype, output_dtype) == ("int8", "int8")
    assert dtypes <= {"int8", "int32"}
    assert qat.target_sparsity is None
    assert read_meta(qat.path).extra["float_model"] == "tiny-mlp_float32.tflite"
    # Int8 weights: about a quarter of the float file.
    assert qat.size_bytes < 0.3 * report.by_method("float").size_bytes


# --- slow: more models, real faces -------------------------------------------------------


@pytest.mark.slow
def test_plain_qat_on_a_conv_net_agrees_with_float(tmp_path, grating_data, edge_model):
    report = convert_int8(edge_model, grating_data, tmp_path / "edge")
    qat = report.by_method("qat-int8")
    assert tensor_dtypes(qat.path)[2] <= {"int8", "int32"}
    assert qat.agreement >= 0.9
    assert qat.val_accuracy >= qat.float_val_accuracy - 0.1


@pytest.mark.slow
def test_pqat_on_cnn_4stage(tmp_path, grating_data):
    (tmp_path / "run").mkdir()
    model = train_registry_model("cnn-4stage", grating_data, tmp_path / "run", epochs=3)
    report = convert_int8(model, grating_data, tmp_path / "cnn", prune=0.75)
    pqat = report.by_method("pqat-int8")
    assert pqat.path.name == "tiny-cnn-4stage_pqat75_int8.tflite"
    assert pqat.sparsity >= 0.75 - 0.01
    assert tensor_dtypes(pqat.path)[:2] == ("int8", "int8")
    assert pqat.gzip_bytes < 0.5 * report.by_method("float").gzip_bytes


@pytest.mark.slow
@pytest.mark.fer2013
def test_quantised_models_track_float_on_real_faces(tmp_path, fer2013_root):
    """On FER2013 faces (a subset, for time): int8 keeps the float model's answers."""
    full = load_dataset(fer2013_root, splits=("train", "val"))
    rng = np.random.default_rng(0)
    pick = {
        name: full.split(name).subset(np.sort(rng.permutation(len(full.split(name)))[:n]))
        for name, n in (("train", 8000), ("val", 1000))
    }
    dataset = Dataset(full.classes, pick, source=str(fer2013_root))
    (tmp_path / "run").mkdir()
    model = train_registry_model("edge", pick["train"], tmp_path / "run", epochs=5, width=0.5)
    report = convert(
        ConvertOptions(
            model=model,
            data=fer2013_root,
            out=tmp_path / "models",
            int8=True,
            ptq=("int8",),
            fine_tune=FineTuneOptions(epochs=1, batch_size=64),
        ),
        dataset=dataset,
    )
    float_model = report.by_method("float")
    # A model that always answers "happy" (a quarter of val) would agree with anything.
    assert float_model.val_accuracy > 0.3
    predictions = FaceClassifier(float_model.path).probabilities_batch(pick["val"].images)
    assert len(set(np.argmax(predictions, axis=1).tolist())) >= 3
    # Post-training int8 is the same network: only quantisation error separates it.
    ptq = report.by_method("ptq-int8")
    assert ptq.agreement >= 0.85
    assert abs(ptq.val_accuracy - float_model.val_accuracy) <= 0.03
    # QAT also fine-tunes, and a briefly trained model is still learning: its answers move
    # (agreement is reported, not bounded here), but accuracy must not drop.
    qat = report.by_method("qat-int8")
    assert tensor_dtypes(qat.path)[2] <= {"int8", "int32"}
    assert qat.val_accuracy >= float_model.val_accuracy - 0.03


def test_a_logit_adjustment_survives_qat(tmp_path, grating_data, edge_model, val_split):
    """QAT fine-tunes the model as trained and folds the recorded shift back before export."""
    from fer_edge.evaluate import load_keras_model
    from fer_edge.modelmeta import add_to_zip_model
    from fer_edge.train.adjust import fold_into_last_layer

    # Lift class 0 by 40 nats (more than the confident model's logit gaps), as train
    # --logit-adjust records a shift in model.keras.
    shift = np.zeros(7, np.float32)
    shift[0] = 40.0
    model = load_keras_model(edge_model)
    fold_into_last_layer(model, shift)
    adjusted = tmp_path / "adjusted.keras"
    model.save(adjusted)
    meta = read_meta(edge_model)
    extra = {**meta.extra, "logit_shift": shift.tolist()}
    add_to_zip_model(adjusted, ModelMeta(meta.labels, meta.input, meta.name, extra), replace=True)
    report = convert_int8(adjusted, grating_data, tmp_path / "out")
    said = {}
    for exported in report.models:
        probs = FaceClassifier(exported.path).probabilities_batch(val_split.images)
        said[exported.method] = float(np.mean(np.argmax(probs, axis=1) == 0))
    # Both the float reference and the QAT int8 model carry the lift: class 0 is said for
    # (nearly) every face, not for its share (1 in 7). Without the fold-back, the int8 model,
    # fine-tuned without the shift, would say it for about 1 in 7.
    assert said["float"] > 0.9
    assert said["qat-int8"] > 0.9
    assert read_meta(report.models[-1].path).extra["logit_shift"][0] == 40.0
