"""fer-edge bench --scene: a scene video with known faces through the real device loop."""

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from fer_edge.bench.facevideo import sample_faces
from fer_edge.bench.scene import (
    SceneBenchOptions,
    bench_scene,
    count_id_switches,
    nested_count,
    parse_setting,
)
from fer_edge.classifier import FaceClassifier
from fer_edge.cli import main
from fer_edge.detect import Box
from fer_edge.errors import FerEdgeError

FACE = Path(__file__).resolve().parents[1] / "data" / "astronaut_face.png"


@pytest.fixture(scope="module")
def face_folders(tmp_path_factory):
    """Two classes of the test face: ``happy`` as is, ``sad`` mirrored, at a few brightnesses."""
    root = tmp_path_factory.mktemp("scene") / "faces"
    face = cv2.resize(cv2.imread(str(FACE), cv2.IMREAD_GRAYSCALE), (48, 48))
    for name, image in (("happy", face), ("sad", cv2.flip(face, 1))):
        (root / name).mkdir(parents=True)
        for k, gain in enumerate((0.8, 1.0, 1.2)):
            shade = np.clip(image * gain, 0, 255).astype(np.uint8)
            cv2.imwrite(str(root / name / f"{k}.png"), shade)
    return root


def test_settings_parse():
    assert parse_setting("default").overrides == {}
    haar = parse_setting("haar")
    assert haar.overrides == {"detector": "haar", "crop": "box", "margin": 0.02, "detect_width": 0}
    custom = parse_setting("yunet-box:margin=-0.05:width=320:threshold=0.6:smooth=0")
    assert custom.overrides == {
        "detector": "yunet",
        "crop": "box",
        "detect_width": 320,
        "margin": -0.05,
        "detector_threshold": 0.6,
        "smoothing": None,
    }
    assert parse_setting("yunet-aligned:detector=haar").overrides["detector"] == "haar"
    onnx = parse_setting("default:model=onnx").overrides["detector_model"]
    assert onnx.suffix == ".onnx" and onnx.is_file()
    assert parse_setting("default:model=my.tflite").overrides["detector_model"].name == "my.tflite"
    assert parse_setting("full").overrides == {"detect_every": 1}
    assert parse_setting("default:every=5:roi=96").overrides == {"detect_every": 5, "roi": 96}
    for bad in ("mtcnn", "default:zoom=2", "default:margin=wide", "default:width"):
        with pytest.raises(FerEdgeError, match="--settings"):
            parse_setting(bad)


def test_id_switches_by_hand():
    # Face 0 keeps id 1, is missed a frame (no switch), then comes back as id 3: one switch.
    # Face 1 appears with id 2 and keeps it; a face seen once never switches.
    frames = [{0: 1}, {0: 1, 1: 2}, {1: 2}, {0: 3, 1: 2}, {0: 3}, {2: 4}]
    assert count_id_switches(frames) == 1
    assert count_id_switches([{0: 1}, {0: 2}, {0: 1}]) == 2
    assert count_id_switches([]) == 0


def test_nested_count_by_hand():
    face, inner, apart = Box(0, 0, 100, 100), Box(20, 20, 30, 30), Box(200, 0, 50, 50)
    assert nested_count([face, inner, apart], 0.6) == 1
    assert nested_count([face, apart], 0.6) == 0
    assert nested_count([face, Box(90, 0, 20, 20)], 0.6) == 0  # half outside: a neighbour


def test_scene_scores_match_an_independent_recount(face_folders, tiny_tflite, tmp_path):
    video = tmp_path / "scene.mp4"
    options = SceneBenchOptions(
        faces=face_folders,
        count=6,
        frame_size=(320, 240),
        face_size=120,
        hold=2,
        seed=3,
        settings=tuple(parse_setting(s) for s in ("haar", "default", "yunet-aligned:smooth=0")),
        model=tiny_tflite["int8"],
        video=video,
        rounds=2,
    )
    report = bench_scene(options)
    assert [s.setting for s in report.scores] == ["haar", "default", "yunet-aligned:smooth=0"]

    # 6 groups of 2 frames with a face and 1 without. The ceiling, recomputed: the model on
    # each face's own 48x48 image, each shown twice.
    images, classes = sample_faces(face_folders, 6, seed=3)
    classifier = FaceClassifier(tiny_tflite["int8"])
    own = [classifier.labels[int(np.argmax(classifier.probabilities(i)))] for i in images]
    crop_correct = 2 * sum(o == c for o, c in zip(own, classes, strict=True))
    for score in report.scores:
        assert (score.frames, score.shown, score.crop_correct) == (18, 12, crop_correct)
        assert score.found == 12 and score.false_boxes == 0 and score.nested == 0
        assert score.end_to_end == pytest.approx(score.right / 12)
        assert score.fps > 0 and len(score.fps_rounds) == 2
        assert score.fps == pytest.approx(float(np.median(score.fps_rounds)))
    default = report.scores[1]
    assert default.detector == "yunet" and default.crop == "box -0.075"
    assert report.scores[0].crop == "box +0.020" and report.scores[2].crop == "align"

    # "right" recounted from the JSONL of the same run on the kept video.
    from fer_edge.device.runner import RunOptions, run

    run(RunOptions(model=tiny_tflite["int8"], source=str(video), jsonl=str(tmp_path / "o.jsonl")))
    lines = [json.loads(x) for x in (tmp_path / "o.jsonl").read_text().splitlines()]
    assert [bool(line["faces"]) for line in lines] == [True, True, False] * 6
    right = sum(
        line["faces"][0]["label"] == classes[k // 3] for k, line in enumerate(lines) if k % 3 < 2
    )
    assert default.right == right

    text = report.format()
    assert "right on found" in text and "x haar fps" in text and "1.00x" in text
    data = report.to_dict()
    assert data["schema"].startswith("fer-edge-bench-scene/")
    assert data["scores"][1]["found_rate"] == 1.0 and data["options"]["count"] == 6
    assert data["options"]["rounds"] == 2 and len(data["scores"][0]["fps_rounds"]) == 2
    assert "median of 2 round(s)" in text


def test_cli_prints_the_table_and_writes_reports(face_folders, tiny_tflite, tmp_path):
    args = ["bench", "--scene", str(face_folders), "--model", str(tiny_tflite["int8"])]
    args += ["--limit", "4", "--per-frame", "2", "--frame-size", "480x240", "--face-size", "100"]
    args += ["--settings", "haar,default", "--json", str(tmp_path / "s.json")]
    args += ["--markdown", str(tmp_path / "s.md")]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "end to end" in result.output and "false /100 fr" in result.output
    data = json.loads((tmp_path / "s.json").read_text())
    assert [s["setting"] for s in data["scores"]] == ["haar", "default"]
    assert all(s["frames"] == 8 and s["shown"] == 12 for s in data["scores"])
    assert (tmp_path / "s.md").read_text().startswith("## fer-edge bench --scene")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--scene", "{faces}", "--settings", "mtcnn"], "--settings: unknown setting"),
        (["--scene", "{faces}", "--frame-size", "big"], "--frame-size"),
        (["--scene", "{faces}", "--per-frame", "9", "--limit", "9"], "do not fit"),
        (["--scene", "{faces}", "--pipeline"], "--pipeline does not apply"),
        (["--per-frame", "2"], "--per-frame only applies with --scene"),
        (["--scene", "{faces}", "--gap", "-1"], "--gap"),
        (["--scene", "{faces}", "--rounds", "-1"], "--rounds"),
        (["--rounds", "2"], "--rounds only applies with --scene"),
        (["--scene", "{missing}"], "no <class>/ folders"),
    ],
)
def test_bad_scene_input_is_one_line(args, message, face_folders, tiny_tflite, tmp_path):
    fill = {"faces": face_folders, "missing": tmp_path / "nothing"}
    args = [a.format(**fill) for a in args] + ["--model", str(tiny_tflite["int8"])]
    result = CliRunner().invoke(main, ["bench", *args])
    assert result.exit_code != 0
    assert message in result.output and "Traceback" not in result.output


def test_classes_the_model_lacks_are_refused(tmp_path, tiny_tflite):
    folder = tmp_path / "faces" / "contempt"
    folder.mkdir(parents=True)
    cv2.imwrite(str(folder / "a.png"), np.zeros((48, 48), np.uint8))
    with pytest.raises(FerEdgeError, match="contempt"):
        bench_scene(SceneBenchOptions(faces=folder.parent, count=1, model=tiny_tflite["int8"]))


@pytest.mark.fer2013
def test_val_scene_with_the_bundled_model(fer2013_root):
    # A CI-sized scene of held-out faces: floors well below the measured numbers (see the
    # resolution note), so only a real regression trips them.
    default = (parse_setting("default"),)
    report = bench_scene(SceneBenchOptions(faces=fer2013_root / "val", count=40, settings=default))
    (score,) = report.scores
    assert score.shown == 120 and score.crop_correct > 0
    assert score.found_rate >= 0.85 and score.nested == 0 and score.false_per_100 <= 3.0
    assert score.kept >= 0.75


def test_a_long_hold_fits_where_a_short_one_does():
    """Three 144 px faces held 60 frames fit 640x480 and drift at most 6 px a frame, turning
    back at the edge of their room instead of walking off."""
    from fer_edge.bench.facevideo import _cells, compose_frames

    face = cv2.imread(str(FACE), cv2.IMREAD_GRAYSCALE)
    frames = list(compose_frames([face] * 3, face_size=144, per_frame=3, hold=60))
    assert len(frames) == 60
    cells = _cells(640, 480, 3)  # 2x2 cells of 320x240
    for before, after in zip(frames, frames[1:], strict=False):
        pairs = zip(before.boxes, after.boxes, strict=True)
        for (a, b), (cx, cy, cw, ch) in zip(pairs, cells, strict=True):
            assert abs(a.x - b.x) <= 6 and abs(a.y - b.y) <= 6
            assert cx <= b.x <= cx + cw - 144 and cy <= b.y <= cy + ch - 144
    xs = {box.x for frame in frames for box in frame.boxes[:1]}
    assert len(xs) > 5  # it does drift
