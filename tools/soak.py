"""Soak: over 20,000 frames through ``fer-edge run`` with JSONL and the live view, RSS sampled.

The run's timing samples are bounded at 20,000 per stage (``fer_edge.timing``), so a
run past that shows whether anything else grows. A stream viewer stays connected the whole
time (the live view encodes every frame) and ``/metrics`` is polled twice a second, which
also gives the frame count each RSS sample belongs to. Growth is the peak RSS after warm-up
over the RSS at the end of warm-up.

Usage (from the repository root, with the device extra installed)::

    python tools/soak.py [--frames 22000] [--out runs/soak] [--max-growth 0.05]

Prints the figures (and writes ``soak.json`` into ``--out``); exits 1 if growth is over
``--max-growth`` or the run failed.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
FACE = HERE.parent / "tests" / "data" / "astronaut_face.png"
#: The face jumps to a new place every HOLD frames (drifting in between): tracks come and go.
HOLD = 4
FRAME_SIZE = (112, 112)  # one grid cell: compose_frames splits wider frames
FACE_SIZE = 80


@dataclass(frozen=True)
class SoakResult:
    """What a soak run measured.

    Attributes:
        frames: frames the run processed (from its exit summary).
        jsonl_lines: lines in its JSONL (must equal ``frames``).
        seconds: wall time of the run, startup included.
        warmup_frames: frames after which RSS is taken as the baseline.
        rss_warm_mb: RSS at the end of warm-up.
        rss_peak_mb: the largest RSS after warm-up.
        rss_final_mb: the last RSS sample.
        growth: ``rss_peak / rss_warm - 1``.
        growth_past_bound: the same from the first sample past the timing-sample bound
            (``None`` if the run did not get past it); the samples fill until then.
        samples: ``(frames, RSS MB)`` pairs taken.
        encoded: frames the live view encoded for the viewer.
        returncode: the run's exit status.
    """

    frames: int
    jsonl_lines: int
    seconds: float
    warmup_frames: int
    rss_warm_mb: float
    rss_peak_mb: float
    rss_final_mb: float
    growth: float
    growth_past_bound: float | None
    samples: list[tuple[int, float]]
    encoded: int
    returncode: int


def make_video(path: Path, frames: int) -> Path:
    """Write a ``frames``-long video of one face drifting about a small frame."""
    import cv2

    from fer_edge.bench.facevideo import compose_frames, write_video

    face = cv2.imread(str(FACE), cv2.IMREAD_GRAYSCALE)
    if face is None:
        raise FileNotFoundError(FACE)
    groups = -(-frames // HOLD)
    composed = compose_frames(
        [face] * groups, frame_size=FRAME_SIZE, face_size=FACE_SIZE, hold=HOLD, jitter=2
    )
    write_video(path, composed, 30.0)
    return path


def rss_mb(pid: int) -> float | None:
    """Return the resident set size of ``pid`` in MB (``None`` once it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        return None
    return None


def _watch_stream(port: int, stop: threading.Event) -> None:
    """Keep one MJPEG viewer reading until ``stop`` (or the server goes)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(b"GET /stream.mjpg HTTP/1.0\r\n\r\n")
            while not stop.is_set() and sock.recv(65536):
                pass
    except OSError:
        pass


def _metrics(url: str) -> dict | None:
    try:
        with urllib.request.urlopen(url + "metrics", timeout=5) as response:
            return json.load(response)
    except (OSError, ValueError):
        return None


def soak(out: Path, frames: int, warmup: float = 0.1, model: Path | None = None) -> SoakResult:
    """Run the soak in ``out`` and return its figures.

    Args:
        out: a folder for the video, the JSONL and the run's stderr.
        frames: frames to run (over 20,000 to pass the timing-sample bound).
        warmup: share of the frames before the RSS baseline is taken.
        model: a ``.tflite`` model (default: the bundled one).
    """
    out.mkdir(parents=True, exist_ok=True)
    video = out / "soak.mp4"
    if not video.exists():
        make_video(video, frames)
    jsonl, log = out / "soak.jsonl", out / "stderr.txt"
    cmd = [sys.executable, "-m", "fer_edge", "run", "-s", str(video), "--jsonl", str(jsonl)]
    cmd += ["--serve", "0", "--max-frames", str(frames)]
    if model is not None:
        cmd += ["-m", str(model)]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    started = time.monotonic()
    with log.open("w") as stderr:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=stderr, env=env)
    url = None
    while url is None and proc.poll() is None and time.monotonic() - started < 120:
        lines = [x for x in log.read_text().splitlines() if x.startswith("live view: ")]
        url = lines[0].split()[2] if lines else None
        time.sleep(0.05)
    if url is None:
        proc.kill()
        raise RuntimeError(f"the run never served its live view:\n{log.read_text()[-2000:]}")
    stop = threading.Event()
    viewer = threading.Thread(
        target=_watch_stream, args=(int(url.rsplit(":", 1)[1].strip("/")), stop), daemon=True
    )
    viewer.start()
    samples: list[tuple[int, float]] = []
    encoded = 0
    while proc.poll() is None:
        metrics, rss = _metrics(url), rss_mb(proc.pid)
        if metrics is not None and rss is not None:
            samples.append((int(metrics["frames"]), round(rss, 2)))
            encoded = int(metrics["encoded"])
        time.sleep(0.5)
    stop.set()
    viewer.join(timeout=10)
    seconds = time.monotonic() - started
    warm_at = int(frames * warmup)
    after = [rss for count, rss in samples if count >= warm_at]
    if not after:
        raise RuntimeError(f"no RSS sample after warm-up:\n{log.read_text()[-2000:]}")
    from fer_edge.timing import MAX_SAMPLES

    past = [rss for count, rss in samples if count >= MAX_SAMPLES]
    summary = [x for x in log.read_text().splitlines() if " frames from " in x]
    done = int(summary[-1].split()[0]) if summary else 0
    jsonl_lines = jsonl.read_text().count("\n") if jsonl.exists() else 0
    return SoakResult(
        frames=done,
        jsonl_lines=jsonl_lines,
        seconds=round(seconds, 1),
        warmup_frames=warm_at,
        rss_warm_mb=after[0],
        rss_peak_mb=max(after),
        rss_final_mb=after[-1],
        growth=round(max(after) / after[0] - 1.0, 4),
        growth_past_bound=round(max(past) / past[0] - 1.0, 4) if past else None,
        samples=samples,
        encoded=encoded,
        returncode=proc.returncode,
    )


def main(argv: list[str] | None = None) -> int:
    """Run the soak from the command line; return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=22_000)
    parser.add_argument("--out", type=Path, default=Path("runs/soak"))
    parser.add_argument("--max-growth", type=float, default=0.05)
    parser.add_argument("--model", type=Path, default=None)
    args = parser.parse_args(argv)
    result = soak(args.out, args.frames, model=args.model)
    report = asdict(result)
    (args.out / "soak.json").write_text(json.dumps(report, indent=1) + "\n")
    print(
        f"soak: {result.frames} frames in {result.seconds:.0f} s "
        f"(JSONL {result.jsonl_lines} lines, {result.encoded} frames encoded for the viewer); "
        f"RSS {result.rss_warm_mb:.1f} MB after {result.warmup_frames} frames, "
        f"peak {result.rss_peak_mb:.1f} MB, final {result.rss_final_mb:.1f} MB: "
        f"growth {100 * result.growth:.2f}% (limit {100 * args.max_growth:.0f}%), "
        + (
            f"{100 * result.growth_past_bound:.2f}% past the 20,000-sample bound; "
            if result.growth_past_bound is not None
            else ""
        )
        + f"{len(result.samples)} samples; exit {result.returncode}"
    )
    ok = (
        result.returncode == 0
        and result.frames == args.frames == result.jsonl_lines
        and result.growth <= args.max_growth
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
