"""Run ``fer-edge run`` on x86 and on the emulated Pi over the same video; compare the results.

Each profile (a way to install fer-edge on a Pi, see ``install.sh``) runs twice: installed
for this x86 machine and installed for the emulated Pi. Same wheels' versions, same model,
same video, so a difference between the two comes from the platform. Needs the emulated Pi and
both installs of each profile; ``check.sh`` does everything in order.

    .venv/bin/python tools/pi_emulation/compare.py --out runs/pi-emulation

Writes into ``--out``: the model and video used, one JSONL, summary and stderr per run, and
``report.md`` / ``report.json``. Exit status: 0 when every emulated run matches its x86 run (or
crashed where ``--allow-crash`` permits), 1 otherwise.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
from agreement import Comparison, compare_runs, read_jsonl

TOOLS = Path(__file__).resolve().parent
REPO = TOOLS.parents[1]
PI_RUN = TOOLS / "pi-run.sh"
FER2013 = REPO.parent / "shared" / "data" / "fer2013"
#: The runtime that ``--runtime auto`` must pick in each profile (see install.sh).
EXPECTED_RUNTIME = {"litert": "litert", "tflite": "tflite_runtime"}
#: Table labels of the two platforms.
PLATFORMS = {"host": "x86", "pi": "Pi (qemu)"}


@dataclass
class PlatformRun:
    """One ``fer-edge run`` and what came of it.

    Attributes:
        platform: ``host`` (x86) or ``pi`` (emulated).
        profile: the install profile (``litert`` or ``tflite``).
        returncode: the exit status (negative or 128+N: killed by signal N).
        seconds: wall time of the whole command, imports and model loading included.
        summary: the ``--summary`` JSON, when the run finished.
        error: the last line the command printed on stderr, when it failed.
        comparison: for emulated runs that finished, the comparison with the x86 run.
    """

    platform: str
    profile: str
    returncode: int
    seconds: float
    summary: dict[str, Any] | None
    error: str = ""
    comparison: Comparison | None = None

    @property
    def name(self) -> str:
        """``platform-profile``, the stem of this run's output files."""
        return f"{self.platform}-{self.profile}"

    @property
    def crash_signal(self) -> str | None:
        """The signal's name when the process was killed by one (e.g. ``SIGSEGV``), else None."""
        if self.returncode < 0:
            number = -self.returncode
        elif 128 < self.returncode < 160:  # a shell reports death by signal N as 128 + N
            number = self.returncode - 128
        else:
            return None
        try:
            return signal.Signals(number).name
        except ValueError:
            return f"signal {number}"


def output_step(model: Path) -> float:
    """Return the model's output quantisation scale (one int8 step); 0.0 for a float output."""
    from fer_edge.runtime import load_runtime

    interpreter = load_runtime("auto").interpreter(model_path=str(model))
    return float(interpreter.get_output_details()[0]["quantization"][0])


def pi_run(platform: str, profile: str, *args: str) -> list[str]:
    """Return the ``pi-run.sh`` command running ``args`` with one installed profile."""
    return [str(PI_RUN), *(["--host"] if platform == "host" else []), profile, *args]


def run_fer_edge(platform: str, profile: str, args: list[str], out: Path) -> PlatformRun:
    """Run ``fer-edge run ARGS`` with one install and collect its JSONL and summary."""
    result = PlatformRun(platform, profile, 0, 0.0, None)
    jsonl, summary = out / f"{result.name}.jsonl", out / f"{result.name}.summary.json"
    for stale in (jsonl, summary):
        stale.unlink(missing_ok=True)
    env = {k: v for k, v in os.environ.items() if k != "FER_EDGE_RUNTIME"}  # test auto
    outputs = ["--jsonl", str(jsonl), "--summary", str(summary)]
    command = pi_run(platform, profile, "fer-edge", "run", *args, *outputs)
    click.echo(f"$ {' '.join(command)}", err=True)
    start = time.perf_counter()
    proc = subprocess.run(command, env=env, stderr=subprocess.PIPE, text=True, check=False)
    result.seconds = time.perf_counter() - start
    result.returncode = proc.returncode
    (out / f"{result.name}.stderr.txt").write_text(proc.stderr)
    if proc.returncode == 0 and summary.is_file():
        result.summary = json.loads(summary.read_text())
    else:
        lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
        result.error = lines[-1] if lines else f"exit status {proc.returncode}"
    return result


def describe(platform: str, profile: str) -> list[str]:
    """Return ``fer-edge --version``, the platform and the packages of one install.

    Raises:
        click.ClickException: ``fer-edge --version`` fails there.
    """
    version = subprocess.run(
        pi_run(platform, profile, "fer-edge", "--version"), capture_output=True, text=True
    )
    if version.returncode != 0:
        raise click.ClickException(
            f"{platform}/{profile}: fer-edge --version failed: {version.stderr.strip()}"
        )
    where, packages = subprocess.run(
        pi_run(platform, profile, "describe"), capture_output=True, text=True, check=True
    ).stdout.splitlines()
    return [f"{PLATFORMS[platform]} {profile}: {where}; `{version.stdout.strip()}`; {packages}"]


def verdict(run: PlatformRun, allow_crash: bool) -> str:
    """Return ``pass``, ``reference``, ``crashed ... (allowed)`` or ``FAIL: reason``."""
    if run.crash_signal and allow_crash:
        return f"crashed with {run.crash_signal} (allowed)"
    if run.returncode != 0 or run.summary is None:
        return f"FAIL: {run.crash_signal or f'exit {run.returncode}'}: {run.error}"
    got = run.summary["runtime"].split()[0]
    if got != EXPECTED_RUNTIME[run.profile]:
        return f"FAIL: --runtime auto picked {got}, expected {EXPECTED_RUNTIME[run.profile]}"
    if run.comparison is not None and not run.comparison.ok:
        return "FAIL: " + "; ".join(run.comparison.problems)
    return "reference" if run.platform == "host" else "pass"


def table(runs: list[PlatformRun], verdicts: dict[str, str]) -> str:
    """Return the runs as a Markdown table (fps and ms: emulated or x86, not Pi, speeds)."""
    rows = [
        "| platform | runtime | frames | faces | boxes identical | label agreement "
        "| max prob diff (allowed) | fps | classify ms/face | detect ms/frame | wall s "
        "| verdict |",
        "|" + "---|" * 12,
    ]
    for run in runs:
        s, c = run.summary, run.comparison
        where = f"{PLATFORMS[run.platform]} {run.profile}"
        if s is None:
            blanks = "| " * 9
            rows.append(f"| {where} {blanks}| {run.seconds:.0f} | {verdicts[run.name]} |")
            continue
        same, agree, diff = "", "", ""
        if c is not None:
            same = "yes" if c.box_mismatches == 0 else f"no ({c.box_mismatches} frames)"
            agree = f"{c.label_matches}/{c.paired} ({c.label_agreement:.1%})"
            diff = f"{c.max_prob_diff:.4f} ({c.prob_tolerance:.4f})"
        stages = s["stages"]
        rows.append(
            f"| {where} | {s['runtime']} | {s['frames']} | {s['faces']} | {same} | {agree} "
            f"| {diff} | {s['fps']:.1f} | {stages['classify']['median_ms']:.2f} "
            f"| {stages['detect']['median_ms']:.1f} | {run.seconds:.0f} | {verdicts[run.name]} |"
        )
    return "\n".join(rows)


def cross_runtime(runs: list[PlatformRun], out: Path, step: float) -> str:
    """Compare the emulated LiteRT and tflite-runtime runs with each other (information only).

    The two runtimes are different TFLite versions, so they need not agree to one int8 step;
    this line shows how far apart the two Pi installs are.
    """
    done = {r.profile for r in runs if r.platform == "pi" and r.summary is not None}
    if not {"litert", "tflite"} <= done:
        return ""
    c = compare_runs(read_jsonl(out / "pi-litert.jsonl"), read_jsonl(out / "pi-tflite.jsonl"), step)
    return (
        f"LiteRT vs tflite-runtime, both emulated: labels {c.label_matches}/{c.paired} "
        f"({c.label_agreement:.1%}), max prob diff {c.max_prob_diff:.4f} "
        f"({c.max_prob_diff / step if step else 0:.0f} int8 steps), boxes "
        f"{'identical' if c.box_mismatches == 0 else 'differ'}"
    )


def prepare_inputs(out: Path, model: Path | None, fer: Path | None) -> tuple[Path, Path, int]:
    """Return ``(model, video, frames)``, making what is not given (see :mod:`inputs`)."""
    import inputs

    # Default: a shallow model, so the check can hold x86 and aarch64 to one int8 output step.
    # Deep int8 nets (the bundled model) accumulate XNNPACK's x86-vs-ARM rounding differences
    # over their layers; docs/pi-emulation.md gives their numbers.
    if model is None:
        model = out / "tiny_int8.tflite"
        click.echo(f"training a tiny int8 model -> {model}", err=True)
        images, labels = inputs.training_set(fer / "train" if fer else None)
        inputs.train_tiny_int8(model, images, labels)
    video = out / "faces.avi"
    truth = inputs.make_video(video, inputs.face_images(fer / "val" if fer else None))
    return model, video, len(truth)


@click.command()
@click.option("--out", type=click.Path(path_type=Path, file_okay=False), required=True)
@click.option(
    "--model",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="An int8 .tflite with fer-edge metadata. Default: a tiny one trained here (the "
    "bundled model is fer_edge/models/default_int8.tflite).",
)
@click.option(
    "--fer2013",
    type=click.Path(path_type=Path, file_okay=False),
    default=FER2013,
    show_default=True,
    help="FER2013 folders (train/, val/) for the tiny model and the video; unused if missing.",
)
@click.option("--profiles", default="litert,tflite", show_default=True, help="Installs to compare.")
@click.option(
    "--allow-crash",
    default="",
    metavar="PROFILES",
    help="Profiles whose crash under emulation is reported but is no failure (e.g. litert "
    "under qemu 7.2, which segfaults in LiteRT's interpreter).",
)
def main(out: Path, model: Path | None, fer2013: Path, profiles: str, allow_crash: str) -> None:
    """Compare `fer-edge run` on x86 with the same install on the emulated Pi."""
    names = [p.strip() for p in profiles.split(",") if p.strip()]
    unknown = sorted(set(names) - set(EXPECTED_RUNTIME))
    if unknown or not names:
        raise click.BadParameter(
            f"unknown profiles {unknown} (known: {', '.join(EXPECTED_RUNTIME)})",
            param_hint="--profiles",
        )
    allowed = {p.strip() for p in allow_crash.split(",") if p.strip()}
    out.mkdir(parents=True, exist_ok=True)
    fer = fer2013 if (fer2013 / "train").is_dir() and (fer2013 / "val").is_dir() else None
    model, video, frames = prepare_inputs(out, model, fer)
    step = output_step(model)
    # Haar, as this check was made and documented for: boxes must agree to the pixel, and
    # YuNet's float network may round a box differently on ARM (not checked here yet).
    args = ["--model", str(model), "--source", str(video), "--no-smooth", "--detector", "haar"]

    runs: list[PlatformRun] = []
    details: list[str] = []
    for profile in names:
        details += describe("host", profile) + describe("pi", profile)
        reference = run_fer_edge("host", profile, args, out)
        emulated = run_fer_edge("pi", profile, args, out)
        if reference.summary is not None and emulated.summary is not None:
            emulated.comparison = compare_runs(
                read_jsonl(out / f"{reference.name}.jsonl"),
                read_jsonl(out / f"{emulated.name}.jsonl"),
                step,
            )
        runs += [reference, emulated]

    verdicts = {r.name: verdict(r, r.platform == "pi" and r.profile in allowed) for r in runs}
    faces = "astronaut + FER2013 val" if fer else "astronaut"
    text = "\n".join(
        [
            f"model: {model.name}, int8 output step {step:.5f}; video: {video.name}, {frames} "
            f"frames of {faces} faces; fer-edge run --no-smooth, --runtime auto",
            "",
            *(f"- {line}" for line in details),
            "",
            table(runs, verdicts),
            "",
            *filter(None, [cross_runtime(runs, out, step)]),
            "fps and ms are emulated (or x86) speeds, not Raspberry Pi speeds.",
        ]
    )
    (out / "report.md").write_text(text + "\n")
    report = {
        "model": str(model),
        "int8_step": step,
        "video_frames": frames,
        "details": details,
        "runs": [
            {
                "platform": r.platform,
                "profile": r.profile,
                "returncode": r.returncode,
                "seconds": round(r.seconds, 2),
                "summary": r.summary,
                "comparison": r.comparison.to_dict() if r.comparison else None,
                "verdict": verdicts[r.name],
            }
            for r in runs
        ],
    }
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    click.echo(text)
    failed = [name for name, v in verdicts.items() if v.startswith("FAIL")]
    if failed:
        raise click.ClickException(f"emulated Pi check failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
