"""``fer-edge run``: flags in, :func:`fer_edge.device.runner.run` does the work."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import click

from fer_edge.atomic import write_json
from fer_edge.classifier import TTA_CHOICES
from fer_edge.clitypes import FILE, FiniteFloat, runtime_option
from fer_edge.detect import CROPS, DEFAULT_DETECT_WIDTH, DETECTORS
from fer_edge.device.batch import expand_sources, run_batch
from fer_edge.device.runner import RunOptions, run
from fer_edge.device.serve import parse_address
from fer_edge.device.serveauth import TOKEN_ENV, read_token
from fer_edge.device.sinks import DURABLE_AFTER, StatusSink
from fer_edge.device.sources import DEFAULT_MAX_PIXELS, MAX_FRAME_SIDE
from fer_edge.errors import FerEdgeError, Interrupted
from fer_edge.outputs import check_outputs
from fer_edge.tracking import DEFAULT_DETECT_EVERY, DEFAULT_ROI_SIZE, ROI_SCALE


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
    if not (1 <= width <= MAX_FRAME_SIDE and 1 <= height <= MAX_FRAME_SIDE):
        raise click.BadParameter(f"each side must be 1-{MAX_FRAME_SIDE} px, got {value!r}")
    return width, height


def check_serve(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """Reject a malformed ``--serve`` before the model loads."""
    if value is not None:
        try:
            parse_address(value)
        except FerEdgeError as exc:
            raise click.BadParameter(str(exc)) from None
    return value


@click.command("run", context_settings={"show_default": True})
@click.option(
    "--model",
    "-m",
    type=FILE,
    help="A .tflite model with fer-edge metadata (float or int8), or a bundled model: default "
    "(trained on FER+'s ten-vote labels: calm faces read neutral) or fer2013 (trained on "
    "FER2013's labels, for FER2013 comparisons). [default: default]",
)
@click.option(
    "--source",
    "-s",
    "sources",
    multiple=True,
    default=["0"],
    help="picamera, a camera index or /dev/videoN, a video, an image, a folder or a 'glob*'. "
    "Repeat it, or give a glob of videos, to run several files (see --out-dir).",
)
@click.option("--detector", type=click.Choice(DETECTORS), default="yunet")
@click.option(
    "--detector-model",
    type=FILE,
    help="YuNet for --detector yunet: a .tflite (from 'python -m fer_edge.convert.yunet', on "
    "the TFLite interpreter) or the zoo's .onnx (OpenCV's DNN) [default: the bundled .tflite].",
)
@click.option(
    "--detect-width",
    type=int,
    default=DEFAULT_DETECT_WIDTH,
    metavar="PX",
    help="Detect faces on frames scaled down to this width (0: full size); crops stay full size.",
)
@click.option(
    "--detect-every",
    type=int,
    default=DEFAULT_DETECT_EVERY,
    show_default=True,
    metavar="N",
    help="Look for faces in the whole frame at least every N frames, and at once when a "
    "tracked face is lost or the picture changes outside the faces; between, detect only "
    "around each tracked face (ROI). A new face that moves is found on the frame it "
    "appears; one that appears without moving, at most N-1 frames late. 1: the whole "
    "frame every frame.",
)
@click.option(
    "--roi",
    type=int,
    default=DEFAULT_ROI_SIZE,
    show_default=True,
    metavar="PX",
    help=f"Side of the image an ROI detection runs on: a square {ROI_SCALE} times the face box, "
    "scaled to PX (a multiple of 32, 64-320).",
)
@click.option(
    "--crop",
    type=click.Choice(CROPS),
    help="align: warp the landmarks onto the model's template; box: a square about the box; "
    "both: the two averaged [default: box].",
)
@click.option(
    "--threads",
    type=int,
    help="Interpreter CPU threads of the classifier and of YuNet [default: the runtime's "
    "choice for the classifier, the usable cores up to 4 for YuNet].",
)
@runtime_option()
@click.option("--delegate", type=click.Choice(["edgetpu"]), help="Run the model on a Coral.")
@click.option(
    "--tta",
    type=click.Choice(TTA_CHOICES),
    help="Test-time augmentation: flip also classifies the mirrored face (2 invokes per face) "
    "[default: the model card's choice].",
)
@click.option(
    "--size",
    callback=parse_size,
    metavar="WxH",
    help="Camera capture size; frames from files are scaled to it.",
)
@click.option("--max-fps", type=FiniteFloat(), help="Process at most this many frames per second.")
@click.option("--max-frames", type=int, help="Stop after this many frames.")
@click.option(
    "--every",
    type=click.IntRange(min=1),
    default=1,
    metavar="N",
    help="Files: classify every Nth frame (the others are skipped fast); t stays source time.",
)
@click.option(
    "--margin",
    type=FiniteFloat(),
    help="Box-crop margin per side, as a fraction of the face box (negative: inside it) "
    "[default: haar 0.02, yunet -0.075].",
)
@click.option("--min-face", default=40, help="Smallest face side in pixels.")
@click.option(
    "--max-pixels",
    type=click.IntRange(min=1),
    default=DEFAULT_MAX_PIXELS,
    metavar="N",
    help="Images (by their header, before decoding) and video frames over N pixels are "
    "skipped and counted: 50 MP is about 150 MB decoded, which a Raspberry Pi can hold.",
)
@click.option(
    "--smooth",
    "smooth_alpha",
    type=FiniteFloat(),
    default=0.5,
    help="Weight of the newest frame in the per-face moving average.",
)
@click.option("--no-smooth", is_flag=True, help="Classify every frame on its own.")
@click.option("--jsonl", metavar="PATH|-", help="One JSON line per frame; '-' for stdout.")
@click.option(
    "--save",
    type=FILE,
    help="Annotated video (.mp4/.mov/.avi), or an annotated image (.jpg/.png) of a photo source.",
)
@click.option(
    "--csv",
    "csv_path",
    type=FILE,
    help="One row per face per frame (source, frame, t, id, box, label, score, a column per "
    "class), for pandas.read_csv.",
)
@click.option(
    "--report",
    "report_path",
    type=FILE,
    help="Write an HTML report (per-face timelines, share of time per expression) at the end.",
)
@click.option(
    "--out-dir",
    type=click.Path(path_type=Path),
    help="One set of outputs per source here: NAME.jsonl, NAME.csv, NAME.html (report) and "
    "NAME.summary.json; a source that cannot be read is reported and skipped.",
)
@click.option(
    "--durable-after",
    type=FiniteFloat(),
    default=DURABLE_AFTER,
    metavar="SECONDS",
    help="Long runs: after this many seconds the --jsonl and --csv files are moved into place "
    "and appended to there, synced every 2 s, so a crash or kill -9 loses only the last "
    "seconds (before that, and for --report, the old file stays until the run ends well). "
    "A --save video also goes to closed NAME.partNNN.EXT segments this long (at least 1 s), "
    "removed when the run ends well and kept after a kill.",
)
@click.option(
    "--save-videos",
    is_flag=True,
    help="With --out-dir: also write each source's annotated video, NAME.annotated.mp4.",
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
    "--serve-token",
    envvar=TOKEN_ENV,
    metavar="TOKEN|@FILE",
    help="The live view's credential (or read it from FILE); also from $"
    f"{TOKEN_ENV}. Off loopback it is always required: without one, a random token is "
    "printed once in the URL.",
)
@click.option(
    "--summary",
    "summary_path",
    type=FILE,
    help="Also write the exit summary (fps, stage timings) as JSON.",
)
def run_cmd(
    model: Path | None,
    sources: tuple[str, ...],
    detector: str,
    detector_model: Path | None,
    detect_width: int | None,
    detect_every: int,
    roi: int,
    crop: str | None,
    threads: int | None,
    runtime: str,
    delegate: str | None,
    tta: str | None,
    size: tuple[int, int] | None,
    max_fps: float | None,
    max_frames: int | None,
    every: int,
    margin: float | None,
    min_face: int,
    max_pixels: int,
    smooth_alpha: float,
    no_smooth: bool,
    jsonl: str | None,
    save: Path | None,
    csv_path: Path | None,
    report_path: Path | None,
    out_dir: Path | None,
    durable_after: float,
    save_videos: bool,
    display: bool,
    serve: str | None,
    serve_token: str | None,
    summary_path: Path | None,
) -> None:
    """Detect faces in frames and classify their expressions.

    Prints fps and per-stage timings (capture, detect, classify, output) to stderr at the end;
    Ctrl-C or SIGTERM stops cleanly, writes every output and exits 130 or 143. A source with no
    readable frame at all exits 1.

    \b
    Examples:
      fer-edge run -m edge_int8.tflite --source picamera --display
      fer-edge run -m edge_int8.tflite --source picamera --serve 0.0.0.0:8080
      fer-edge run -m edge_int8.tflite --source 0 --size 640x480 --jsonl -
      fer-edge run -m edge_int8.tflite --source clip.mp4 --save out.mp4 --jsonl out.jsonl
      fer-edge run -m edge_int8.tflite -s 'photos/*.jpg' --detector haar
      fer-edge run -s clip.mp4 --every 3 --csv faces.csv --report report.html
      fer-edge run -s 'videos/*.mp4' --out-dir results --save-videos
    """
    batch = expand_sources(sources)
    options = RunOptions(
        model=model,
        source=batch[0],
        detector=detector,
        detector_model=detector_model,
        detect_width=detect_width,
        detect_every=detect_every,
        roi=roi,
        crop=crop,
        threads=threads,
        runtime=runtime,
        delegate=delegate,
        tta=tta,
        size=size,
        max_fps=max_fps,
        max_frames=max_frames,
        every=every,
        margin=margin,
        min_face=min_face,
        max_pixels=max_pixels,
        smoothing=None if no_smooth else smooth_alpha,
        jsonl=jsonl,
        save=save,
        csv=csv_path,
        report=report_path,
        display=display,
        serve=serve,
        serve_token=None if serve_token is None else read_token(serve_token),
        durable_after=durable_after,
        sinks=[StatusSink()] if sys.stderr.isatty() else [],
    )
    if len(batch) > 1 or out_dir is not None:
        _run_batch(options, batch, out_dir, summary_path, save_videos)
        return
    if save_videos:
        raise FerEdgeError(
            "--save-videos: writes one video per source into --out-dir; for one source without "
            "--out-dir use --save FILE"
        )
    # Every output against every input and every other output, before the model loads.
    check_outputs([*options.outputs(), ("--summary", summary_path)], options.inputs())
    summary = run(options)
    click.echo(summary.format(), err=True)
    if summary_path is not None:
        write_json(summary_path, summary.to_dict(), "--summary")
    if summary.interrupted:
        raise Interrupted(summary.stop_signal or signal.SIGINT)
    if not summary.frames:
        raise FerEdgeError(
            f"--source: nothing readable in {summary.source} ({summary.skipped} skipped)"
        )


def _run_batch(
    options: RunOptions,
    sources: list[str],
    out_dir: Path | None,
    summary_path: Path | None,
    videos: bool,
) -> None:
    """Run several sources, one set of outputs each in ``out_dir``."""
    single = {
        "--jsonl": options.jsonl,
        "--save": options.save,
        "--csv": options.csv,
        "--report": options.report,
        "--summary": summary_path,
        "--serve": options.serve,
        "--serve-token": options.serve_token,
    }
    for flag, value in single.items():
        if value is not None:
            raise FerEdgeError(
                f"{flag}: names one output, not one per source; with several sources or "
                "--out-dir each source gets NAME.jsonl, NAME.csv, NAME.html and "
                "NAME.summary.json in --out-dir (and NAME.annotated.mp4 with --save-videos)"
            )
    if out_dir is None:
        raise FerEdgeError(f"--out-dir: {len(sources)} sources need a folder for their outputs")
    options.validate()  # once, before the first source
    batch = run_batch(options, sources, out_dir, progress=sys.stderr.isatty(), videos=videos)
    click.echo(batch.format(), err=True)
    stopped = [i.summary for i in batch.items if i.summary is not None and i.summary.interrupted]
    if stopped:
        # Like a single run: a stopped batch exits 130 (Ctrl-C) or 143 (SIGTERM).
        raise Interrupted(stopped[0].stop_signal or signal.SIGINT)
    if not batch.done:
        raise FerEdgeError(f"--source: none of the {len(sources)} sources could be read")
