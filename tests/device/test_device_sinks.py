"""Sinks: JSON lines, annotated video, display, status line; atomic file outputs."""

import io
import json

import cv2
import numpy as np
import pytest

from fer_edge.bench.facevideo import read_frames
from fer_edge.detect import Box
from fer_edge.device.sinks import DisplaySink, JsonlSink, StatusSink, VideoSink, draw_faces
from fer_edge.errors import FerEdgeError
from fer_edge.faces import LABEL_COLORS, FaceResult, Frame, FrameResult

LABELS = ("happy", "sad", "neutral")


def face(x=40, y=30, probs=(0.7, 0.2, 0.1)):
    return FaceResult.from_probs(Box(x, y, 60, 60), np.array(probs, np.float32), LABELS)


def frame(level=90):
    return np.full((120, 160, 3), level, np.uint8)


def test_face_result_json_form():
    f = face(probs=(0.123456, 0.8, 0.076544))
    assert f.label == "sad" and f.score == pytest.approx(0.8)
    assert f.to_dict() == {
        "box": [40, 30, 60, 60],
        "label": "sad",
        "score": 0.8,
        "scores": {"happy": 0.1235, "sad": 0.8, "neutral": 0.0765},
    }
    json.dumps(f.to_dict())  # plain types only
    tracked = FaceResult.from_probs(f.box, np.array([0.1, 0.8, 0.1], np.float32), LABELS, 7)
    assert tracked.id == 7 and list(tracked.to_dict()) == ["id", "box", "label", "score", "scores"]


def test_jsonl_file_appears_only_at_close(tmp_path):
    target = tmp_path / "out" / "run.jsonl"
    sink = JsonlSink(target)
    sink.write(FrameResult(Frame(0, 0.0, frame()), [face()]))
    sink.write(FrameResult(Frame(7, 0.4567, frame()), []))
    assert not target.exists()
    # Lines are flushed as they come: the temporary file already holds both.
    (tmp,) = target.parent.glob(".run.*.tmp.jsonl")
    assert len(tmp.read_text().splitlines()) == 2
    sink.close()
    lines = [json.loads(line) for line in target.read_text().splitlines()]
    assert lines[0] == {"frame": 0, "t": 0.0, "faces": [face().to_dict()]}
    assert lines[1] == {"frame": 7, "t": 0.457, "faces": []}
    assert list(target.parent.iterdir()) == [target]


def test_jsonl_to_stdout(capsys):
    sink = JsonlSink("-")
    sink.write(FrameResult(Frame(3, 1.0, frame()), [face()]))
    sink.close()
    out = capsys.readouterr().out
    assert json.loads(out)["frame"] == 3 and out.endswith("\n")


def test_jsonl_unwritable_target(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(FerEdgeError, match="--jsonl: cannot write"):
        JsonlSink(blocker / "run.jsonl")


def test_draw_faces_marks_the_box_in_the_label_colour():
    image = frame()
    f = face()
    out = draw_faces(image, [f], note="12.0 fps")
    assert np.all(image == 90)  # the input is not drawn on
    color = LABEL_COLORS[f.label]
    # Left edge of the box, below the label tag.
    assert tuple(int(v) for v in out[f.box.y + 40, f.box.x]) == color
    # Far from the box and the note, the frame is untouched.
    assert tuple(int(v) for v in out[110, 150]) == (90, 90, 90)


def test_video_sink_writes_annotated_frames(tmp_path):
    target = tmp_path / "out.avi"
    sink = VideoSink(target, fps=5)
    for i in range(4):
        sink.write(FrameResult(Frame(i, i / 5, frame(60 + 20 * i)), [face(x=40 + 4 * i)]))
    sink.write(
        FrameResult(Frame(4, 0.8, cv2.resize(frame(), (80, 60))), [])
    )  # another size is scaled to fit
    assert not target.exists()
    sink.close()
    cap = cv2.VideoCapture(str(target))
    assert cap.get(cv2.CAP_PROP_FPS) == pytest.approx(5)
    cap.release()
    frames = read_frames(target)
    assert len(frames) == 5 and all(f.shape == (120, 160, 3) for f in frames)
    color = np.array(LABEL_COLORS["happy"], np.float32)
    for i, image in enumerate(frames[:4]):
        edge = image[70:90, 40 + 4 * i].astype(np.float32)  # the box's left edge
        assert np.abs(edge - color).mean() < 40
        assert abs(float(image[110, 150].mean()) - (60 + 20 * i)) < 8


def test_video_sink_without_frames_leaves_no_file(tmp_path):
    sink = VideoSink(tmp_path / "out.mp4", fps=10)
    sink.close()
    assert list(tmp_path.iterdir()) == []


def test_video_sink_rejects_unknown_container(tmp_path):
    with pytest.raises(FerEdgeError, match="--save: out.gif: use one of"):
        VideoSink(tmp_path / "out.gif", fps=10)


def test_display_needs_a_screen(monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    with pytest.raises(FerEdgeError, match="--display: no screen"):
        DisplaySink()


def test_status_line():
    stream = io.StringIO()
    sink = StatusSink(stream, interval=0.0)
    sink.write(FrameResult(Frame(0, 0.0, frame()), [face()]))
    sink.write(FrameResult(Frame(1, 0.1, frame()), []))
    sink.close()
    text = stream.getvalue()
    assert text.startswith("\rframe 0") and "happy 0.70" in text and "no face" in text
    assert text.endswith("\n")


def test_video_sink_follows_timestamps(tmp_path):
    target = tmp_path / "timed.avi"
    sink = VideoSink(target, fps=10, follow_time=True)
    # At 10 fps, t = 0.32 is output frame 3: frame 0.1 is held for frame 2; 0.34 is dropped.
    for level, t in [(40, 5.0), (120, 5.1), (200, 5.32), (250, 5.34)]:
        sink.write(FrameResult(Frame(0, t, frame(level)), []))
    sink.close()
    cap = cv2.VideoCapture(str(target))
    levels = []
    while True:
        ok, image = cap.read()
        if not ok:
            break
        levels.append(float(image.mean()))
    np.testing.assert_allclose(levels, [40, 120, 120, 200], atol=3)


def test_face_id_and_source_in_the_jsonl(tmp_path):
    tracked = FaceResult.from_probs(Box(1, 2, 30, 30), np.array([0.1, 0.2, 0.7]), LABELS, 7)
    assert list(tracked.to_dict()) == ["id", "box", "label", "score", "scores"]
    assert tracked.to_dict()["id"] == 7 and tracked.label == "neutral"
    target = tmp_path / "run.jsonl"
    sink = JsonlSink(target, ["photos/a.jpg", "photos/broken.jpg", "photos/b.png"].__getitem__)
    sink.write(FrameResult(Frame(0, 0.0, frame()), [tracked]))
    sink.write(
        FrameResult(Frame(2, 0.1, frame()), [])
    )  # frame 1 did not decode: indices keep their files
    sink.close()
    lines = [json.loads(line) for line in target.read_text().splitlines()]
    assert [line["source"] for line in lines] == ["photos/a.jpg", "photos/b.png"]
    assert lines[0]["faces"][0]["id"] == 7
    assert list(lines[0]) == ["frame", "t", "source", "faces"]


def label_strip_width(image):
    """Pixels changed in a row through the label drawn above the box at y=30."""
    row = np.abs(image.astype(int) - frame().astype(int)).sum(axis=2)[20]
    return int((row > 0).sum())


def test_drawn_label_carries_the_id():
    plain = face()
    tracked = FaceResult.from_probs(plain.box, np.array([0.7, 0.2, 0.1]), LABELS, 12)
    # The label strip above the box is wider with "#12 " in front of it.
    assert label_strip_width(draw_faces(frame(), [tracked])) > label_strip_width(
        draw_faces(frame(), [plain])
    )


def test_save_as_an_image_takes_one_frame(tmp_path, two_face_video):
    """--save x.jpg annotates a photo; a video source is refused in one line, no file left."""
    from click.testing import CliRunner

    from fer_edge.cli import main

    out = tmp_path / "clip.annotated.jpg"
    result = CliRunner().invoke(
        main, ["run", "--source", str(two_face_video), "--save", str(out), "-m", "fer2013"]
    )
    assert result.exit_code != 0
    assert "is an image and holds one frame" in result.output
    assert "Traceback" not in result.output and not out.exists()
