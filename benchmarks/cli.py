"""``fer-edge bench``: a thin click command over :func:`fer_edge.bench.measure.bench`.

Never imports TensorFlow (unless ``--runtime tf`` asks for it): it runs on a Pi with only the
device extra.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Any

import click

from fer_edge.clitypes import FiniteFloat, option_flag
from fer_edge.errors import FerEdgeError
from fer_edge.outputs import check_outputs
from fer_edge.runtime import check_threads

#: Report options and their flags, checked before any model runs.
OUTPUTS = {"json_path": "--json", "markdown": "--markdown", "plot": "--plot"}


def _path(value: str | None) -> Path | None:
    return Path(value) if value else None


def _inputs(options: dict[str, Any]) -> list[tuple[str, str | Path | None]]:
    """Return every file the bench reads: no report may replace one."""
    models: list[tuple[str, str | Path | None]] = []
    for model in options["models"]:
        folder = Path(model)
        files = sorted(folder.glob("*.tflite")) if folder.is_dir() else [folder]
        models += [("MODELS", path) for path in files]
    singles = ("baseline", "config", "source", "loop_model", "detector_model")
    return [
        *models,
        *(("--data", path) for path in options["data"]),
        *((option_flag(key), options[key]) for key in singles),
    ]


def _config(options: dict[str, Any]) -> Any:
    """Build the benchmark config: defaults, then ``--config``, then explicit flags."""
    from fer_edge.bench.config import BenchConfig, load_config, parse_int_list, parse_name_list

    config = load_config(options["config"]) if options["config"] else BenchConfig()
    overrides: dict[str, Any] = {}
    if options["threads"]:
        overrides["threads"] = parse_int_list(options["threads"], "--threads")
        for threads in overrides["threads"]:
            check_threads(threads)
    if options["runtime"]:
        overrides["runtimes"] = parse_name_list(options["runtime"])
        if not overrides["runtimes"]:
            raise FerEdgeError("--runtime: empty runtime list")
    if options["tta"]:
        overrides["tta"] = parse_name_list(options["tta"])
        if not overrides["tta"]:
            raise FerEdgeError("--tta: empty list")
    for key in ("warmup", "repeats", "limit", "crop_size", "min_accuracy", "min_agreement"):
        if options[key] is not None:
            overrides[key] = options[key]
    # A bad value raises naming its field, which the CLI prints as the flag.
    return dataclasses.replace(config, **overrides)


@click.command("bench")
@click.argument("models", nargs=-1, type=click.Path())
@click.option(
    "--data",
    type=click.Path(),
    multiple=True,
    help="Dataset folder, FER2013 CSV or FER+ folder to score on; repeat it to score two label "
    "sets in one run (e.g. fer2013 and ferplus): the first fills the table's accuracy column, "
    "each gets accuracy, balanced recall and per-class recall rows.",
)
@click.option(
    "--split",
    type=click.Choice(["train", "val", "test"]),
    default="val",
    show_default=True,
    help="Split of --data to score.",
)
@click.option("--threads", help="Comma list of interpreter thread counts, e.g. 1,2.")
@click.option(
    "--runtime",
    help="auto, litert, tflite_runtime or tf; a comma list compares them side by side.",
)
@click.option(
    "--tta",
    help="Test-time augmentation modes, e.g. none,flip: a +flip row per model shows the "
    "accuracy gain and the per-face cost of mirroring.",
)
@click.option("--baseline", type=click.Path(), help="Float model to compare with, where no card.")
@click.option(
    "--config",
    help="A shipped configuration by name (default, ci, fer2013-val, peers, pi4) or a JSON file.",
)
@click.option("--warmup", type=int, help="Untimed calls per model before timing.")
@click.option("--repeats", type=int, help="Timed calls per model, runtime and thread count.")
@click.option("--limit", type=int, help="Score a seeded sample of at most N images.")
@click.option("--crop-size", type=int, help="End-to-end input crop size in pixels (0: 48 gray).")
@click.option(
    "--min-accuracy", type=FiniteFloat(), help="Fail if any model scores below this (0-1)."
)
@click.option(
    "--min-agreement", type=FiniteFloat(), help="Fail if a model agrees with its float parent less."
)
@click.option("--delegate", type=click.Choice(["edgetpu"]), help="Run on a Coral Edge TPU.")
@click.option("--json", "json_path", type=click.Path(), help="Write the full report as JSON.")
@click.option("--markdown", type=click.Path(), help="Write the report as Markdown.")
@click.option("--plot", type=click.Path(), help="Write an accuracy vs latency PNG.")
@click.option(
    "--pipeline",
    is_flag=True,
    help="Bench the run loop (capture, detect, classify, output; as fer-edge run) on --source "
    "instead of models.",
)
@click.option("--source", help="With --pipeline: a video file (or camera index) to run on.")
@click.option("--model", "loop_model", type=click.Path(), help="With --pipeline: the model.")
@click.option("--detector", help="With --pipeline: haar or yunet (as for fer-edge run).")
@click.option(
    "--detector-model", type=click.Path(), help="With --pipeline: the YuNet .tflite or .onnx."
)
@click.option("--max-frames", type=int, help="With --pipeline: stop after N frames.")
@click.option(
    "--detect-every",
    type=int,
    multiple=True,
    help="With --pipeline: --detect-every of the run; repeat it for one run each "
    "(e.g. --detect-every 1 --detect-every 10) [default: fer-edge run's].",
)
@click.option(
    "--scene",
    type=click.Path(),
    help="Bench the run loop on a scene video built from this class-folder split "
    "(e.g. ../shared/data/fer2013/val): faces found, right, false boxes, fps per setting.",
)
@click.option(
    "--settings",
    help="With --scene: comma list of PRESET[:KEY=VALUE...]; presets haar, yunet-box, "
    "yunet-aligned, full (a full-frame detection every frame), default; keys detector, crop, "
    "margin, width, threshold, smooth (0: off), every (--detect-every), roi (--roi), "
    "model (a YuNet file, or onnx: the bundled one on OpenCV's DNN) "
    "[default: haar,yunet-box,yunet-aligned,full,default].",
)
@click.option("--per-frame", type=int, help="With --scene: faces per frame [default: 1].")
@click.option("--frame-size", help="With --scene: WxH [default: 640x480].")
@click.option("--face-size", type=int, help="With --scene: pasted face side [default: 144].")
@click.option("--seed", type=int, help="With --scene: sampling and placement seed [default: 0].")
@click.option(
    "--hold", type=int, help="With --scene: frames each group of faces stays [default: 3]."
)
@click.option("--gap", type=int, help="With --scene: empty frames between faces [default: 1].")
@click.option("--clutter", is_flag=True, help="With --scene: lights and edges in the background.")
@click.option("--scene-video", type=click.Path(), help="With --scene: keep the video here.")
@click.option(
    "--rounds",
    type=int,
    help="With --scene: runs of every setting, interleaved; fps is their median [default: 3].",
)
@click.option(
    "--progress/--no-progress", default=None, help="Progress bars (default: on a terminal)."
)
def bench_cmd(**options: Any) -> None:
    """Benchmark size, accuracy, agreement and latency of TFLite MODELS.

    \b
    Every .tflite (or every file in a folder; default: the bundled models) is timed per
    runtime and thread count, invoke-only and end-to-end per face, and, with --data, scored
    on a split. int8 models are paired with their float parent through the model cards
    (or --baseline) and reported as ratios measured in the same run.

    \b
    Examples:
      fer-edge bench models/edge/ --data data/fer2013 --threads 1,2 --markdown bench.md
      fer-edge bench a_int8.tflite --baseline a_float.tflite --runtime litert,tf
      fer-edge bench --pipeline --model m.tflite --source clip.mp4
      fer-edge bench --scene ../shared/data/fer2013/val --limit 300 --per-frame 3
    """
    progress = sys.stderr.isatty() if options["progress"] is None else options["progress"]
    outputs = [(flag, options[key]) for key, flag in OUTPUTS.items()]
    check_outputs([*outputs, ("--scene-video", options["scene_video"])], _inputs(options))
    if options["scene"] is not None:
        _scene(options)
        return
    scene_only = (
        "settings",
        "per_frame",
        "frame_size",
        "face_size",
        "seed",
        "gap",
        "hold",
        "clutter",
        "rounds",
    )
    for flag in (*scene_only, "scene_video"):
        if options[flag] not in (None, False):
            raise FerEdgeError(f"{option_flag(flag)} only applies with --scene")
    if options["pipeline"]:
        _loop(options)
        return
    pipeline_only = ("source", "loop_model", "detector", "detector_model", "max_frames")
    for flag in (*pipeline_only, "detect_every"):
        if options[flag] not in (None, ()):
            raise FerEdgeError(f"{option_flag(flag)} only applies with --pipeline")

    from fer_edge.bench.measure import BenchOptions, bench
    from fer_edge.bench.render import format_table, write_markdown, write_plot, write_report_json

    report = bench(
        BenchOptions(
            models=tuple(Path(m) for m in options["models"]),
            data=tuple(Path(d) for d in options["data"]),
            split=options["split"],
            baseline=_path(options["baseline"]),
            config=_config(options),
            delegate=options["delegate"],
            progress=progress,
        )
    )
    # Files first: a closed stdout (``| head``) must not lose the report.
    written = []
    if options["json_path"]:
        written.append(f"JSON written to {write_report_json(report, options['json_path'])}")
    if options["markdown"]:
        written.append(f"Markdown written to {write_markdown(report, options['markdown'])}")
    if options["plot"]:
        written.append(write_plot(report, options["plot"]))
    click.echo(format_table(report))
    for line in written:
        click.echo(line)
    failures = report.floor_failures()
    if failures:
        raise FerEdgeError("accuracy floor not met: " + "; ".join(failures))


def _emit(report: Any, options: dict[str, Any]) -> None:
    """Write ``--json`` and ``--markdown``, then print the table.

    Files first: a closed stdout (``| head``) must not lose the report.
    """
    from fer_edge.atomic import write_json, write_text

    written = []
    if options["json_path"]:
        path = write_json(options["json_path"], report.to_dict(), "--json")
        written.append(f"JSON written to {path}")
    if options["markdown"]:
        path = write_text(options["markdown"], report.to_markdown(), "--markdown")
        written.append(f"Markdown written to {path}")
    click.echo(report.format())
    for line in written:
        click.echo(line)


def _loop(options: dict[str, Any]) -> None:
    """``--pipeline``: bench the run loop (not one frame's FacePipeline) on ``--source``."""
    from fer_edge.bench.loop import LoopBenchOptions, bench_loop

    if options["models"]:
        raise FerEdgeError("--pipeline takes its model from --model, not MODELS")
    for flag in ("data", "baseline", "plot", "min_accuracy", "min_agreement", "limit"):
        if options[flag] not in (None, ()):
            raise FerEdgeError(f"{option_flag(flag)} does not apply with --pipeline")
    config = _config(options)
    report = bench_loop(
        LoopBenchOptions(
            source=options["source"],
            model=_path(options["loop_model"]),
            detector=options["detector"] or "yunet",
            detector_model=_path(options["detector_model"]),
            threads=config.threads,
            runtimes=config.runtimes,
            max_frames=options["max_frames"],
            detect_every=options["detect_every"] or LoopBenchOptions.detect_every,
        )
    )
    _emit(report, options)


def _scene(options: dict[str, Any]) -> None:
    from fer_edge.bench.scene import (
        DEFAULT_SETTINGS,
        SceneBenchOptions,
        bench_scene,
        parse_frame_size,
        parse_setting,
    )

    not_scene = ("models", "pipeline", "source", "detector", "detector_model", "plot", "data")
    for flag in (*not_scene, "detect_every"):
        if options[flag]:
            raise FerEdgeError(f"{option_flag(flag)} does not apply with --scene")
    names = (options["settings"] or ",".join(DEFAULT_SETTINGS)).split(",")
    # One run per setting: the scene takes the first --threads value, if any.
    threads = _config(options).threads if options["threads"] else (None,)
    defaults = SceneBenchOptions(faces=Path(options["scene"]))
    report = bench_scene(
        dataclasses.replace(
            defaults,
            count=options["limit"] or defaults.count,
            per_frame=options["per_frame"] or defaults.per_frame,
            frame_size=parse_frame_size(options["frame_size"]) or defaults.frame_size,
            face_size=options["face_size"] or defaults.face_size,
            seed=defaults.seed if options["seed"] is None else options["seed"],
            clutter=options["clutter"],
            gap=defaults.gap if options["gap"] is None else options["gap"],
            hold=options["hold"] or defaults.hold,
            settings=tuple(parse_setting(name) for name in names if name.strip()),
            model=_path(options["loop_model"]),
            threads=threads[0],
            video=_path(options["scene_video"]),
            rounds=defaults.rounds if options["rounds"] is None else options["rounds"],
        )
    )
    _emit(report, options)
