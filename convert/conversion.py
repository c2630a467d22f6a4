"""``convert(options)``: one trained Keras model in, a folder of self-describing TFLite models out.

Order of work: every check that can fail fast (options, model file, quantisability, classes)
runs before the first slow step. Then the float32 reference is exported and judged, then the
post-training baselines, then pruning, then quantisation-aware training, then Edge TPU
compilation. Each output is complete on disk (atomic write) before the next starts.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from fer_edge.atomic import check_output_folder
from fer_edge.card import card_path, gzip_size, read_card
from fer_edge.classifier import ClassifierOptions, FaceClassifier
from fer_edge.convert.card import card_for
from fer_edge.convert.dataset import load_for_model
from fer_edge.convert.edgetpu import HOW_TO, compile_for_edgetpu, find_compiler
from fer_edge.convert.export import representative_inputs, to_tflite, write_tflite
from fer_edge.convert.finetune import TuneData, fine_tune
from fer_edge.convert.options import ConvertOptions
from fer_edge.convert.prune import prune as prune_model
from fer_edge.convert.prune import pruned_kernel_sparsity
from fer_edge.convert.qat import check_quantisable, quantisation_aware
from fer_edge.convert.results import ConvertReport, EdgeTpuResult, ExportedModel
from fer_edge.convert.source import SourceModel, load_source
from fer_edge.convert.sparsity import kernel_sparsity
from fer_edge.convert.tflite_info import inspect_tflite
from fer_edge.data import Dataset
from fer_edge.errors import FerEdgeError
from fer_edge.evaluate import Evaluation, eval_set_of, evaluate
from fer_edge.modelmeta import ModelMeta, read_meta
from fer_edge.outputs import check_outputs
from fer_edge.runtime import Runtime, load_runtime
from fer_edge.tfcompat import copy_model, tf_and_keras
from fer_edge.train.adjust import fold_into_last_layer, shift_of
from fer_edge.train.distribute import Distribution, make_distribution

Log = Callable[[str], None]
INT8_METHODS = frozenset({"ptq-int8", "qat-int8", "pqat-int8"})


#: Training metadata every export keeps: whose labels it learnt, its logit adjustment.
INHERITED_EXTRA = ("label_set", "logit_shift")


def percent_tag(sparsity: float) -> str:
    """Return the file-name tag of a sparsity: 0.5 -> ``50``."""
    return f"{round(100 * sparsity):d}"


class _Exporter:
    """Writes, inspects, judges and documents each output of one run."""

    def __init__(
        self,
        options: ConvertOptions,
        source: SourceModel,
        dataset: Dataset,
        name: str,
        out: Path,
        runtime: Runtime,
        log: Log,
    ) -> None:
        self.options = options
        self.source = source
        self.dataset = dataset
        self.val = eval_set_of(dataset.split("val"), dataset.classes)
        self.name = name
        self.out = out
        self.runtime = runtime
        self.log = log
        self.float_name = f"{name}_float32.tflite"
        self.reference: Evaluation | None = None
        self.models: list[ExportedModel] = []

    def export(
        self,
        flatbuffer: bytes,
        tag: str,
        method: str,
        started: float,
        *,
        target_sparsity: float | None = None,
        fine_tune: dict[str, Any] | None = None,
    ) -> ExportedModel:
        info = inspect_tflite(flatbuffer, self.runtime)
        if method in INT8_METHODS and not info.is_full_integer:
            floats = info.non_integer_tensors()
            raise FerEdgeError(
                f"{self.source.path}: the {method} model is not full-integer (input "
                f"{info.input_dtype}, output {info.output_dtype}, non-integer tensors: "
                f"{', '.join(floats[:4]) or 'none'}); a layer was left in float"
            )
        sparsity = kernel_sparsity(info.kernels)
        meta = self.source.meta
        meta = ModelMeta(
            meta.labels,
            meta.input,
            meta.name or self.name,
            {
                "method": method,
                "sparsity": round(sparsity.pruned, 6),
                "target_sparsity": target_sparsity,
                "float_model": self.float_name,
                "source": self.source.path.name,
                # What the training recorded about the model's outputs, kept with them.
                **{k: meta.extra[k] for k in INHERITED_EXTRA if k in meta.extra},
            },
        )
        target = self.out / f"{self.name}_{tag}.tflite"
        check_outputs([("--out", target)], [("MODEL", self.source.path)])
        path = write_tflite(target, flatbuffer, meta)
        options = ClassifierOptions(self.options.threads, self.runtime.name)
        evaluation = evaluate(FaceClassifier(path, options, self.runtime), self.val)
        if self.reference is None:
            self.reference = evaluation
        model = ExportedModel(
            path=path,
            card=card_path(path),
            method=method,
            float_model=self.float_name,
            size_bytes=path.stat().st_size,
            gzip_bytes=gzip_size(path),
            sparsity=sparsity.pruned,
            sparsity_all_kernels=sparsity.all_kernels,
            target_sparsity=target_sparsity,
            val_accuracy=evaluation.accuracy,
            float_val_accuracy=self.reference.accuracy,
            agreement=evaluation.agreement(self.reference),
            input_dtype=info.input_dtype,
            output_dtype=info.output_dtype,
            fine_tune=fine_tune,
            seconds=time.perf_counter() - started,
        )
        card = card_for(
            model,
            meta,
            source=self.source.path,
            val_images=len(self.val.labels),
            val_carved=self.dataset.val_carved,
            runtime=self.runtime.describe(),
        )
        card.write(model.card)
        self.models.append(model)
        self.log(
            f"wrote {path.name}: {model.size_bytes / 1024:.1f} KB, val accuracy "
            f"{100 * model.val_accuracy:.1f}%, agreement {100 * model.agreement:.1f}%"
        )
        return model


def _fine_tune_record(options: ConvertOptions, epochs: int, **extra: Any) -> dict[str, Any]:
    tune = options.fine_tune
    augment = "default" if tune.augment is None else asdict(tune.augment)
    return {
        "epochs": epochs,
        "lr": tune.lr,
        "batch_size": tune.batch_size,
        "augment": augment,
        "seed": options.seed,
        **extra,
    }


def convert(
    options: ConvertOptions, *, dataset: Dataset | None = None, log: Log | None = None
) -> ConvertReport:
    """Convert a trained Keras model into float32, post-training and QAT TFLite models.

    Args:
        options: what to make (see :class:`ConvertOptions`).
        dataset: already loaded data with the model's classes (``options.data`` is then not
            read); for callers that convert several models on the same data.
        log: receives one line per step (``None``: silent).

    Returns:
        The report: every exported model with its measurements.

    Raises:
        FerEdgeError: bad options, a model file that is not a usable Keras classifier, a
            layer int8 QAT cannot quantise, data whose classes differ from the model's.
    """
    started = time.perf_counter()
    log = log or (lambda _line: None)
    options.validate()
    distribution = make_distribution(options.strategy)
    _, keras = tf_and_keras()
    if keras.mixed_precision.global_policy().name != "float32":
        raise FerEdgeError(
            f"the Keras global dtype policy is {keras.mixed_precision.global_policy().name}: "
            "pruning and quantisation-aware training run in float32 only; reset it to float32"
        )
    source = load_source(options.model, options.classes)
    if options.int8:
        check_quantisable(source.model, source.path)
    runtime = load_runtime(options.runtime)
    name = options.name or source.default_name
    out = Path(options.out) if options.out is not None else Path("models") / name
    check_output_folder(out, "--out")
    # The first export's name, checked before any work; each later one as it is written.
    check_outputs([("--out", out / f"{name}_float32.tflite")], [("MODEL", source.path)])
    if dataset is None:
        dataset = load_for_model(
            options.data,
            source.meta,
            classes=options.classes,
            model_path=source.path,
            seed=options.seed,
            val_fraction=options.val_fraction,
            progress=options.progress,
        )
    elif dataset.classes != source.meta.labels:
        raise FerEdgeError(
            f"dataset classes {','.join(dataset.classes)} differ from the classes "
            f"{source.path} predicts ({','.join(source.meta.labels)})"
        )
    train, val = dataset.split("train"), dataset.split("val")
    log(f"data: {len(train)} train and {len(val)} val faces, classes {','.join(dataset.classes)}")
    exporter = _Exporter(options, source, dataset, name, out, runtime, log)

    step = time.perf_counter()
    log("exporting the float32 reference")
    exporter.export(to_tflite(source.model), "float32", "float", step)

    for method in options.ptq:
        step = time.perf_counter()
        log(f"post-training quantisation: {method}")
        calibration = None
        if method == "int8":
            calibration = representative_inputs(
                train, source.meta.input, options.representative, options.seed
            )
        flatbuffer = to_tflite(source.model, method, calibration)
        exporter.export(flatbuffer, f"ptq_{method}", f"ptq-{method}", step)

    _prune_and_quantise(options, source, dataset, exporter, log, distribution)

    report = ConvertReport(
        source=source.path,
        out=out,
        models=exporter.models,
        val_images=len(val),
        val_carved=dataset.val_carved,
    )
    if options.edgetpu:
        _edgetpu(report, log)
    report.seconds = time.perf_counter() - started
    return report


def _prune_and_quantise(
    options: ConvertOptions,
    source: SourceModel,
    dataset: Dataset,
    exporter: _Exporter,
    log: Log,
    distribution: Distribution,
) -> None:
    # Wrapping for pruning, QAT annotation, compile and fit all happen in the strategy scope.
    scope = distribution.strategy.scope
    data = TuneData(
        dataset.split("train"), dataset.split("val"), source.meta.input, len(source.meta.labels)
    )
    tune = options.fine_tune
    model, target = source.model, options.prune
    # A logit adjustment (train --logit-adjust) is a post-hoc shift, not something to train:
    # fine-tuning would learn it away. Fine-tune the model as trained; fold it back before
    # each export.
    shift = shift_of(source.meta.extra)
    if shift is not None:
        model = copy_model(model)
        fold_into_last_layer(model, -shift)
        log("logit adjustment: fine-tuning without it, folded back into every export")
    step = time.perf_counter()
    prune_record: dict[str, Any] = {}
    if target is not None:
        tag = percent_tag(target)
        log(f"pruning to {100 * target:.0f}% sparsity over {tune.epochs} fine-tuning epochs")
        with scope():
            model, tuned = prune_model(model, target, data, tune, seed=options.seed)
        log(
            f"pruned conv/dense kernels: {100 * pruned_kernel_sparsity(model):.1f}% zeros; "
            f"Keras val accuracy {100 * tuned.val_accuracy:.1f}%"
        )
        prune_record = {"prune_epochs": tune.epochs}
        exported = model
        if shift is not None:
            exported = copy_model(model)
            fold_into_last_layer(exported, shift)
        exporter.export(
            to_tflite(exported),
            f"pruned{tag}_float32",
            "pruned-float",
            step,
            target_sparsity=target,
            fine_tune=_fine_tune_record(options, tune.epochs),
        )
    if not options.int8:
        return
    preserve = target is not None
    log(
        f"{'pruning-preserving ' if preserve else ''}quantisation-aware training: "
        f"{tune.epochs} epochs at lr {tune.lr:g}"
    )
    with scope():
        qat = quantisation_aware(model, preserve_sparsity=preserve, model_path=source.path)
        tuned = fine_tune(qat, data, tune, seed=options.seed)
    log(f"QAT Keras val accuracy {100 * tuned.val_accuracy:.1f}% (fake-quantised, before export)")
    if shift is not None:
        fold_into_last_layer(qat, shift)
    if preserve and target is not None:
        tag, method = f"pqat{percent_tag(target)}_int8", "pqat-int8"
    else:
        tag, method = "qat_int8", "qat-int8"
    exporter.export(
        to_tflite(qat, "qat"),
        tag,
        method,
        step,
        target_sparsity=target,
        fine_tune=_fine_tune_record(options, tune.epochs, **prune_record),
    )


def _edgetpu(report: ConvertReport, log: Log) -> None:
    compiler = find_compiler()
    if compiler is None:
        report.edgetpu_help = HOW_TO
        return
    for model in [m for m in report.models if m.method in INT8_METHODS]:
        log(f"edgetpu_compiler {model.path.name}")
        result = compile_for_edgetpu(model.path, compiler)
        if result.model is not None:
            _edgetpu_card(model, result.model, result)
        report.edgetpu.append(result)


def _edgetpu_card(model: ExportedModel, compiled: Path, result: EdgeTpuResult) -> None:
    # The compiled model cannot run on a CPU, so its accuracies are those of its source.
    card = read_card(model.path)
    if card is None:
        raise FerEdgeError(f"{model.card}: the card written for {model.path.name} is unreadable")
    card.meta = read_meta(compiled)
    card.size_bytes = compiled.stat().st_size
    card.gzip_bytes = gzip_size(compiled)
    card.extra.update(
        compiled_from=model.path.name,
        accuracy_measured_on=model.path.name,
        edgetpu_log=result.log.name if result.log else None,
    )
    card.write(card_path(compiled))
