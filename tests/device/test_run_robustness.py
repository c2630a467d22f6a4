"""`fer-edge run` against bad flags, bad outputs, unreadable inputs and signals (issue 16).

Every output either holds a complete file or is left as it was; every bad value is a one-line
error before the first frame; nothing hangs. Subprocesses where only a fresh process shows the
behaviour (exit codes, fd-level stderr, a crash or a hang).
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from fer_edge.bench.facevideo import compose_frames, read_frames, write_video
from fer_edge.cli import main
from fer_edge.device.runner import RunOptions, run
from fer_edge.device.sinks import VideoSink
from fer_edge.errors import FerEdgeError
from fer_edge.faces import Frame, FrameResult

FACE = Path(__file__).resolve().parents[1] / "data" / "astronaut_face.png"


def astronaut() -> np.ndarray:
    return cv2.imread(str(FACE), cv2.IMREAD_GRAYSCALE)


@pytest.fixture(scope="module")
def face_video(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("video") / "faces.mp4"
    write_video(path, compose_frames([astronaut()] * 4, face_size=200, hold=3), 10.0)
    return path


def cli(*args, **kwargs):
    return CliRunner(**kwargs).invoke(main, [*map(str, args)])


def one_line_error(result, *fragments):
    assert result.exit_code not in (0, None), result.output
    assert "Traceback" not in result.output, result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error")]
    assert len(errors) == 1, result.stderr
    for fragment in fragments:
        assert fragment in errors[0], errors[0]


def fer_edge(*args, timeout=120, **kwargs) -> subprocess.CompletedProcess:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.run(
        [sys.executable, "-m", "fer_edge", *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        **kwargs,
    )


def no_temporaries(folder: Path) -> None:
    assert [p.name for p in folder.glob(".*")] == []


class Recorder:
    """A sink that counts the frames it is given."""

    def __init__(self):
        self.frames = 0

    def write(self, result):
        self.frames += 1

    def close(self):
        pass


# --- 1. a failed --save never replaces the user's file -------------------------------------


def test_a_writer_that_cannot_open_keeps_the_existing_video_and_jsonl(tmp_path, tiny_tflite):
    # MPEG-4 allows at most 8191 px a side, so OpenCV cannot open an .mp4 writer for this.
    big = tmp_path / "big.png"
    cv2.imwrite(str(big), np.full((64, 8200, 3), 120, np.uint8))
    keep = tmp_path / "keep.mp4"
    write_video(keep, compose_frames([astronaut()], face_size=200), 10.0)
    before = keep.read_bytes()
    jsonl = tmp_path / "keep.jsonl"
    jsonl.write_text('{"frame": 0, "t": 0.0, "faces": []}\n')
    result = cli("run", "-m", tiny_tflite["int8"], "-s", big, "--save", keep, "--jsonl", jsonl)
    one_line_error(result, "--save", "8200x64")
    assert keep.read_bytes() == before
    assert jsonl.read_text() == '{"frame": 0, "t": 0.0, "faces": []}\n'
    no_temporaries(tmp_path)


def test_video_sink_commits_only_a_file_it_opened_and_filled(tmp_path):
    keep = tmp_path / "keep.mp4"
    keep.write_bytes(b"the user's video")
    sink = VideoSink(keep, 10.0)
    with pytest.raises(FerEdgeError, match="--save"):
        sink.write(FrameResult(Frame(0, 0.0, np.zeros((64, 8200, 3), np.uint8)), []))
    sink.close()
    assert keep.read_bytes() == b"the user's video"
    no_temporaries(tmp_path)


# --- 3. non-finite numbers, and no unchecked fps reaches a writer --------------------------


@pytest.mark.parametrize(
    "args",
    [
        ("run", "--max-fps", "inf"),
        ("run", "--max-fps", "nan"),
        ("run", "--margin", "nan"),
        ("run", "--smooth", "inf"),
        ("train", "--lr", "nan"),
        ("train", "--mixup", "inf"),
        ("train", "--select-fraction", "nan"),
        ("train", "--erase", "nan"),
        ("convert", "x.keras", "--data", ".", "--lr", "inf"),
        ("convert", "x.keras", "--data", ".", "--prune", "nan"),
        ("bench", "--min-accuracy", "nan"),
        ("bench", "--min-agreement", "-inf"),
    ],
)
def test_non_finite_float_flags_are_refused(args):
    flag = next(a for a in args if a.startswith("--") and a not in ("--data",))
    result = cli(*args)
    assert result.exit_code == 2, result.output
    assert flag in result.output and "finite" in result.output, result.output


def test_max_fps_inf_with_save_exits_at_once(tmp_path, tiny_tflite):
    out = tmp_path / "out.mp4"
    proc = fer_edge(
        "run", "-m", tiny_tflite["int8"], "-s", FACE, "--max-fps", "inf", "--save", out,
        timeout=60,
    )  # fmt: skip
    assert proc.returncode == 2 and "--max-fps" in proc.stderr
    assert not out.exists()
    no_temporaries(tmp_path)


@pytest.mark.parametrize("fps", [float("inf"), float("nan"), 0.0, -5.0])
def test_video_sink_refuses_a_bad_frame_rate(tmp_path, fps):
    with pytest.raises(FerEdgeError, match="--save"):
        VideoSink(tmp_path / "v.mp4", fps)
    no_temporaries(tmp_path)


@pytest.mark.parametrize(("fps", "name"), [(1e6, "fast.mp4"), (0.01, "slow.avi")])
def test_video_sink_keeps_a_finite_frame_rate_in_the_writers_range(tmp_path, fps, name):
    sink = VideoSink(tmp_path / name, fps)
    for i in range(3):
        sink.write(FrameResult(Frame(i, i / fps, np.full((120, 160, 3), 40 * i, np.uint8)), []))
    sink.close()
    assert len(read_frames(tmp_path / name)) == 3


# --- 4. every output path is checked before the first frame --------------------------------


def test_jsonl_naming_a_folder_fails_before_the_first_frame(tmp_path, tiny_tflite, face_video):
    folder = tmp_path / "results"
    folder.mkdir()
    recorder = Recorder()
    with pytest.raises(FerEdgeError, match="--jsonl: .*results is a folder"):
        run(RunOptions(model=tiny_tflite["int8"], source=str(face_video), jsonl=str(folder),
                       sinks=[recorder]))  # fmt: skip
    assert recorder.frames == 0
    one_line_error(
        cli("run", "-m", tiny_tflite["int8"], "-s", face_video, "--jsonl", folder), "--jsonl"
    )
    assert list(folder.iterdir()) == []


@pytest.mark.parametrize("flag", ["--jsonl", "--save", "--summary"])
def test_output_under_a_file_fails_before_the_first_frame(tmp_path, tiny_tflite, face_video, flag):
    blocker = tmp_path / "blocker"
    blocker.write_text("a file, not a folder")
    target = blocker / ("out.mp4" if flag == "--save" else "out.json")
    result = cli("run", "-m", tiny_tflite["int8"], "-s", face_video, flag, target)
    one_line_error(result, flag, "blocker")
    assert "fps" not in result.stderr  # no run happened, so no summary either
    assert blocker.read_text() == "a file, not a folder"


def test_output_naming_a_special_file_is_refused(tmp_path, tiny_tflite, face_video):
    # An atomic rename would replace a device or a pipe with a plain file (as root even
    # /dev/null), so only regular files are outputs. A FIFO stands in for the device here.
    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)
    one_line_error(
        cli("run", "-m", tiny_tflite["int8"], "-s", face_video, "--jsonl", pipe),
        "--jsonl",
        "not a regular file",
    )
    assert pipe.is_fifo()


# --- 6. sizes and thread counts are bounded ------------------------------------------------


def test_huge_size_is_a_one_line_error(tiny_tflite, face_video):
    one_line_error(
        cli("run", "-m", tiny_tflite["int8"], "-s", face_video, "--size", "100000x100000"),
        "--size",
    )


def test_huge_thread_count_is_a_one_line_error_not_a_crash(tiny_tflite, face_video):
    proc = fer_edge("run", "-m", tiny_tflite["int8"], "-s", face_video, "--threads", 100000)
    assert proc.returncode == 1, (proc.returncode, proc.stderr[-2000:])
    assert proc.stderr.strip().splitlines()[-1].startswith("Error: --threads")
    assert "Traceback" not in proc.stderr


# --- 8. a missing Coral is one line, no traceback from the delegate's destructor ----------


def test_edgetpu_without_a_coral_is_one_clean_line(tiny_tflite):
    proc = fer_edge("run", "-m", tiny_tflite["int8"], "-s", FACE, "--delegate", "edgetpu")
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: --delegate edgetpu"), proc.stderr


# --- 10. exit codes, unreadable inputs, decoder noise --------------------------------------


# The interrupted run's exit code (130 / 143) is checked by test_device_run's signal test.


def test_a_folder_of_only_corrupt_images_fails_and_keeps_the_old_jsonl(tmp_path, tiny_tflite):
    folder = tmp_path / "shots"
    folder.mkdir()
    for i in range(3):
        (folder / f"{i}.jpg").write_bytes(b"\xff\xd8 not really a jpeg " + bytes([i]) * 50)
    jsonl = tmp_path / "out.jsonl"
    jsonl.write_text("old results\n")
    proc = fer_edge("run", "-m", tiny_tflite["int8"], "-s", folder, "--jsonl", jsonl)
    assert proc.returncode == 1, proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("Error: --source") and "3 skipped" in last, proc.stderr
    assert jsonl.read_text() == "old results\n"
    no_temporaries(tmp_path)


@pytest.fixture(scope="module")
def damaged_inputs(tmp_path_factory) -> tuple[Path, Path]:
    """A folder with a half-truncated JPEG among good ones, and an .mp4 with flipped bytes."""
    root = tmp_path_factory.mktemp("damaged")
    folder = root / "shots"
    folder.mkdir()
    frames = list(compose_frames([astronaut()] * 3, frame_size=(320, 240), face_size=110))
    for i, frame in enumerate(frames):
        cv2.imwrite(str(folder / f"{i}.jpg"), frame.image)
    data = (folder / "2.jpg").read_bytes()
    (folder / "2.jpg").write_bytes(data[: len(data) // 2])
    video = root / "damaged.mp4"
    rng = np.random.default_rng(0)
    noisy = [
        type(f)(np.clip(f.image + rng.integers(0, 60, f.image.shape), 0, 255).astype(np.uint8),
                f.boxes, f.faces)
        for f in compose_frames([astronaut()] * 10, frame_size=(320, 240), face_size=110, hold=3)
    ]  # fmt: skip
    write_video(video, noisy, 10.0)
    raw = bytearray(video.read_bytes())
    for i in range(len(raw) // 4, 3 * len(raw) // 4, 211):
        raw[i] ^= 0x5A
    video.write_bytes(bytes(raw))
    return folder, video


@pytest.mark.parametrize("which", [0, 1])
def test_decoder_noise_is_quiet_and_damaged_frames_are_counted(tiny_tflite, damaged_inputs,
                                                              tmp_path, which):  # fmt: skip
    source = damaged_inputs[which]
    summary = tmp_path / "summary.json"
    proc = fer_edge("run", "-m", tiny_tflite["int8"], "-s", source, "--summary", summary)
    assert proc.returncode == 0, proc.stderr
    noise = [
        line
        for line in proc.stderr.splitlines()
        if "JPEG" in line or " @ 0x" in line or "WARN" in line or "ERROR" in line
    ]
    assert noise == [], noise
    report = json.loads(summary.read_text())
    assert report["frames"] > 0
    if which == 0:  # libjpeg's complaints are counted; FFmpeg conceals damage in the video
        assert report["damaged"] == 1 and "1 damaged" in proc.stderr
