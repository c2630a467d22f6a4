"""fer-edge bench --pipeline: the run loop (not the device's FacePipeline) on a composed video."""

import json
from pathlib import Path

import cv2
import pytest
from click.testing import CliRunner

from fer_edge.cli import main

FACE = Path(__file__).resolve().parents[1] / "data" / "astronaut_face.png"


@pytest.fixture(scope="module")
def face_video(tmp_path_factory) -> Path:
    from fer_edge.bench import facevideo

    path = tmp_path_factory.mktemp("pipeline") / "face.avi"
    face = cv2.imread(str(FACE))
    facevideo.write_video(path, facevideo.compose_frames([face], face_size=160, hold=6), fps=10)
    return path


def test_loop_bench_reports_fps_and_stages_per_thread_count(face_video, tiny_tflite, tmp_path):
    out = tmp_path / "p.json"
    args = ["bench", "--pipeline", "--model", str(tiny_tflite["int8"]), "--source"]
    args += [str(face_video), "--threads", "1,2", "--json", str(out)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert data["schema"].startswith("fer-edge-bench-pipeline/")
    assert [r["threads"] for r in data["runs"]] == [1, 2]
    for run in data["runs"]:
        assert run["frames"] == 6 and run["fps"] > 0
        assert set(run["stages"]) >= {"capture", "detect", "classify"}
        # Every detected face was classified, and timed once.
        assert run["stages"]["classify"]["count"] == run["faces"]
        assert run["stages"]["detect"]["count"] == run["frames"]
    assert data["runs"][0]["faces"] > 0, "the detector missed the pasted face"
    assert "classify ms/face" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--pipeline", "--model", "{model}"], "--pipeline needs --source"),
        (["--pipeline", "{model}", "--source", "x.avi"], "takes its model from --model"),
        (["--pipeline", "--source", "x.avi", "--plot", "p.png"], "--plot does not apply"),
        (["--pipeline", "--model", "{model}", "--source", "missing.avi"], "missing.avi"),
    ],
)
def test_loop_bench_bad_input_is_one_line(args, message, tiny_tflite):
    args = [a.format(model=tiny_tflite["int8"]) for a in args]
    result = CliRunner().invoke(main, ["bench", *args])
    assert result.exit_code != 0
    assert message in result.output and "Traceback" not in result.output
