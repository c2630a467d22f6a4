"""Issue 27: kill -9 a long `fer-edge run`: its JSONL and CSV hold all but the last moments.

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
    assert not video.exists()  # a video is valid only once finished: it stays all-or-nothing
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
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.avi", "out.csv", "out.jsonl"]
    assert len(jsonl.read_text().splitlines()) == 3


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
