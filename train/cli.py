"""Click commands ``fer-edge train`` and ``fer-edge eval`` (TensorFlow is imported lazily)."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import click

from fer_edge.clitypes import FiniteFloat
from fer_edge.errors import FerEdgeError
from fer_edge.train.choices import DEFAULT_EPOCHS, OPTIMIZERS, SCHEDULES, TARGETS
from fer_edge.train.distribute import STRATEGIES
from fer_edge.train.precision import PRECISIONS
from fer_edge.train.recipes import RECIPES, recipe_help

#: What each face is trained towards and how classes are balanced: ``(flag, click keywords)``.
LABEL_OPTIONS: tuple[tuple[str, dict[str, Any]], ...] = (
    (
        "--class-weight",
        {
            "type": FiniteFloat(0, 1),
            "default": 0.0,
            "help": "Class-weight power: 0 off, 0.5 sqrt inverse frequency, 1 inverse frequency.",
        },
    ),
    (
        "--targets",
        {
            "type": click.Choice(TARGETS),
            "default": "majority",
            "help": "What each face is trained towards. majority: one label (FER2013's, or "
            "FER+'s majority); with FER+ data (--data a folder with FER2013Train/label.csv): "
            "votes (cross-entropy against the ten-vote distribution), sample (a label drawn "
            "from the votes every epoch), joint (the votes mixed with the face's FER2013 "
            "label, see --joint-mix).",
        },
    ),
    (
        "--joint-mix",
        {
            "type": FiniteFloat(0, 1),
            "default": 0.5,
            "help": "With --targets joint: the FER2013 label's share of each target (the "
            "votes' is the rest).",
        },
    ),
    (
        "--joint-labels",
        {
            "type": click.Path(),
            "help": "With --targets joint: the FER2013 folder dataset that labels the FER+ "
            "training faces (default: the fer2013 folder beside the FER+ folder).",
        },
    ),
    (
        "--logit-adjust",
        {
            "type": FiniteFloat(0, 4),
            "default": 0.0,
            "help": "Post-hoc logit adjustment folded into model.keras: rare classes' logits "
            "get TAU * log(share limit / class share) (Menon et al. 2021); 0 off. With "
            "--resume on a finished run it rewrites model.keras and the reports from the best "
            "checkpoint.",
        },
    ),
    (
        "--logit-adjust-below",
        {
            "type": FiniteFloat(0.001, 1),
            "default": 1.0,
            "help": "With --logit-adjust: only classes under this share of the training faces "
            "are lifted (1: every class, Menon's adjustment; 0.05: the tail only).",
        },
    ),
)


def _label_options(command: Any) -> Any:
    """Add :data:`LABEL_OPTIONS` to a click command, in their order."""
    for flag, keywords in reversed(LABEL_OPTIONS):
        command = click.option(flag, **keywords)(command)
    return command


def _parse_model_options(values: tuple[str, ...]) -> dict[str, object]:
    options: dict[str, object] = {}
    for item in values:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise FerEdgeError(f"--model-option: expected KEY=VALUE, got {item!r}")
        try:
            options[key] = json.loads(raw)
        except json.JSONDecodeError:
            options[key] = raw
    return options


def _list_models() -> None:
    from fer_edge.train.models import REGISTRY, build_model, count_macs

    click.echo(f"{'model':<16}{'params':>12}{'MACs':>10}  description")
    for name, family in REGISTRY.items():
        model = build_model(name, (48, 48, family.channels), 7)
        macs = count_macs(model) / 1e6
        click.echo(f"{name:<16}{model.count_params():>12,}{macs:>9.1f}M  {family.summary}")


SHIFT_HELP = "Maximum random translation as a fraction of the face [default: 0.1]."
ROTATION_HELP = "Maximum random rotation in degrees [default: 10]."
ZOOM_HELP = "Maximum random zoom in or out, a fraction (0.2: 80-120%) [default: 0.1]."
OPT_HELP = "adam, or sgd with Nesterov momentum 0.9."
DECAY_HELP = "Decoupled weight decay per step, in units of the LR (w -= lr * wd * w); 0 off."
LR_HELP = (
    "cosine: decay to 1% over --epochs; plateau: halve the LR when the selection loss has not "
    "improved for 5 epochs."
)


@click.command("train", context_settings={"show_default": True})
@click.option(
    "--data", "data", type=click.Path(), help="Dataset folder (train/val/test) or FER2013 CSV."
)
@click.option("--model", "model", default="edge", help="Registry model; see --list-models.")
@click.option("--out", "out", type=click.Path(), help="Run folder, e.g. runs/edge.")
@click.option(
    "--epochs",
    type=click.IntRange(1),
    help=f"Total epochs.  [default: {DEFAULT_EPOCHS}] With --resume: a new total for the run; "
    "a cosine schedule is re-planned to end there.",
)
@click.option(
    "--batch-size",
    type=click.IntRange(1),
    default=64,
    help="Global batch, split across all replicas.",
)
@click.option(
    "--lr",
    "learning_rate",
    type=FiniteFloat(),
    help="Peak LR [default: SGD 0.01; Adam the model's: edge 2e-3, mlp 3e-4, seed CNNs 5e-4, "
    "others 1e-3, for batch 64; not rescaled: for a k times larger batch try sqrt(k) times].",
)
@click.option("--optimizer", type=click.Choice(OPTIMIZERS), default="adam", help=OPT_HELP)
@click.option("--weight-decay", type=FiniteFloat(0, 0.1), default=0.0, help=DECAY_HELP)
@click.option("--schedule", type=click.Choice(SCHEDULES), default="cosine", help=LR_HELP)
@click.option(
    "--patience",
    type=click.IntRange(0),
    default=0,
    help="Early-stopping patience on selection accuracy (0: off).",
)
@click.option("--classes", help="Class subset, e.g. happy,sad,surprise,neutral or fer4.")
@click.option(
    "--select-fraction",
    type=FiniteFloat(0.01, 0.5),
    default=0.1,
    help="Share of train held out to pick the best epoch (val is never used to tune).",
)
@click.option("--eval-split", type=click.Choice(["val", "test"]), default="val")
@_label_options
@click.option("--label-smoothing", type=FiniteFloat(0, 0.5), default=0.0)
@click.option("--no-augment", is_flag=True, help="Turn off all augmentation.")
@click.option("--erase", type=FiniteFloat(0, 1), default=0.0, help="Random-erasing probability.")
@click.option("--mixup", type=FiniteFloat(0), default=0.0, help="Mixup Beta(alpha, alpha); 0 off.")
@click.option("--shift", type=FiniteFloat(0, 0.5), help=SHIFT_HELP)
@click.option("--zoom", type=FiniteFloat(0, 0.5), help=ZOOM_HELP)
@click.option("--rotation", type=FiniteFloat(0, 45), help=ROTATION_HELP)
@click.option(
    "--model-option",
    "model_option",
    multiple=True,
    metavar="KEY=VALUE",
    help="Builder option, e.g. width=0.75 (repeatable).",
)
@click.option(
    "--weights",
    type=click.Path(),
    help="Local ImageNet weights file for vgg16/resnet50/efficientnetb0.",
)
@click.option("--seed", type=int, default=0)
@click.option(
    "--strategy",
    type=click.Choice(STRATEGIES),
    help="auto: all local GPUs if there are several, else one device; mirrored: all local "
    "GPUs (or logical CPUs); multi-worker: the cluster in TF_CONFIG. With --resume: the "
    "run's, unless given.  [default: auto]",
)
@click.option(
    "--precision",
    type=click.Choice(PRECISIONS),
    default="float32",
    help="mixed: float16 on GPUs, bfloat16 Conv2D/Dense on CPUs with AVX512-BF16 or AMX; "
    "model.keras stays float32. With --resume: the run's.",
)
@click.option(
    "--teacher",
    "teacher",
    multiple=True,
    type=click.Path(),
    metavar="MODEL",
    help="Distil from this .keras or .tflite model (repeatable: an ensemble, probabilities "
    "averaged); it predicts every training face once, before the first epoch.",
)
@click.option(
    "--distill-alpha",
    type=FiniteFloat(0, 1),
    default=0.5,
    help="With --teacher: weight of the label loss; the rest goes to the teachers' soft targets.",
)
@click.option(
    "--distill-temperature",
    type=FiniteFloat(0.1, 100),
    default=4.0,
    help="With --teacher: softening temperature of teacher and student.",
)
@click.option(
    "--teacher-tta",
    type=click.Choice(["none", "flip"]),
    default="flip",
    help="With --teacher: the teachers' test-time augmentation.",
)
@click.option(
    "--recrop",
    type=FiniteFloat(0, 1),
    default=0.0,
    help="Share of training faces shown each epoch as fer-edge run cuts them (YuNet box and "
    "crop, on an upscaled copy) instead of their dataset framing; 0 off.",
)
@click.option(
    "--init",
    type=click.Path(),
    metavar="MODEL",
    help="Fine-tune: start from this trained .keras model (same --model, same labels).",
)
@click.option("--recipe", type=click.Choice(sorted(RECIPES)), help=recipe_help())
@click.option("--resume", is_flag=True, help="Continue the interrupted run in --out.")
@click.option("--list-models", is_flag=True, help="List the registry with params and MACs.")
@click.pass_context
def train_cmd(
    ctx: click.Context,
    recipe: str | None,
    list_models: bool,
    resume: bool,
    no_augment: bool,
    erase: float,
    mixup: float,
    shift: float | None,
    zoom: float | None,
    rotation: float | None,
    model_option: tuple[str, ...],
    teacher: tuple[str, ...],
    distill_alpha: float,
    distill_temperature: float,
    teacher_tta: str,
    **kwargs: object,
) -> None:
    """Train a model and write model.keras, metrics.json, history.json and plots to --out.

    \b
    Examples:
      fer-edge train --data ../shared/data/fer2013 --model edge --epochs 60 --out runs/edge
      fer-edge train --data ../shared/data/fer2013 --recipe fer2013 --out runs/default
      fer-edge train --data D --out runs/kd --teacher runs/a/model.keras --teacher b.tflite
    Ctrl-C keeps the last finished epoch; continue with --resume.
    """
    if list_models:
        _list_models()
        return
    given = {"shift": shift, "zoom": zoom, "rotation": rotation}
    geometry = {name: value for name, value in given.items() if value is not None}
    if no_augment and geometry:
        raise FerEdgeError(f"--{next(iter(geometry))}: does not apply with --no-augment")
    if recipe is not None:
        if resume:
            raise FerEdgeError("--recipe starts a run; --resume continues one with its own flags")
        for name, value in RECIPES[recipe].flags.items():
            if ctx.get_parameter_source(name) is click.core.ParameterSource.COMMANDLINE:
                continue  # the command line wins
            if name == "erase":
                erase = float(value)
            elif name in given:
                geometry[name] = float(value)
            elif name == "model_option":
                model_option = tuple(value)
            elif name == "teacher":
                teacher = tuple(value)
            else:
                kwargs[name] = value
    from fer_edge.train.distill import DistillOptions
    from fer_edge.train.inputs import NO_AUGMENT, AugmentOptions
    from fer_edge.train.options import TrainOptions
    from fer_edge.train.runfolder import load_options_for_resume
    from fer_edge.train.trainer import train

    if not kwargs["out"]:
        raise FerEdgeError("--out is required (the run folder, e.g. runs/edge)")
    if resume and teacher:
        raise FerEdgeError("--teacher starts a run; --resume continues one with its teachers")
    if resume:
        options = load_options_for_resume(str(kwargs["out"]))
        # The folder named here, even if the run was moved or copied (a worker's copy).
        options = dataclasses.replace(options, out=str(kwargs["out"]))
        epochs = kwargs["epochs"]
        if isinstance(epochs, int):
            options = dataclasses.replace(options, epochs=epochs)
        if kwargs["strategy"]:
            # Hardware may change between sessions; the precision is part of the checkpoint.
            options = dataclasses.replace(options, strategy=str(kwargs["strategy"]))
        # Applied when the run is finished, so a finished run can be adjusted anew.
        typed = click.core.ParameterSource.COMMANDLINE
        if ctx.get_parameter_source("logit_adjust") is typed:
            options = dataclasses.replace(options, logit_adjust=float(kwargs["logit_adjust"]))  # type: ignore[arg-type]
        if ctx.get_parameter_source("logit_adjust_below") is typed:
            below = float(kwargs["logit_adjust_below"])  # type: ignore[arg-type]
            options = dataclasses.replace(options, logit_adjust_below=below)
    else:
        kwargs["strategy"] = kwargs["strategy"] or "auto"
        kwargs["epochs"] = kwargs["epochs"] or TrainOptions.epochs
        if not kwargs["data"]:
            raise FerEdgeError("--data is required (a dataset folder or FER2013 CSV)")
        augment = (
            NO_AUGMENT if no_augment else AugmentOptions(erase=erase, mixup=mixup, **geometry)  # type: ignore[arg-type]
        )
        model_options = _parse_model_options(model_option)
        distill = (
            DistillOptions(teacher, distill_alpha, distill_temperature, teacher_tta)
            if teacher
            else None
        )
        options = TrainOptions(
            augment=augment,
            model_options=model_options,
            distill=distill,
            **kwargs,  # type: ignore[arg-type]
        )
    result = train(options, resume=resume)
    if result is None:
        click.echo("this worker is done; the chief writes the run folder")
        return
    line = f"{options.model}: best epoch {result.best_epoch}/{result.epochs_run}, "
    line += f"{result.params:,} params, {result.macs / 1e6:.1f} M MACs, "
    line += f"{result.wall_time_s / 60:.1f} min"
    if result.metrics:
        line += f"; {options.eval_split} accuracy {result.metrics.accuracy:.2%}, "
        line += f"macro F1 {result.metrics.macro_f1:.3f}"
    click.echo(line)
    click.echo(f"wrote {result.out}/ (model.keras, metrics.json, history.json, *.png)")


@click.command("eval")
@click.argument("model_path", metavar="MODEL", type=click.Path())
@click.option(
    "--data",
    required=True,
    type=click.Path(),
    help="Dataset folder, FER2013 CSV or FER+ folder (scored against the ten-vote majority; "
    "faces without one are counted, not scored).",
)
@click.option(
    "--split", type=click.Choice(["train", "val", "test"]), default="val", show_default=True
)
@click.option(
    "--tta",
    type=click.Choice(["none", "flip"]),
    help="Test-time augmentation: flip averages the face and its mirror image "
    "[default: the model card's choice; none for .keras].",
)
@click.option("--json", "json_out", type=click.Path(), help="Also write the metrics as JSON.")
def eval_cmd(model_path: str, data: str, split: str, tta: str | None, json_out: str | None) -> None:
    """Evaluate a saved model (.keras or .tflite, or a bundled one: default, fer2013) on a split.

    Prints accuracy, balanced recall, macro F1, per-class precision/recall/F1 and the
    confusion matrix, naming the label set (fer2013 or ferplus) they were measured against.
    """
    from fer_edge.evaluate import evaluate_model, format_metrics
    from fer_edge.outputs import check_outputs

    # Before the evaluation: an unwritable --json, or one naming the model, costs no run.
    check_outputs([("--json", json_out)], [("MODEL", model_path), ("--data", data)])
    evaluation = evaluate_model(model_path, data, split, tta)
    metrics = evaluation.metrics
    count = evaluation.unscored
    unscored = f"; {count} faces without a usable majority not scored" if count else ""
    title = f"{model_path} on {evaluation.label_set} {split}{unscored}"
    click.echo(format_metrics(metrics, title=title))
    if json_out:
        from fer_edge.atomic import write_json

        write_json(json_out, metrics.to_dict(), "--json")
