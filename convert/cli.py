"""``fer-edge convert``: parse flags, call :func:`fer_edge.convert.convert`, print the table."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

import click

from fer_edge.clitypes import FiniteFloat, runtime_option
from fer_edge.convert.options import CONVERT_STRATEGIES, PTQ_CHOICES
from fer_edge.errors import FerEdgeError
from fer_edge.train.precision import PRECISIONS


@click.command("convert", context_settings={"show_default": True})
@click.argument("model", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--data",
    "-d",
    required=True,
    type=click.Path(path_type=Path),
    help="Dataset folder (train/, val/) or FER2013 CSV: fine-tuning, calibration and judging.",
)
@click.option(
    "--out",
    "-o",
    type=click.Path(file_okay=False, path_type=Path),
    help="Output folder.  [default: models/NAME]",
)
@click.option("--name", help="Output file prefix.  [default: the model's name]")
@click.option("--int8", is_flag=True, help="Full-integer model by quantisation-aware training.")
@click.option(
    "--prune",
    type=FiniteFloat(),
    metavar="SPARSITY",
    help="Magnitude-prune to this sparsity (e.g. 0.5); with --int8, pruning-preserving QAT.",
)
@click.option(
    "--ptq",
    multiple=True,
    type=click.Choice(PTQ_CHOICES),
    help="Post-training baseline to export too (repeatable).",
)
@click.option("--epochs", type=int, default=3, help="Epochs of pruning / QAT.")
@click.option("--lr", type=FiniteFloat(), default=1e-4, help="Fine-tuning rate.")
@click.option("--batch-size", type=int, default=64)
@click.option(
    "--class-weight",
    type=FiniteFloat(0, 1),
    default=0.0,
    help="Class-weight power while fine-tuning (as fer-edge train's; give the model's own).",
)
@click.option("--augment/--no-augment", default=True, help="Augment while fine-tuning.")
@click.option(
    "--representative",
    type=int,
    default=300,
    help="Training faces that calibrate --ptq int8.",
)
@click.option("--classes", help="Classes; must match the model's labels.")
@click.option("--seed", type=int, default=0)
@click.option("--edgetpu", is_flag=True, help="Compile int8 outputs with edgetpu_compiler.")
@runtime_option("TFLite runtime that judges the outputs.")
@click.option("--threads", type=int, help="Interpreter threads when judging.")
@click.option(
    "--strategy",
    type=click.Choice(CONVERT_STRATEGIES),
    default="one",
    help="tf.distribute strategy of pruning / QAT fine-tuning (mirrored: all local GPUs).",
)
@click.option(
    "--precision",
    type=click.Choice(PRECISIONS),
    default="float32",
    help="Fine-tuning runs float32 only: tfmot's pruning and QAT have no mixed precision.",
)
def convert_cmd(
    model: Path,
    data: Path,
    out: Path | None,
    name: str | None,
    int8: bool,
    prune: float | None,
    ptq: tuple[str, ...],
    epochs: int,
    lr: float,
    batch_size: int,
    class_weight: float,
    augment: bool,
    representative: int,
    classes: str | None,
    seed: int,
    edgetpu: bool,
    runtime: str,
    threads: int | None,
    strategy: str,
    precision: str,
) -> None:
    """Prune, quantise and export a trained Keras model to self-describing TFLite models.

    \b
    Always writes NAME_float32.tflite, the reference every other output is compared with;
    --ptq adds post-training baselines, --int8 a QAT model, --prune a pruned one:
      fer-edge convert runs/edge/model.keras --data DATA --int8 --ptq int8
      fer-edge convert runs/edge/model.keras --data DATA --prune 0.5 --int8
    Every X.tflite carries its labels and input spec, with a model card X.json beside it.
    """
    from fer_edge.convert.conversion import convert
    from fer_edge.convert.options import ConvertOptions, FineTuneOptions
    from fer_edge.convert.report import summary
    from fer_edge.train.inputs import NO_AUGMENT

    options = ConvertOptions(
        model=model,
        data=data,
        out=out,
        name=name,
        int8=int8,
        prune=prune,
        ptq=ptq,
        fine_tune=FineTuneOptions(
            epochs=epochs,
            lr=lr,
            batch_size=batch_size,
            augment=None if augment else NO_AUGMENT,
            class_weight=class_weight,
            # A progress bar on a terminal; one line per epoch in logs.
            verbose=1 if sys.stderr.isatty() else 2,
        ),
        representative=representative,
        classes=classes,
        seed=seed,
        edgetpu=edgetpu,
        runtime=runtime,
        threads=threads,
        progress=True,
        strategy=strategy,
        precision=precision,
    )
    # Progress (Keras epochs included) goes to stderr: stdout carries only the summary table.
    with contextlib.redirect_stdout(sys.stderr):
        report = convert(options, log=lambda line: click.echo(line, err=True))
    click.echo(summary(report))
    for result in report.edgetpu:
        click.echo(result.message)
    if report.edgetpu_help:
        click.echo(report.edgetpu_help)
    failed = [r for r in report.edgetpu if not r.ok]
    if failed:
        raise FerEdgeError(failed[0].message)
