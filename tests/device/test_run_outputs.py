"""`fer-edge run` outputs for analysis: --csv, --every, --report, several sources (--out-dir).

Real video, real OpenCV detection, the tiny real TFLite model; nothing depends on what the
untrained model predicts: the tests compare outputs with each other and with the source.
"""

import csv
import json
import re
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from fer_edge.detect import Box
from fer_edge.device.batch import INDEX_NAME, expand_sources, output_stems
from fer_edge.device.csvsink import BASE_COLUMNS, csv_columns, face_rows
from fer_edge.device.runner import RunOptions, run
from fer_edge.device.sources import open_source
from fer_edge.errors import FerEdgeError
from fer_edge.faces import FaceResult, Frame, FrameResult
from fer_edge.labels import FER2013_CLASSES

from ..conftest import run_cli

FPS = 10.0
FACE = Path(__file__).resolve().parents[1] / "data" / "astronaut_face.png"


def read_jsonl(path):
    return [json.loads(line) for line in Path(path).read_text().splitlines()]


cli = run_cli


def error_line(result):
    assert result.exit_code != 0, result.output
    (line,) = [x for x in result.stderr.splitlines() if x.startswith("Error")]
    return line


def test_csv_agrees_with_the_jsonl_cell_for_cell(tmp_path, tiny_tflite, two_face_video):
    options = RunOptions(
        model=tiny_tflite["int8"],
        source=str(two_face_video),
        jsonl=str(tmp_path / "run.jsonl"),
        csv=tmp_path / "run.csv",
    )
    summary = run(options)
    lines = read_jsonl(tmp_path / "run.jsonl")
    with (tmp_path / "run.csv").open(newline="") as f:
        reader = csv.reader(f)
        header = next(reader)
        rows = list(reader)
    assert header == [*BASE_COLUMNS, *FER2013_CLASSES]
    assert len(rows) == summary.faces == sum(len(line["faces"]) for line in lines) == 48
    expected = [
        [
            str(two_face_video), str(line["frame"]), str(line["t"]), str(face["id"]),
            *map(str, face["box"]), face["label"], str(face["score"]),
            *(str(face["scores"][c]) for c in FER2013_CLASSES),
        ]
        for line in lines
        for face in line["faces"]
    ]  # fmt: skip
    assert rows == expected


def test_csv_loads_in_pandas_with_no_options(tmp_path, tiny_tflite, two_face_video):
    pandas = pytest.importorskip("pandas")
    run(RunOptions(model=tiny_tflite["float"], source=str(two_face_video), csv=tmp_path / "f.csv"))
    df = pandas.read_csv(tmp_path / "f.csv")
    assert list(df.columns) == [*BASE_COLUMNS, *FER2013_CLASSES] and len(df) == 48
    for column in ("frame", "id", "x", "y", "w", "h"):
        assert df[column].dtype.kind == "i", column
    for column in ("t", "score", *FER2013_CLASSES):
        assert df[column].dtype.kind == "f", column
    np.testing.assert_allclose(df[list(FER2013_CLASSES)].sum(axis=1), 1.0, atol=2e-3)
    assert (df["label"] == df[list(FER2013_CLASSES)].idxmax(axis=1)).all()
    # Two faces per frame, each followed by its id: 24 frames, 7 ids (the pair moves 3 times
    # and one face stays close enough to keep its id once).
    assert (df.groupby("frame").size() == 2).all() and df["frame"].nunique() == 24
    assert (df.groupby(["frame", "id"]).size() == 1).all()
    np.testing.assert_allclose(df.groupby("frame")["t"].first(), np.arange(24) / FPS, atol=1e-3)


def test_csv_rows_fall_back_to_the_position_without_ids():
    probs = np.array([0.1, 0.2, 0.7], np.float32)
    faces = [
        FaceResult.from_probs(Box(0, 0, 9, 9), probs, ("a", "b", "c")),
        FaceResult.from_probs(Box(20, 0, 8, 8), probs, ("a", "b", "c"), face_id=5),
        FaceResult.from_probs(Box(40, 0, 7, 7), probs, ("a", "b", "c")),
    ]
    frame = Frame(3, 0.12345, np.zeros((60, 60, 3), np.uint8))
    rows = face_rows("clip.mp4", FrameResult(frame, faces), ("a", "b", "c"))
    assert [row[3] for row in rows] == [0, 5, 2]
    assert rows[0] == ["clip.mp4", 3, 0.123, 0, 0, 0, 9, 9, "c", 0.7, 0.1, 0.2, 0.7]
    with pytest.raises(FerEdgeError, match="clash"):
        csv_columns(("happy", "score"))


def paste_face(size=(320, 240)):
    image = np.full((size[1], size[0], 3), 120, np.uint8)
    face = cv2.resize(cv2.imread(str(FACE)), (150, 150))
    image[40:190, 80:230] = face
    return image


def test_csv_of_an_image_folder_names_each_file(tmp_path, tiny_tflite):
    folder = tmp_path / "photos"
    folder.mkdir()
    cv2.imwrite(str(folder / "a.png"), paste_face())
    cv2.imwrite(str(folder / "b.png"), np.full((240, 320, 3), 120, np.uint8))  # no face
    cv2.imwrite(str(folder / "c.jpg"), paste_face())
    (folder / "d.png").write_bytes(b"not an image")
    summary = run(RunOptions(model=tiny_tflite["int8"], source=str(folder), csv=tmp_path / "p.csv"))
    assert (summary.frames, summary.skipped) == (3, 1)
    with (tmp_path / "p.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(row["source"], row["frame"]) for row in rows] == [
        (str(folder / "a.png"), "0"),
        (str(folder / "c.jpg"), "2"),
    ]


def test_every_nth_frame_keeps_source_frames_and_times(tmp_path, tiny_tflite, two_face_video):
    # A full-frame detection every frame: tracking state would differ between the two runs
    # (every frame vs every 5th), and this is about which frames were decoded.
    common = {
        "model": tiny_tflite["float"],
        "source": str(two_face_video),
        "smoothing": None,
        "detect_every": 1,
    }
    run(RunOptions(**common, jsonl=str(tmp_path / "all.jsonl")))
    summary = run(RunOptions(**common, every=5, jsonl=str(tmp_path / "every5.jsonl")))
    every, full = read_jsonl(tmp_path / "every5.jsonl"), read_jsonl(tmp_path / "all.jsonl")
    assert summary.frames == 5 and summary.skipped == 0
    assert [line["frame"] for line in every] == [0, 5, 10, 15, 20]
    np.testing.assert_allclose([line["t"] for line in every], [0.0, 0.5, 1.0, 1.5, 2.0], atol=1e-3)
    # The very frames of the full run were decoded: same boxes, same (unsmoothed) scores.
    for line in every:
        same = full[line["frame"]]
        assert [f["box"] for f in line["faces"]] == [f["box"] for f in same["faces"]]
        assert [f["scores"] for f in line["faces"]] == [f["scores"] for f in same["faces"]]


def test_every_for_image_folders_and_not_for_cameras(tmp_path):
    for i in range(5):
        cv2.imwrite(str(tmp_path / f"{i}.png"), np.full((40, 40, 3), 10 * i, np.uint8))
    source = open_source(str(tmp_path), every=2)
    assert [(f.index, f.name) for f in source.frames()] == [
        (0, "0.png"),
        (2, "2.png"),
        (4, "4.png"),
    ]
    for camera in ("0", "picamera", "/dev/video3"):
        with pytest.raises(FerEdgeError, match="--every: only for video and image files"):
            open_source(camera, every=2)
    assert "--every" in error_line(cli("run", "-s", tmp_path, "--every", "0"))


def test_run_report_matches_the_report_of_its_jsonl(tmp_path, tiny_tflite, two_face_video):
    out = tmp_path / "out"
    result = cli(
        "run", "-m", tiny_tflite["int8"], "-s", two_face_video, "--jsonl", out / "r.jsonl",
        "--summary", out / "r.summary.json", "--report", out / "live.html",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert cli("report", out / "r.jsonl", "-o", out / "file.html").exit_code == 0
    live, later = (out / "live.html").read_text(), (out / "file.html").read_text()

    def numbers(page):
        summary = re.findall(r'data-key="(\w+)">([^<]*)<', page)
        return summary, re.findall(r'data-share="([\d.]+)"', page)

    (live_summary, live_shares), (file_summary, file_shares) = numbers(live), numbers(later)
    assert len(live_summary) == 12 and len(live_shares) == 7 * 8  # all faces + 7 ids
    assert live_summary == file_summary and live_shares == file_shares
    assert live.count('<svg class="timeline"') == 7 == later.count('<svg class="timeline"')


def test_outputs_are_checked_before_the_first_frame(tmp_path, tiny_tflite, two_face_video):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    jsonl = tmp_path / "run.jsonl"
    for flag in ("--csv", "--report"):
        result = cli(
            "run", "-m", tiny_tflite["int8"], "-s", two_face_video, "--jsonl", jsonl,
            flag, blocker / "out.x",
        )  # fmt: skip
        line = error_line(result)
        assert line.startswith(f"Error: {flag}:") and "is a file" in line
        assert not jsonl.exists()  # nothing ran
    line = error_line(cli("run", "-s", two_face_video, "--out-dir", blocker))
    assert "--out-dir" in line and "not a folder" in line


def test_a_run_without_frames_leaves_no_csv_or_report(tmp_path, tiny_tflite):
    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / "a.png").write_bytes(b"not an image")
    for name in ("old.csv", "old.html"):
        (tmp_path / name).write_text("an earlier good result")
    options = RunOptions(
        model=tiny_tflite["int8"],
        source=str(folder),
        csv=tmp_path / "old.csv",
        report=tmp_path / "old.html",
    )
    assert run(options).frames == 0
    for name in ("old.csv", "old.html"):
        assert (tmp_path / name).read_text() == "an earlier good result"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken", "old.csv", "old.html"]


@pytest.fixture()
def videos(tmp_path, two_face_video):
    """clips/a.mp4 and clips/b.mp4 (copies of the pair video) and clips/c.mp4, not a video."""
    folder = tmp_path / "clips"
    folder.mkdir()
    shutil.copy(two_face_video, folder / "a.mp4")
    shutil.copy(two_face_video, folder / "b.mp4")
    (folder / "c.mp4").write_bytes(b"\x00not a video" * 100)
    return folder


def test_a_batch_writes_one_set_per_source_and_skips_a_bad_file(tmp_path, tiny_tflite, videos):
    out = tmp_path / "results"
    result = cli(
        "run", "-m", tiny_tflite["int8"], "-s", f"{videos}/*.mp4", "--every", 2, "--out-dir", out
    )
    assert result.exit_code == 0, result.output
    stderr = result.stderr
    assert f"done {videos / 'a.mp4'}: 12 frames, 24 faces" in stderr
    assert f"skipped {videos / 'c.mp4'}: --source: cannot open" in stderr
    assert "3 sources: 2 done, 1 skipped" in stderr
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [INDEX_NAME] + [f"{s}.{k}" for s in "ab" for k in ("jsonl", "csv", "html", "summary.json")]
    )
    index = json.loads((out / INDEX_NAME).read_text())
    assert (index["total"], index["done"]) == (3, 2)
    assert [i["status"] for i in index["items"]] == ["done", "done", "skipped"]
    assert index["items"][2]["error"].startswith("--source: cannot open")
    a, b = read_jsonl(out / "a.jsonl"), read_jsonl(out / "b.jsonl")
    assert [line["frame"] for line in a] == list(range(0, 24, 2)) and a == b
    summary = json.loads((out / "a.summary.json").read_text())
    assert summary["frames"] == 12 and summary["source"] == "video a.mp4"
    # The report picks the summary up from beside the JSONL.
    assert (
        cli("report", out / "a.jsonl", out / "b.jsonl", "-o", tmp_path / "ab.html").exit_code == 0
    )
    page = (tmp_path / "ab.html").read_text()
    assert page.count('data-key="model">tiny_int8.tflite (int8)<') == 2
    assert (out / "a.html").read_text().count('<svg class="timeline"') == 7


def test_a_batch_saves_one_annotated_video_per_source(tmp_path, tiny_tflite, videos):
    out = tmp_path / "results"
    args = ["run", "-m", tiny_tflite["int8"], "-s", videos / "a.mp4", "-s", videos / "b.mp4"]
    result = cli(*args, "--every", 3, "--out-dir", out, "--save-videos")
    assert result.exit_code == 0, result.output
    # The same video as a single run's --save (frames held to keep the clip's timing).
    single = tmp_path / "single.mp4"
    assert cli(*args[:5], "--every", 3, "--save", single).exit_code == 0

    def read(path):
        capture = cv2.VideoCapture(str(path))
        frames = []
        while (got := capture.read())[0]:
            frames.append(got[1])
        capture.release()
        return frames

    expected = read(single)
    assert len(expected) >= 8  # at least every 3rd of 24 frames
    for stem in "ab":
        frames = read(out / f"{stem}.annotated.mp4")
        assert len(frames) == len(expected)
        diff = np.abs(np.stack(frames).astype(int) - np.stack(expected).astype(int)).mean()
        assert diff < 1.0  # the same overlays; only the codec's noise differs
    index = json.loads((out / INDEX_NAME).read_text())
    assert index["items"][0]["outputs"]["video"] == str(out / "a.annotated.mp4")
    line = error_line(cli(*args[:5], "--save-videos"))
    assert line.startswith("Error: --save-videos") and "--save FILE" in line


def test_batch_errors_are_one_line(tmp_path, tiny_tflite, videos):
    model = ["-m", tiny_tflite["int8"]]
    two = ["-s", videos / "a.mp4", "-s", videos / "b.mp4"]
    assert "--out-dir: 2 sources need a folder" in error_line(cli("run", *model, *two))
    line = error_line(cli("run", *model, *two, "--out-dir", tmp_path / "o", "--csv", "x.csv"))
    assert line.startswith("Error: --csv: names one output")
    line = error_line(cli("run", *model, "-s", videos / "c.mp4", "--out-dir", tmp_path / "o"))
    assert "none of the 1 sources could be read" in line
    line = error_line(cli("run", *model, *two, "-s", "0", "--out-dir", tmp_path / "o"))
    assert "several sources must be files" in line
    # A problem that is not about one file ends the batch at once.
    line = error_line(cli("run", "-m", videos / "a.mp4", *two, "--out-dir", tmp_path / "o"))
    assert "--model" in line and not (tmp_path / "o" / "b.jsonl").exists()


def test_source_expansion_and_output_names(tmp_path, videos):
    (videos / "x.png").write_bytes(b"")
    images = tmp_path / "images"
    images.mkdir()
    for name in ("1.png", "2.jpg"):
        (images / name).write_bytes(b"")
    assert expand_sources([f"{images}/*"]) == [f"{images}/*"]  # one image set, as before
    assert expand_sources([f"{videos}/*.mp4", str(videos / "a.mp4")]) == [
        str(videos / n) for n in ("a.mp4", "b.mp4", "c.mp4")
    ]
    assert output_stems(["d1/a.mp4", "d2/a.avi", "photos/", "faces/*.jpg", "a.mp4"]) == [
        "a", "a-2", "photos", "faces", "a-3",
    ]  # fmt: skip
