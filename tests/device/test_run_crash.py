"""Issue 27: kill -9 a long `fer-edge run`: its outputs hold all but the last moments.

A real subprocess reading a stream of frames (a long video paced by --max-fps), killed with
SIGKILL; then the next run on the same paths cleans up the killed writer's leftovers.
"""

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from ..conftest import load_tool

ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}


@pytest.fixture(scope="module")
def stream(tmp_path_factory) -> Path:
    """A face drifting across 320x240 frames: 300 frames, 15 s at --max-fps 20."""
    faults = load_tool("faults")  # the fault loop is a tool script
    return faults.make_stream(tmp_path_factory.mktemp("stream"))


def fer_edge(*args):
    return [sys.executable, "-m", "fer_edge", *map(str, args)]


def test_kill_9_of_a_long_run_keeps_all_but_the_last_moments(tmp_path, stream, tiny_tflite):
    jsonl, csv_path, video = tmp_path / "out.jsonl", tmp_path / "out.csv", tmp_path / "out.avi"
    jsonl.write_text("old\n")
    outputs = ["--jsonl", jsonl, "--csv", csv_path, "--save", video]
    command = fer_edge("run", "-m", tiny_tflite["int8"], "-s", stream, "--max-fps", 20)
    proc = subprocess.Popen(
        [*command, *map(str, outputs), "--durable-after", "1"], env=ENV, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 60
        while jsonl.read_text() == "old\n" and time.monotonic() < deadline:
            time.sleep(0.1)  # until the run has been going a while and moved it into place
        time.sleep(1.5)
    finally:
        proc.send_signal(signal.SIGKILL)
        killed_at = time.time()
        proc.wait(timeout=10)
    lines = jsonl.read_text().splitlines(keepends=True)
    assert len(lines) > 20 and all(line.endswith("\n") for line in lines)
    frames = [json.loads(line)["frame"] for line in lines]
    assert frames == list(range(len(frames)))  # every frame, in order, up to the kill
    assert killed_at - jsonl.stat().st_mtime < 1.0  # written until the last moment
    with csv_path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert {int(r["frame"]) for r in rows} <= set(frames)
    assert max(int(r["frame"]) for r in rows) >= frames[-1] - 1  # one sink behind at most
    # The whole video exists only once finished, but its closed 1 s segments are complete
    # files: every frame reads back, and the last closed one ends about a segment before the
    # kill (the open segment's seconds are what a kill loses).
    assert not video.exists()
    parts = sorted(tmp_path.glob("out.part*.avi"))
    assert [p.name for p in parts] == [f"out.part{i:03d}.avi" for i in range(len(parts))]
    assert len(parts) >= 2
    readable = [frames_read(p) for p in parts]
    assert all(n == frames_counted(p) and n > 0 for n, p in zip(readable, parts, strict=True))
    assert killed_at - parts[-1].stat().st_mtime < 2.5
    # The saved video holds about as many frames as the JSONL, less the open segment's.
    assert sum(readable) >= len(frames) - 2.5 * 25
    leftovers = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("."))
    assert leftovers and all(".tmp.avi" in name for name in leftovers)

    # The next run on the same paths removes what the killed writer left.
    done = subprocess.run(
        [*command, *map(str, outputs), "--max-frames", "3"],
        env=ENV,
        capture_output=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    # The killed run's segments are its video: kept and reported, never silently deleted.
    kept = ["out.avi", "out.csv", "out.jsonl", *(p.name for p in parts)]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(kept)
    assert f"segments of an unfinished run are kept: out.part000.avi .. {parts[-1].name}" in (
        done.stderr.decode()
    )
    assert len(jsonl.read_text().splitlines()) == 3 and frames_read(video) == 3


def frames_read(path):
    """How many frames OpenCV decodes from ``path``, reading it through."""
    import cv2

    cap = cv2.VideoCapture(str(path))
    count = 0
    while cap.read()[0]:
        count += 1
    cap.release()
    return count


def frames_counted(path):
    """How many frames the container of ``path`` says it holds."""
    import cv2

    cap = cv2.VideoCapture(str(path))
    count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    cap.release()
    return count


def frame_result(index):
    from fer_edge.device.sources import Frame
    from fer_edge.faces import FrameResult

    return FrameResult(Frame(index, index / 10, np.zeros((24, 32, 3), np.uint8)), [])


def test_a_durable_file_goes_in_place_and_grows_there(tmp_path):
    from fer_edge.device.sinks import JsonlSink, close_sinks
    from fer_edge.errors import OutputError

    path = tmp_path / "run.jsonl"
    path.write_text("old\n")
    sink = JsonlSink(path, durable_after=0.0)
    sink.write(frame_result(0))  # due at once: moved into place
    assert sink.in_place and [json.loads(x)["frame"] for x in path.read_text().splitlines()] == [0]
    sink.write(frame_result(1))  # appended in place, no temporary file
    assert len(path.read_text().splitlines()) == 2 and os.listdir(tmp_path) == ["run.jsonl"]
    # A later failure cannot bring the old file back; the lines so far stay, whole.
    close_sinks([sink], OutputError("--csv: cannot write x (No space left on device)"))
    assert [json.loads(x)["frame"] for x in path.read_text().splitlines()] == [0, 1]
    short = JsonlSink(tmp_path / "short.jsonl", durable_after=60.0)
    short.write(frame_result(0))  # a short run stays all-or-nothing
    assert not short.in_place and not (tmp_path / "short.jsonl").exists()
    short.close()
    assert (tmp_path / "short.jsonl").read_text().count("\n") == 1


def test_a_durable_video_keeps_closed_segments_until_the_whole_is_in_place(tmp_path, monkeypatch):
    import cv2

    from fer_edge.device import sinks
    from fer_edge.errors import OutputError

    clock = [0.0]
    monkeypatch.setattr(sinks.time, "monotonic", lambda: clock[0])
    path = tmp_path / "out.mp4"
    path.write_bytes(b"old")

    def run(frames):
        sink = sinks.VideoSink(path, fps=10, durable_after=1.0)
        for i in range(frames):
            sink.write(frame_result(i))
            clock[0] += 0.25  # a segment closes after the frame that ends its second
        return sink

    sink = run(10)
    parts = sorted(p.name for p in tmp_path.glob("out.part*.mp4"))
    assert parts == ["out.part000.mp4", "out.part001.mp4"]  # the third is still open
    assert [frames_read(tmp_path / p) for p in parts] == [5, 4]
    assert path.read_bytes() == b"old"  # the old whole video stays until a clean end
    sinks.close_sinks([sink])
    assert frames_read(path) == 10 and not list(tmp_path.glob("out.part*"))
    # A failed run keeps its closed segments and the old video, like a killed one.
    path.write_bytes(b"old")
    sinks.close_sinks([run(5)], OutputError("--jsonl: cannot write x (No space left on device)"))
    assert path.read_bytes() == b"old"
    assert [p.name for p in sorted(tmp_path.glob("out.part*"))] == ["out.part000.mp4"]
    # The next run numbers its segments after them and removes only its own at the end.
    sink = run(5)
    assert (tmp_path / "out.part001.mp4").exists()
    sinks.close_sinks([sink])
    assert [p.name for p in tmp_path.glob("out.part*")] == ["out.part000.mp4"]
    assert cv2.VideoCapture(str(path)).get(cv2.CAP_PROP_FRAME_COUNT) == 5
