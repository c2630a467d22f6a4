"""`fer-edge run` end to end: real video, real OpenCV detection, real TFLite interpreter.

Nothing here depends on what the untrained tiny model predicts: the tests check the schema,
the boxes, the arithmetic and the plumbing.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from fer_edge.bench.facevideo import (
    ComposedFrame,
    background,
    compose_frames,
    found,
    read_frames,
    write_video,
)
from fer_edge.cli import main
from fer_edge.detect import Box
from fer_edge.device.runner import STAGES, RunOptions, default_model_path, run
from fer_edge.labels import FER2013_CLASSES
from fer_edge.modelmeta import ModelMeta, embed_in_tflite, read_meta
from fer_edge.preprocess import InputSpec

FACE = Path(__file__).resolve().parents[1] / "data" / "astronaut_face.png"
FPS = 10.0


def astronaut() -> np.ndarray:
    return cv2.imread(str(FACE), cv2.IMREAD_GRAYSCALE)


def read_jsonl(path):
    return [json.loads(line) for line in Path(path).read_text().splitlines()]


@pytest.fixture(scope="module")
def face_video(tmp_path_factory):
    """12 frames: the astronaut in 4 places, 3 drifting frames each."""
    path = tmp_path_factory.mktemp("video") / "faces.mp4"
    truth = write_video(path, compose_frames([astronaut()] * 4, face_size=200, hold=3), FPS)
    return path, truth


@pytest.fixture(scope="module")
def flicker_video(tmp_path_factory):
    """8 frames of one face drifting slowly while its brightness alternates: the raw
    probabilities change from frame to frame, so smoothing has something to smooth."""
    face = cv2.resize(astronaut(), (200, 200))
    frames = []
    for i in range(8):
        image = background(640, 480, seed=1)
        x, y = 200 + 3 * i, 120 + 2 * i
        gain = 1.0 if i % 2 == 0 else 0.55
        image[y : y + 200, x : x + 200] = cv2.cvtColor(
            (face * gain).astype(np.uint8), cv2.COLOR_GRAY2BGR
        )
        frames.append(ComposedFrame(image, (Box(x, y, 200, 200),), (0,)))
    path = tmp_path_factory.mktemp("flicker") / "flicker.avi"
    write_video(path, frames, FPS)
    return path


@pytest.mark.parametrize("kind", ["float", "int8"])
def test_run_writes_jsonl_and_annotated_video(tmp_path, tiny_tflite, face_video, kind):
    video, truth = face_video
    options = RunOptions(
        model=tiny_tflite[kind],
        source=str(video),
        threads=1,
        jsonl=str(tmp_path / "out.jsonl"),
        save=tmp_path / "out.mp4",
    )
    summary = run(options)
    assert (summary.frames, summary.faces, summary.frames_with_faces) == (12, 12, 12)
    assert summary.skipped == 0 and summary.stop_reason == "end of source"
    assert summary.quantized == (kind == "int8") and summary.runtime.startswith("litert")

    lines = read_jsonl(tmp_path / "out.jsonl")
    assert [line["frame"] for line in lines] == list(range(12))
    np.testing.assert_allclose([line["t"] for line in lines], np.arange(12) / FPS, atol=1e-3)
    for line, want in zip(lines, truth, strict=True):
        assert set(line) == {"frame", "t", "faces"}  # a video: no per-frame "source"
        (face,) = line["faces"]
        assert set(face) == {"id", "box", "label", "score", "scores"}
        assert len(face["box"]) == 4 and all(isinstance(v, int) for v in face["box"])
        assert found(want[0], Box(*face["box"]))
        assert list(face["scores"]) == list(FER2013_CLASSES)
        assert face["label"] == max(face["scores"], key=face["scores"].get)
        assert face["score"] == face["scores"][face["label"]]
        # int8 probabilities are multiples of 1/256 and sum to 1 within rounding.
        assert sum(face["scores"].values()) == pytest.approx(1.0, abs=0.02)
    # The face drifts for 3 frames in each of 4 places: one id per place, held while it drifts.
    ids = [line["faces"][0]["id"] for line in lines]
    assert all(ids[i : i + 3] == [ids[i]] * 3 for i in range(0, 12, 3)), ids
    assert len(set(ids)) == 4 and min(ids) == 1

    # The face keeps its id while it drifts in one place (3 frames each), ids count up from 1.
    ids = [line["faces"][0]["id"] for line in lines]
    assert ids[0] == 1 and all(ids[i] == ids[i - 1] for i in range(12) if i % 3), ids
    assert ids == sorted(ids)

    source_frames = read_frames(video)
    annotated = read_frames(tmp_path / "out.mp4")
    assert len(annotated) == 12 and annotated[0].shape == (480, 640, 3)
    for line, before, after in zip(lines, source_frames, annotated, strict=True):
        x, y, w, h = line["faces"][0]["box"]
        diff = np.abs(after.astype(np.int16) - before.astype(np.int16)).mean(axis=2)
        assert diff[y + h // 2 - 10 : y + h // 2 + 10, x].mean() > 40  # the drawn box edge
        assert diff[y + h // 2, x + w // 2] < 20  # the face inside is left alone


def test_summary_has_fps_and_stage_timings(tiny_tflite, face_video):
    summary = run(RunOptions(model=tiny_tflite["int8"], source=str(face_video[0]), max_frames=5))
    assert summary.frames == 5 and summary.stop_reason == "max frames"
    assert summary.fps > 0 and summary.seconds > 0
    assert [summary.stages[name].count for name in STAGES] == [5, 5, 5, 5]
    for stats in summary.stages.values():
        assert 0 < stats.median_ms <= stats.p90_ms and stats.mean_ms > 0
    data = json.loads(json.dumps(summary.to_dict()))
    assert data["stages"]["detect"]["count"] == 5 and data["fps"] == summary.fps
    text = summary.format()
    for word in ("fps", "capture", "detect", "classify", "per face", "tiny_int8.tflite"):
        assert word in text


def test_smoothing_is_the_ema_of_the_raw_scores(tmp_path, tiny_tflite, flicker_video):
    common = {"model": tiny_tflite["float"], "source": str(flicker_video)}
    run(RunOptions(**common, smoothing=None, jsonl=str(tmp_path / "raw.jsonl")))
    run(RunOptions(**common, smoothing=0.5, jsonl=str(tmp_path / "smooth.jsonl")))
    raw, smooth = read_jsonl(tmp_path / "raw.jsonl"), read_jsonl(tmp_path / "smooth.jsonl")
    assert [len(r["faces"]) for r in raw] == [1] * 8
    p = np.array([[r["faces"][0]["scores"][c] for c in FER2013_CLASSES] for r in raw])
    s = np.array([[r["faces"][0]["scores"][c] for c in FER2013_CLASSES] for r in smooth])
    assert np.abs(np.diff(p, axis=0)).max() > 0.01  # the flicker is really there
    expected = [p[0]]
    for i in range(1, 8):
        expected.append(0.5 * p[i] + 0.5 * expected[-1])
    # Scores are rounded to 4 digits in the JSONL.
    np.testing.assert_allclose(s, np.array(expected), atol=3e-4)
    assert [r["faces"][0]["box"] for r in raw] == [r["faces"][0]["box"] for r in smooth]
    # Without smoothing the faces still get their ids from the same association.
    assert [r["faces"][0]["id"] for r in raw] == [r["faces"][0]["id"] for r in smooth] == [1] * 8


class InterruptAt:
    """A sink that presses Ctrl-C while writing the given frame."""

    def __init__(self, frame):
        self.frame, self.closed = frame, False

    def write(self, result):
        if result.frame.index == self.frame:
            raise KeyboardInterrupt

    def close(self):
        self.closed = True


def test_ctrl_c_flushes_and_closes_everything(tmp_path, tiny_tflite, face_video):
    stopper = InterruptAt(3)
    summary = run(
        RunOptions(
            model=tiny_tflite["int8"],
            source=str(face_video[0]),
            jsonl=str(tmp_path / "out.jsonl"),
            save=tmp_path / "out.avi",
            sinks=[stopper],
        )
    )
    assert summary.interrupted and summary.frames == 4 and stopper.closed
    assert [line["frame"] for line in read_jsonl(tmp_path / "out.jsonl")] == [0, 1, 2, 3]
    assert len(read_frames(tmp_path / "out.avi")) == 4
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.avi", "out.jsonl"]


def test_image_folder_source_with_a_broken_image(tmp_path, tiny_tflite):
    folder = tmp_path / "shots"
    folder.mkdir()
    for i, frame in enumerate(compose_frames([astronaut()] * 3, face_size=180)):
        cv2.imwrite(str(folder / f"{i}.jpg"), frame.image)
    (folder / "3.jpg").write_bytes(b"\xff\xd8 broken")
    summary = run(
        RunOptions(model=tiny_tflite["int8"], source=str(folder), jsonl=str(tmp_path / "o.jsonl"))
    )
    assert (summary.frames, summary.faces, summary.skipped) == (3, 3, 1)
    lines = read_jsonl(tmp_path / "o.jsonl")
    # Every line names its file as the folder was given, to join results back to the photos.
    assert [line["source"] for line in lines] == [str(folder / f"{i}.jpg") for i in range(3)]


def test_glob_source_names_every_file_in_the_jsonl(tmp_path, tiny_tflite, monkeypatch):
    folder = tmp_path / "photos"
    folder.mkdir()
    names = ["b.jpg", "a.png", "c.jpg"]
    frames = compose_frames([astronaut()] * 3, face_size=180, seed=3)
    for name, frame in zip(names, frames, strict=True):
        cv2.imwrite(str(folder / name), frame.image)
    (folder / "notes.txt").write_text("not a photo")
    monkeypatch.chdir(tmp_path)
    result = cli("-m", tiny_tflite["int8"], "-s", "photos/*.jpg", "--jsonl", "-")
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["source"] for line in lines] == ["photos/b.jpg", "photos/c.jpg"]
    assert [line["frame"] for line in lines] == [0, 1] and all(line["faces"] for line in lines)


def test_the_bundled_model_is_the_default():
    path = default_model_path()
    assert path.name == "default_int8.tflite"
    assert read_meta(path).labels


# --- the command line ---------------------------------------------------------------------


def cli(*args):
    return CliRunner().invoke(main, ["run", *map(str, args)])


def one_line_error(result, *fragments):
    assert result.exit_code != 0
    assert "Traceback" not in result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error")]
    assert len(errors) == 1, result.stderr
    for fragment in fragments:
        assert fragment in errors[0], errors[0]


def test_cli_jsonl_to_stdout_keeps_stdout_clean(tiny_tflite, face_video, tmp_path):
    result = cli(
        "-m", tiny_tflite["int8"], "--source", face_video[0], "--jsonl", "-", "--max-frames", 3,
        "--summary", tmp_path / "summary.json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert [json.loads(line)["frame"] for line in result.stdout.splitlines()] == [0, 1, 2]
    assert "fps" in result.stderr and "detect" in result.stderr
    assert json.loads((tmp_path / "summary.json").read_text())["frames"] == 3


def test_cli_yunet_and_options(tiny_tflite, face_video, yunet_model, tmp_path):
    result = cli(
        "-m", tiny_tflite["float"], "-s", face_video[0], "--detector", "yunet",
        "--detector-model", yunet_model, "--threads", 2, "--margin", 0.1, "--no-smooth",
        "--size", "320x240", "--min-face", 30, "--detect-width", 240,
        "--jsonl", tmp_path / "y.jsonl",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    lines = read_jsonl(tmp_path / "y.jsonl")
    assert len(lines) == 12 and all(len(line["faces"]) == 1 for line in lines)
    # Frames were scaled to 320x240, so boxes are too.
    for line, want in zip(lines, face_video[1], strict=True):
        x, y, w, h = want[0].as_list()
        assert found(Box(x // 2, y // 2, w // 2, h // 2), Box(*line["faces"][0]["box"]))


def test_cli_bad_inputs(tmp_path, tiny_tflite, face_video):
    model, video = tiny_tflite["int8"], face_video[0]
    one_line_error(cli("-m", model, "-s", tmp_path / "nope.mp4"), "--source", "does not exist")
    one_line_error(cli("-m", model, "-s", 63), "--source 63: no camera found")
    one_line_error(cli("-m", tmp_path / "model.onnx", "-s", video), "not a .tflite file")

    raw = tiny_tflite["float"].read_bytes()
    flatbuffer = raw[: raw.rfind(b"PK\x03\x04")]
    junk = tmp_path / "junk.tflite"
    junk.write_bytes(embed_in_tflite(b"\x00" * 4096, ModelMeta(FER2013_CLASSES)))
    one_line_error(cli("-m", junk, "-s", video), "not a usable TFLite model")
    shape = tmp_path / "shape.tflite"
    shape.write_bytes(embed_in_tflite(flatbuffer, ModelMeta(FER2013_CLASSES, InputSpec(64, 64))))
    one_line_error(cli("-m", shape, "-s", video), "input shape (1, 48, 48, 1)", "(1, 64, 64, 1)")
    bare = tmp_path / "bare.tflite"
    bare.write_bytes(flatbuffer)
    one_line_error(cli("-m", bare, "-s", video), "no fer-edge metadata")

    one_line_error(
        cli("-m", model, "-s", video, "--detector", "haar", "--crop", "align"), "--crop align"
    )
    one_line_error(cli("-m", model, "-s", video, "--detect-width", 8), "--detect-width")
    one_line_error(cli("-m", model, "-s", video, "--save", tmp_path / "a.gif"), "--save")
    one_line_error(cli("-m", model, "-s", video, "--margin", -1), "--margin")
    one_line_error(cli("-m", model, "-s", video, "--max-frames", 0), "--max-frames")
    one_line_error(cli("-m", model, "-s", video, "--size", "640by480"), "--size")
    one_line_error(
        CliRunner(env={"DISPLAY": None, "WAYLAND_DISPLAY": None}).invoke(
            main, ["run", "-m", str(model), "-s", str(video), "--display"]
        ),
        "--display",
    )
    assert list(tmp_path.glob(".*")) == []  # no temporary files left behind


# --- in a fresh interpreter: no TensorFlow, runtime fallback, signals ---------------------

RUN_SNIPPET = """
import sys
for name in {blocked!r}:
    sys.modules[name] = None
from fer_edge.device.runner import RunOptions, run
summary = run(RunOptions(model={model!r}, source={source!r}, max_frames=3))
print(summary.runtime.split()[0], summary.frames, summary.faces)
"""


def python(code, args=()):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, env=env
    )


def test_device_side_runs_with_tensorflow_blocked(tiny_tflite, face_video):
    modules = ["cli", "runner", "sources", "sinks", "smoothing", "pipeline"]
    code = "import fer_edge.device." + ", fer_edge.device.".join(modules) + "\n"
    code += "import fer_edge.detect, fer_edge.yunetlite, fer_edge.faces\n"
    # The scene composer the emulated-Pi check runs on the host: bench code, no TensorFlow either.
    code += "import fer_edge.bench.facevideo\n"
    code += RUN_SNIPPET.format(
        blocked=["tensorflow", "tf_keras"],
        model=str(tiny_tflite["int8"]),
        source=str(face_video[0]),
    )
    out = python(code)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["litert", "3", "3"]


@pytest.mark.parametrize(
    ("blocked", "expected"),
    [
        (["tensorflow"], "litert"),
        # tflite_runtime (second in line) needs numpy<2, so it is blocked to make this
        # deterministic wherever it happens to be installed; tf.lite comes last.
        (["ai_edge_litert", "tflite_runtime"], "tf"),
    ],
)
def test_interpreter_fallback_order(tiny_tflite, face_video, blocked, expected):
    code = RUN_SNIPPET.format(
        blocked=blocked, model=str(tiny_tflite["float"]), source=str(face_video[0])
    )
    out = python(code)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [expected, "3", "3"]


def test_no_runtime_at_all_is_a_one_line_cli_error(tiny_tflite, face_video):
    code = (
        "import sys\n"
        "for m in ['ai_edge_litert', 'tflite_runtime', 'tensorflow']: sys.modules[m] = None\n"
        "from fer_edge.cli import main\n"
        "main(['run', '-m', sys.argv[1], '-s', sys.argv[2]])\n"
    )
    out = python(code, args=[str(tiny_tflite["int8"]), str(face_video[0])])
    assert out.returncode == 1
    assert out.stderr.strip().splitlines()[-1].startswith("Error: no usable TFLite runtime")
    assert "pip install ai-edge-litert" in out.stderr and "Traceback" not in out.stderr


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_stops_cleanly_and_flushes(tmp_path, tiny_tflite, face_video, sig):
    out = tmp_path / "out.jsonl"
    cmd = [
        sys.executable, "-m", "fer_edge", "run", "-m", str(tiny_tflite["int8"]),
        "-s", str(face_video[0]), "--max-fps", "4", "--jsonl", str(out),
        "--save", str(tmp_path / "out.avi"),
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    # The JSONL lives under a temporary name until the run closes it.
    while time.monotonic() < deadline and not any(
        p.read_text().count("\n") >= 2 for p in tmp_path.glob(".out.*.jsonl")
    ):
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 128 + sig, stderr  # the outputs are complete, but it was stopped
    assert "interrupted" in stderr and "Traceback" not in stderr
    frames = [line["frame"] for line in read_jsonl(out)]
    assert 2 <= len(frames) < 12 and frames == list(range(len(frames)))
    assert len(read_frames(tmp_path / "out.avi")) == len(frames)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.avi", "out.jsonl"]


def test_photos_of_a_folder_are_not_smoothed_into_each_other(tmp_path, tiny_tflite):
    folder = tmp_path / "photos"
    folder.mkdir()
    first = next(compose_frames([astronaut()], face_size=180)).image
    # The same place, another look: a face the previous photo's box overlaps.
    second = cv2.convertScaleAbs(first, alpha=0.6, beta=60)
    cv2.imwrite(str(folder / "a.png"), first)
    cv2.imwrite(str(folder / "b.png"), second)
    alone = tmp_path / "alone"
    alone.mkdir()
    cv2.imwrite(str(alone / "b.png"), second)
    for source, out in ((folder, "both.jsonl"), (alone, "alone.jsonl")):
        options = RunOptions(
            model=tiny_tflite["float"], source=str(source), jsonl=str(tmp_path / out), smoothing=0.5
        )
        run(options)
    both = read_jsonl(tmp_path / "both.jsonl")
    (single,) = read_jsonl(tmp_path / "alone.jsonl")
    a, b = (line["faces"][0] for line in both)
    assert a["scores"] != b["scores"]  # the two photos do classify differently
    assert b["scores"] == pytest.approx(single["faces"][0]["scores"], abs=1e-6)
    assert a["id"] != b["id"]  # a new photo, a new face


def test_the_summary_splits_detection_work_by_kind_of_pass(two_face_video, tmp_path):
    """Tracking on (the default) and off, the same video: ROI passes replace full ones."""
    from ..conftest import run_cli

    costs = {}
    for every in ("10", "1"):
        summary = tmp_path / f"every{every}.json"
        result = run_cli(
            "run", "-s", two_face_video, "--threads", "1", "--detect-every", every,
            "--summary", summary, "--jsonl", tmp_path / f"every{every}.jsonl",
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        assert "detection (" in result.output and "ROI" in result.output
        costs[every] = json.loads(summary.read_text())["detection"]
    tracked, full = costs["10"], costs["1"]
    assert full["frames"] == tracked["frames"] == 24
    assert full["full"]["count"] == 24 and full["roi"]["count"] == 0
    assert full["macs_per_frame"] == 258168000  # 640x480 YuNet, counted from its graph
    assert 0 < tracked["full"]["count"] < 24 and tracked["roi"]["count"] > 0
    assert tracked["macs_per_frame"] < 0.6 * full["macs_per_frame"]
    faces = {
        every: [
            len(json.loads(line)["faces"]) for line in (tmp_path / f"every{every}.jsonl").open()
        ]
        for every in costs
    }
    assert faces["10"] == faces["1"]  # every face of every frame still found
