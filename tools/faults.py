"""Fault loop: ``kill -9`` ``fer-edge run``, ``train``, ``convert`` and ``bench`` at random times.

For each command a complete run first makes every output once (the "old" files) and times
itself; then the same command, writing the same paths, is killed with SIGKILL at a uniformly
random moment of that duration (a little past it, so some rounds finish). After every round
each output path must hold nothing, the bytes it held before the round, or a complete file
that loads: JSON and JSONL parse, videos decode, PNGs decode, ``.tflite`` files load in the
interpreter with their metadata, ``.keras`` files are whole zip archives. For ``train`` the
checkpoint ``state.json`` names must load and hold exactly the epochs it records, and after
the last round ``--resume`` must finish the run.

``run-long`` is a long ``run`` on a stream of frames (a video paced by ``--max-fps``) with
``--jsonl``, ``--csv`` and ``--save``: its JSONL and CSV go in place after ``--durable-after``
seconds, so a kill may also leave them ``partial``: whole lines, every frame from 0 in order,
and written until less than :data:`LOSS_BOUND` seconds before the kill. The video itself stays
absent, old or complete, but a killed round leaves its closed 1 s segments
(``out.partNNN.avi``): each must decode whole (every frame its container counts) and the newest
must be closed less than :data:`LOSS_BOUND` seconds before the kill; a round that ends leaves
none of its own.

Temporary files (``.NAME.*.tmp.EXT`` beside an output) cannot be removed by a process killed
with SIGKILL; they are counted, not failed (the next write to the same output removes them).
TensorBoard's event files under ``logs/`` are append-only logs and are not checked.

Usage (from the repository root, with the dev extra installed)::

    python tools/faults.py [--out runs/faults] [--seed 0] [--only run,run-long,bench,train,convert]

(``--only`` takes any of run, run-long, bench, train, convert.) Prints one line per command
(and writes ``faults.json`` into ``--out``); exits 1 on any output that is neither absent,
old, complete nor (run-long) a valid partial file.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import subprocess
import sys
import time
import zipfile
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
FACE = HERE.parent / "tests" / "data" / "astronaut_face.png"
#: Rounds per command by default: bounded so the whole loop takes a few minutes on 2 cores.
ROUNDS = {"run": 8, "run-long": 4, "bench": 6, "train": 2, "convert": 2}
#: run-long: a partial JSONL or CSV must have been written this recently before the kill.
LOSS_BOUND = 3.0
STREAM_FRAMES, STREAM_FPS = 300, 25.0  # 12 s of stream
#: run-long: ``--durable-after``, so also the length of the video's segments.
SEGMENT_S = 1.0
EPOCHS = 3
FRAMES = 120  # of the run's video
BATCH = 27  # 7 full batches of the generated train split (189 faces): one traced shape
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}


@dataclass
class Tally:
    """What the rounds of one command did.

    Attributes:
        command: ``run``, ``bench``, ``train`` or ``convert``.
        rounds: rounds played.
        killed: rounds killed before the command exited.
        baseline_s: how long the complete run took.
        outcomes: per output kind, how often it was ``absent``, ``old`` or ``new`` (complete).
        temporaries: temporary files left behind by the kills (all rounds together).
        failures: outputs found incomplete or inconsistent, with the reason.
    """

    command: str
    rounds: int = 0
    killed: int = 0
    baseline_s: float = 0.0
    outcomes: dict[str, Counter[str]] = field(default_factory=dict)
    temporaries: int = 0
    failures: list[str] = field(default_factory=list)

    def note(self, kind: str, outcome: str) -> None:
        """Count one ``outcome`` for an output of ``kind`` (its suffix)."""
        self.outcomes.setdefault(kind, Counter())[outcome] += 1

    def line(self) -> str:
        """Return the one-line summary."""
        parts = [
            f"{kind} " + "/".join(f"{n} {state}" for state, n in sorted(counts.items()))
            for kind, counts in sorted(self.outcomes.items())
        ]
        return (
            f"{self.command}: {self.rounds} rounds, {self.killed} killed "
            f"(complete run {self.baseline_s:.1f} s); "
            + "; ".join(parts)
            + f"; {self.temporaries} temporaries left; {len(self.failures)} failures"
        )


# --- checks: is this a complete file? ---------------------------------------------------


def check_json(path: Path) -> None:
    """Raise unless ``path`` parses as JSON."""
    json.loads(path.read_text())


def check_jsonl(path: Path) -> None:
    """Raise unless every line is a whole JSON record of a frame."""
    text = path.read_text()
    if text and not text.endswith("\n"):
        raise ValueError("last line unfinished")
    for line in text.splitlines():
        record = json.loads(line)
        if not {"frame", "t", "faces"} <= set(record):
            raise ValueError(f"line without frame/t/faces: {line[:80]}")


def check_video(path: Path) -> None:
    """Raise unless OpenCV decodes a frame of ``path``."""
    import cv2

    capture = cv2.VideoCapture(str(path))
    try:
        ok, _ = capture.read()
    finally:
        capture.release()
    if not ok:
        raise ValueError("no decodable frame")


def check_png(path: Path) -> None:
    """Raise unless ``path`` decodes as an image."""
    import cv2

    if cv2.imread(str(path)) is None:
        raise ValueError("does not decode")


def check_tflite(path: Path) -> None:
    """Raise unless ``path`` has fer-edge metadata and loads in the interpreter."""
    from fer_edge.modelmeta import read_meta
    from fer_edge.runtime import load_runtime

    read_meta(path)
    load_runtime().interpreter(model_path=str(path))


def check_zip(path: Path) -> None:
    """Raise unless ``path`` is a whole zip archive (a ``.keras`` file is one)."""
    with zipfile.ZipFile(path) as archive:
        bad = archive.testzip()
        if bad is not None:
            raise ValueError(f"corrupt member {bad}")


def check_csv(path: Path) -> None:
    """Raise unless ``path`` is a header and whole rows of as many cells."""
    import csv

    text = path.read_text(encoding="utf-8")
    if not text.endswith("\n"):
        raise ValueError("last row unfinished")
    rows = list(csv.reader(text.splitlines()))
    if not rows or any(len(row) != len(rows[0]) for row in rows):
        raise ValueError("rows of different lengths")


def check_text(path: Path) -> None:
    """Raise unless ``path`` is UTF-8 text ending in a newline."""
    if not path.read_text(encoding="utf-8").endswith("\n"):
        raise ValueError("unfinished")


CHECKS: dict[str, Callable[[Path], None]] = {
    ".json": check_json,
    ".jsonl": check_jsonl,
    ".csv": check_csv,
    ".avi": check_video,
    ".mp4": check_video,
    ".png": check_png,
    ".tflite": check_tflite,
    ".keras": check_zip,
    ".md": check_text,
}


def outputs_in(folder: Path) -> list[Path]:
    """Every output file below ``folder``: not temporary, not a TensorBoard log."""
    return sorted(
        p
        for p in folder.rglob("*")
        if p.is_file() and not p.name.startswith(".") and "logs" not in p.relative_to(folder).parts
    )


def temporaries_in(folder: Path) -> int:
    """Count the temporary files (``.NAME.*.tmp*``) below ``folder``."""
    return sum(1 for p in folder.rglob(".*.tmp*") if p.is_file())


def classify(path: Path, old: bytes | None, tally: Tally) -> None:
    """Record whether ``path`` is absent, old or a new complete file; note failures."""
    kind = path.suffix
    if not path.exists():
        tally.note(kind, "absent")
        return
    data = path.read_bytes()
    if old is not None and data == old:
        tally.note(kind, "old")
        return
    try:
        CHECKS[kind](path)
    except Exception as exc:  # noqa: BLE001 - any failure to load is the finding
        tally.note(kind, "INCOMPLETE")
        tally.failures.append(f"{path.name}: {type(exc).__name__}: {exc}"[:300])
        return
    tally.note(kind, "new")


def snapshot(paths: Sequence[Path]) -> dict[Path, bytes | None]:
    """Return each path's bytes (``None`` if absent)."""
    return {p: (p.read_bytes() if p.exists() else None) for p in paths}


def play(cmd: Sequence[str], delay: float | None, log: Path) -> tuple[bool, float]:
    """Run ``cmd``; SIGKILL it after ``delay`` seconds. Return (killed, seconds)."""
    started = time.monotonic()
    with log.open("w") as stderr:
        proc = subprocess.Popen(list(cmd), stdout=subprocess.DEVNULL, stderr=stderr, env=ENV)
    try:
        proc.wait(timeout=delay)
        return False, time.monotonic() - started
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return True, time.monotonic() - started


def fer_edge(*args: object) -> list[str]:
    """Return the command line ``python -m fer_edge ARGS``."""
    return [sys.executable, "-m", "fer_edge", *map(str, args)]


def rounds_over(
    tally: Tally,
    cmd: Callable[[int], Sequence[str]],
    paths: Sequence[Path],
    rounds: int,
    rng: random.Random,
    folder: Path,
) -> None:
    """Play the baseline, then ``rounds`` killed rounds over fixed output paths.

    ``cmd(i)`` is round ``i``'s command line (``-1``: the baseline); rounds differ a little
    (fewer frames, say) so a round that finishes writes files unlike the old ones.
    """
    killed, seconds = play(cmd(-1), None, folder / "baseline.stderr.txt")
    tally.baseline_s = round(seconds, 1)
    missing = [p.name for p in paths if not p.exists()]
    if missing:
        raise RuntimeError(f"{tally.command}: the complete run made no {missing}")
    for index in range(rounds):
        before = snapshot(paths)
        killed, _ = play(cmd(index), rng.uniform(0, 1.1 * seconds), folder / f"round{index}.txt")
        tally.rounds += 1
        tally.killed += killed
        for path in paths:
            classify(path, before[path], tally)
    tally.temporaries = temporaries_in(folder)


# --- the commands -----------------------------------------------------------------------


def make_inputs(root: Path) -> tuple[Path, Path]:
    """A short face video and a small generated dataset."""
    import cv2

    from fer_edge.bench.facevideo import compose_frames, write_video
    from fer_edge.synthetic import write_folder_dataset

    video = root / "faces.mp4"
    if not video.exists():
        face = cv2.imread(str(FACE), cv2.IMREAD_GRAYSCALE)
        if face is None:
            raise FileNotFoundError(FACE)
        faces = compose_frames([face] * (FRAMES // 3), (112, 112), 80, hold=3, jitter=2)
        write_video(video, faces, 15.0)
    data = root / "data"
    if not data.exists():
        write_folder_dataset(data, {"train": 30, "val": 6})
    return video, data


def fault_run(root: Path, video: Path, rounds: int, rng: random.Random) -> Tally:
    """Kill ``fer-edge run`` writing a JSONL, a video and a summary."""
    folder = root / "run"
    folder.mkdir(exist_ok=True)
    paths = [folder / "out.jsonl", folder / "out.avi", folder / "summary.json"]
    outputs = ["--jsonl", paths[0], "--save", paths[1], "--summary", paths[2]]

    def cmd(index: int) -> list[str]:
        return fer_edge("run", "-s", video, "--max-frames", FRAMES - 1 - index, *outputs)

    tally = Tally("run")
    rounds_over(tally, cmd, paths, rounds, rng, folder)
    return tally


def make_stream(root: Path) -> Path:
    """A long video of a moving face: :data:`STREAM_FRAMES` frames, read at STREAM_FPS."""
    import cv2
    import numpy as np

    path = root / "stream.avi"
    if not path.exists():
        image = cv2.imread(str(FACE))
        if image is None:
            raise FileNotFoundError(FACE)
        face = cv2.resize(image, (120, 120))
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), 25.0, (320, 240))
        for i in range(STREAM_FRAMES):
            frame = np.full((240, 320, 3), 60, np.uint8)
            x = 20 + (i * 3) % 160
            frame[60:180, x : x + 120] = face
            writer.write(frame)
        writer.release()
    return path


def classify_durable(path: Path, old: bytes | None, killed_at: float | None, tally: Tally) -> None:
    """Like :func:`classify`, but a killed run may leave a ``partial`` file in place.

    Partial means: whole lines (rows), frames 0, 1, 2... in order, last written less than
    :data:`LOSS_BOUND` seconds before the kill.
    """
    if killed_at is None or not path.exists() or path.read_bytes() == old:
        classify(path, old, tally)
        return
    try:
        CHECKS[path.suffix](path)
        lines = path.read_text().splitlines()
        if path.suffix == ".jsonl":
            frames = [json.loads(line)["frame"] for line in lines]
            if frames != list(range(len(frames))):
                raise ValueError("frames missing or out of order")
        age = killed_at - path.stat().st_mtime
        if age > LOSS_BOUND:
            raise ValueError(f"last written {age:.1f} s before the kill")
    except Exception as exc:  # noqa: BLE001 - any failure is the finding
        tally.note(path.suffix, "INCOMPLETE")
        tally.failures.append(f"{path.name}: {type(exc).__name__}: {exc}"[:300])
        return
    tally.note(path.suffix, "partial")


def video_segments(video: Path) -> set[Path]:
    """The closed segments (``NAME.partNNN.EXT``) beside ``video``."""
    return set(video.parent.glob(f"{video.stem}.part[0-9][0-9][0-9]*{video.suffix}"))


def decoded_frames(path: Path) -> tuple[int, int]:
    """Return (frames decoded reading ``path`` through, frames its container counts)."""
    import cv2

    capture = cv2.VideoCapture(str(path))
    try:
        counted = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        decoded = 0
        while capture.read()[0]:
            decoded += 1
    finally:
        capture.release()
    return decoded, counted


def classify_segments(
    video: Path, before: set[Path], lines: int, killed_at: float | None, tally: Tally
) -> None:
    """Record the video segments one round left: ``kept`` (killed), ``none``, or a failure.

    Args:
        video: the ``--save`` path.
        before: its segments before the round (earlier kills' segments stay, by design).
        lines: the JSONL's lines after the round: about how many frames the round processed.
        killed_at: when the round was killed (``None``: it ended by itself).
        tally: where to count.
    """
    new = sorted(video_segments(video) - before)
    try:
        if killed_at is None and new:
            raise ValueError(f"a run that ended left {len(new)} of its segments")
        for part in new:
            decoded, counted = decoded_frames(part)
            if not 0 < decoded == counted:
                raise ValueError(f"{part.name}: {decoded} frames decode of {counted}")
        if new:
            age = killed_at - new[-1].stat().st_mtime if killed_at is not None else 0.0
            if age > LOSS_BOUND:
                raise ValueError(f"newest segment closed {age:.1f} s before the kill")
        elif killed_at is not None and lines > (SEGMENT_S + LOSS_BOUND) * STREAM_FPS:
            raise ValueError(f"no segment after {lines} frames")
    except Exception as exc:  # noqa: BLE001 - any failure is the finding
        tally.note("segments", "INCOMPLETE")
        tally.failures.append(f"{video.name} segments: {type(exc).__name__}: {exc}"[:300])
        return
    tally.note("segments", "kept" if new else "none")


def fault_run_long(root: Path, rounds: int, rng: random.Random) -> Tally:
    """Kill a long ``fer-edge run`` on a stream writing JSONL, CSV and a video."""
    folder = root / "run-long"
    folder.mkdir(exist_ok=True)
    stream = make_stream(root)
    paths = [folder / "out.jsonl", folder / "out.csv", folder / "out.avi"]
    outputs = ["--jsonl", paths[0], "--csv", paths[1], "--save", paths[2]]
    cmd = fer_edge(
        "run", "-m", "fer2013", "-s", stream, "--max-fps", STREAM_FPS, "--durable-after",
        SEGMENT_S,
        *outputs,
    )  # fmt: skip
    tally = Tally("run-long")
    killed, seconds = play(cmd, None, folder / "baseline.stderr.txt")
    tally.baseline_s = round(seconds, 1)
    if not all(p.exists() for p in paths):
        raise RuntimeError(f"run-long: the complete run failed: {folder / 'baseline.stderr.txt'}")
    for index in range(rounds):
        before = snapshot(paths)
        parts = video_segments(paths[2])
        # Past the startup and the first in-place move most of the time: that is the point.
        killed, _ = play(cmd, rng.uniform(0.3, 1.1) * seconds, folder / f"round{index}.txt")
        killed_at = time.time() if killed else None
        tally.rounds += 1
        tally.killed += killed
        for path in paths:
            classify_durable(path, before[path], killed_at, tally)
        lines = len(paths[0].read_bytes().splitlines()) if paths[0].exists() else 0
        classify_segments(paths[2], parts, lines, killed_at, tally)
    tally.temporaries = temporaries_in(folder)
    return tally


def fault_bench(root: Path, data: Path, rounds: int, rng: random.Random) -> Tally:
    """Kill ``fer-edge bench`` writing its JSON, Markdown and plot."""
    folder = root / "bench"
    folder.mkdir(exist_ok=True)
    paths = [folder / "bench.json", folder / "bench.md", folder / "bench.png"]

    def cmd(index: int) -> list[str]:
        return fer_edge(
            "bench", "--data", data, "--limit", 40 - index, "--repeats", 30, "--warmup", 3,
            "--threads", 1, "--runtime", "litert", "--no-progress",
            "--json", paths[0], "--markdown", paths[1], "--plot", paths[2],
        )  # fmt: skip

    tally = Tally("bench")
    rounds_over(tally, cmd, paths, rounds, rng, folder)
    return tally


def _train_cmd(data: Path, out: Path) -> list[str]:
    return fer_edge(
        "train", "--data", data, "--out", out, "--model", "edge", "--model-option", "width=0.25",
        "--epochs", EPOCHS, "--batch-size", BATCH, "--no-augment",
    )  # fmt: skip


def _check_train_state(out: Path, steps: int, tally: Tally) -> None:
    """The checkpoint state.json names must load and hold exactly its recorded epochs."""
    state_path = out / "state.json"
    if not state_path.exists():
        return
    from fer_edge.tfcompat import tf_and_keras
    from fer_edge.train.runfolder import RunPaths

    state = json.loads(state_path.read_text())
    paths = RunPaths(out)
    try:
        model = tf_and_keras()[1].models.load_model(paths.checkpoint(state, "last"))
        iterations = int(model.optimizer.iterations.numpy())
    except Exception as exc:  # noqa: BLE001
        tally.failures.append(f"state.json's checkpoint does not load: {exc}"[:300])
        return
    if iterations != state["epoch"] * steps:
        tally.failures.append(
            f"state.json says {state['epoch']} epochs, its checkpoint holds {iterations} steps"
        )
    history = json.loads((out / "history.json").read_text())
    if any(len(v) < state["epoch"] for v in history.values()):
        tally.failures.append("history.json has fewer epochs than state.json")


def fault_train(root: Path, data: Path, rounds: int, rng: random.Random) -> tuple[Tally, Path]:
    """Kill training at random; resume whatever is there; finally finish it with --resume.

    Returns the tally and the complete baseline run's ``model.keras`` (for ``convert``).
    """
    folder = root / "train"
    folder.mkdir(exist_ok=True)
    baseline, out = folder / "baseline", folder / "run"
    tally = Tally("train")
    killed, seconds = play(_train_cmd(data, baseline), None, folder / "baseline.stderr.txt")
    tally.baseline_s = round(seconds, 1)
    if not (baseline / "model.keras").exists():
        raise RuntimeError(f"train: the complete run failed: {folder / 'baseline.stderr.txt'}")
    from fer_edge.tfcompat import tf_and_keras
    from fer_edge.train.runfolder import RunPaths

    state = json.loads((baseline / "state.json").read_text())
    last = RunPaths(baseline).checkpoint(state, "last")
    steps = int(tf_and_keras()[1].models.load_model(last).optimizer.iterations.numpy()) // EPOCHS
    for index in range(rounds):
        cmd = (
            fer_edge("train", "--out", out, "--resume")
            if (out / "state.json").exists()
            else _train_cmd(data, out)
        )
        before = snapshot(outputs_in(out)) if out.exists() else {}
        killed, _ = play(cmd, rng.uniform(0, 1.1 * seconds), folder / f"round{index}.txt")
        tally.rounds += 1
        tally.killed += killed
        for path in sorted(set(before) | set(outputs_in(out) if out.exists() else [])):
            classify(path, before.get(path), tally)
        _check_train_state(out, steps, tally)
    tally.temporaries = temporaries_in(folder)
    finish = (
        fer_edge("train", "--out", out, "--resume")
        if (out / "state.json").exists()
        else _train_cmd(data, out)
    )
    play(finish, None, folder / "finish.stderr.txt")
    done = json.loads((out / "state.json").read_text()) if (out / "state.json").exists() else {}
    if done.get("epoch") != EPOCHS or not (out / "model.keras").exists():
        tally.failures.append(f"the final --resume did not finish the run: {done.get('epoch')}")
    else:
        _check_train_state(out, steps, tally)
    return tally, baseline / "model.keras"


def fault_convert(root: Path, model: Path, data: Path, rounds: int, rng: random.Random) -> Tally:
    """Kill ``fer-edge convert`` re-exporting into the folder a complete run filled."""
    folder = root / "convert"
    folder.mkdir(exist_ok=True)
    out = folder / "models"
    # The float32 export and its card: every convert writes them the same way (atomically, with
    # the card after the model), and the post-training variants would only add minutes.
    cmd = fer_edge("convert", model, "--data", data, "--out", out, "--name", "tiny")
    tally = Tally("convert")
    killed, seconds = play(cmd, None, folder / "baseline.stderr.txt")
    tally.baseline_s = round(seconds, 1)
    paths = outputs_in(out) if out.exists() else []
    if not any(p.suffix == ".tflite" for p in paths):
        raise RuntimeError(f"convert: the complete run failed: {folder / 'baseline.stderr.txt'}")
    for index in range(rounds):
        before = snapshot(paths)
        killed, _ = play(cmd, rng.uniform(0, 1.1 * seconds), folder / f"round{index}.txt")
        tally.rounds += 1
        tally.killed += killed
        for path in paths:
            classify(path, before[path], tally)
        extra = set(outputs_in(out)) - set(paths)
        tally.failures.extend(f"unexpected output {p.name}" for p in sorted(extra))
    tally.temporaries = temporaries_in(folder)
    return tally


def run_all(
    root: Path, seed: int = 0, only: Sequence[str] = tuple(ROUNDS), scale: float = 1.0
) -> list[Tally]:
    """Play the fault loop for the commands in ``only`` and return their tallies."""
    root.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    video, data = make_inputs(root)
    n = {name: max(1, math.ceil(count * scale)) for name, count in ROUNDS.items()}
    tallies = []
    if "run" in only:
        tallies.append(fault_run(root, video, n["run"], rng))
    if "run-long" in only:
        tallies.append(fault_run_long(root, n["run-long"], rng))
    if "bench" in only:
        tallies.append(fault_bench(root, data, n["bench"], rng))
    if "train" in only or "convert" in only:
        tally, model = fault_train(root, data, n["train"] if "train" in only else 0, rng)
        if "train" in only:
            tallies.append(tally)
        if "convert" in only:
            tallies.append(fault_convert(root, model, data, n["convert"], rng))
    return tallies


def main(argv: list[str] | None = None) -> int:
    """Run the fault loop from the command line; return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("runs/faults"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", default=",".join(ROUNDS))
    parser.add_argument("--scale", type=float, default=1.0, help="Multiply the round counts.")
    args = parser.parse_args(argv)
    started = time.monotonic()
    tallies = run_all(args.out, args.seed, args.only.split(","), args.scale)
    for tally in tallies:
        print(tally.line())
        for failure in tally.failures:
            print(f"  FAILED {failure}")
    print(f"fault loop: {time.monotonic() - started:.0f} s")
    report = [
        {**asdict(t), "outcomes": {k: dict(v) for k, v in t.outcomes.items()}} for t in tallies
    ]
    (args.out / "faults.json").write_text(json.dumps(report, indent=1) + "\n")
    return 1 if any(t.failures for t in tallies) else 0


if __name__ == "__main__":
    sys.exit(main())
