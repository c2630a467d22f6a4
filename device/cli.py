"""``fer-edge run``: flags in, :func:`fer_edge.device.runner.run` does the work."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from fer_edge.atomic import write_json
from fer_edge.device.detect import CROPS, DEFAULT_DETECT_WIDTH, DETECTORS
from fer_edge.device.runner import RunOptions, run
from fer_edge.device.serve import parse_address
from fer_edge.device.sinks import StatusSink
from fer_edge.errors import FerEdgeError
from fer_edge.runtime import RUNTIME_CHOICES


def parse_size(
    ctx: click.Context, param: click.Parameter, value: str | None
) -> tuple[int, int] | None:
    """Parse ``WxH`` (e.g. ``640x480``) into ``(width, height)``."""
    if value is None:
        return None
    try:
        width, height = (int(v) for v in value.lower().split("x"))
    except ValueError:
        raise click.BadParameter(f"expected WxH such as 640x480, got {value!r}") from None
    if width < 1 or height < 1:
        raise click.BadParameter(f"expected a positive WxH, got {value!r}")
    return width, height


def check_serve(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """Reject a malformed ``--serve`` before the model loads."""
    if value is not None:
        try:
            parse_address(value)
        except FerEdgeError as exc:
            raise click.BadParameter(str(exc).split(": ", 1)[-1]) from None
    return value


@click.command("run")
@click.option(
    "--model",
    "-m",
    type=click.Path(path_type=Path, dir_okay=False),
    help="A .tflite model with fer-edge metadata (float or int8). Default: the bundled model.",
)
@click.option(
    "--source",
    "-s",
    default="0",
    show_default=True,
    help="picamera, a camera index or /dev/videoN, a video, an image, a folder or a 'glob*'.",
)
@click.option("--detector", type=click.Choice(DETECTORS), default="yunet", show_default=True)
@click.option(
    "--detector-model",
    type=click.Path(path_type=Path, dir_okay=False),
    help="A YuNet .onnx file for --detector yunet [default: the bundled one].",
)
@click.option(
    "--detect-width",
    type=int,
    default=DEFAULT_DETECT_WIDTH,
    show_default=True,
    metavar="PX",
    help="Detect faces on frames scaled down to this width (0: full size); crops stay full size.",
)
@click.option(
    "--crop",
    type=click.Choice(CROPS),
    help="align: warp the landmarks onto the model's template; box: a square about the box; "
    "both: the two averaged [default: box].",
)
@click.option("--threads", type=int, help="Interpreter CPU threads (default: runtime's choice).")
@click.option("--runtime", type=click.Choice(RUNTIME_CHOICES), default="auto", show_default=True)
@click.option("--delegate", type=click.Choice(["edgetpu"]), help="Run the model on a Coral.")
@click.option(
    "--size",
    callback=parse_size,
    metavar="WxH",
    help="Camera capture size; frames from files are scaled to it.",
)
@click.option("--max-fps", type=float, help="Process at most this many frames per second.")
@click.option("--max-frames", type=int, help="Stop after this many frames.")
@click.option(
    "--margin",
    type=float,
    help="Box-crop margin per side, as a fraction of the face box (negative: inside it) "
    "[default: haar 0.02, yunet -0.075].",
)
@click.option("--min-face", default=40, show_default=True, help="Smallest face side in pixels.")
@click.option(
    "--smooth",
    "smooth_alpha",
    default=0.5,
    show_default=True,
    help="Weight of the newest frame in the per-face moving average.",
)
@click.option("--no-smooth", is_flag=True, help="Classify every frame on its own.")
@click.option("--jsonl", metavar="PATH|-", help="One JSON line per frame; '-' for stdout.")
@click.option(
    "--save", type=click.Path(path_type=Path, dir_okay=False), help="Annotated video (.mp4/.avi)."
)
@click.option("--display", is_flag=True, help="Show a window (needs a screen); q quits.")
@click.option(
    "--serve",
    metavar="[HOST:]PORT",
    callback=check_serve,
    help="Serve a live page (MJPEG stream, faces, /metrics, /healthz) on 127.0.0.1 unless "
    "HOST is given, e.g. --serve 0.0.0.0:8080 for the whole network.",
)
@click.option(
    "--summary",
    "summary_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Also write the exit summary (fps, stage timings) as JSON.",
)
def run_cmd(
    model: Path | None,
    source: str,
    detector: str,
    detector_model: Path | None,
    detect_width: int | None,
    crop: str | None,
    threads: int | None,
    runtime: str,
    delegate: str | None,
    size: tuple[int, int] | None,
    max_fps: float | None,
    max_frames: int | None,
    margin: float | None,
    min_face: int,
    smooth_alpha: float,
    no_smooth: bool,
    jsonl: str | None,
    save: Path | None,
    display: bool,
    serve: str | None,
    summary_path: Path | None,
) -> None:
    """Detect faces in frames and classify their expressions.

    Prints fps and per-stage timings (capture, detect, classify, output) to stderr at the end;
    Ctrl-C stops cleanly and still writes every output.

    \b
    Examples:
      fer-edge run -m edge_int8.tflite --source picamera --display
      fer-edge run -m edge_int8.tflite --source picamera --serve 0.0.0.0:8080
      fer-edge run -m edge_int8.tflite --source 0 --size 640x480 --jsonl -
      fer-edge run -m edge_int8.tflite --source clip.mp4 --save out.mp4 --jsonl out.jsonl
      fer-edge run -m edge_int8.tflite -s 'photos/*.jpg' --detector haar
    """
    options = RunOptions(
        model=model,
        source=source,
        detector=detector,
        detector_model=detector_model,
        detect_width=detect_width,
        crop=crop,
        threads=threads,
        runtime=runtime,
        delegate=delegate,
        size=size,
        max_fps=max_fps,
        max_frames=max_frames,
        margin=margin,
        min_face=min_face,
        smoothing=None if no_smooth else smooth_alpha,
        jsonl=jsonl,
        save=save,
        display=display,
        serve=serve,
        sinks=[StatusSink()] if sys.stderr.isatty() else [],
    )
    summary = run(options)
    click.echo(summary.format(), err=True)
    if summary_path is not None:
        write_json(summary_path, summary.to_dict())
