"""The report's parts with hand-made JSONL: grouping by id, time shares, the SVG, the CLI."""

import html.parser
import json
import re
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from fer_edge.cli import main
from fer_edge.report.html import MAX_DRAWN_TRACKS, report_html
from fer_edge.report.recording import RecordingBuilder, read_recording, summary_path_for
from fer_edge.report.svgchart import MAX_STEPS, class_colors, nice_step, timeline_svg

CLASSES = ("happy", "sad", "neutral")


def scores(top, p=0.8):
    rest = (1.0 - p) / 2
    return {c: (p if c == top else rest) for c in CLASSES}


def face(top, face_id=None, p=0.8):
    out = {"box": [0, 0, 50, 50], "label": top, "score": p, "scores": scores(top, p)}
    if face_id is not None:
        out["id"] = face_id
    return out


def write_jsonl(path, records, extra_lines=()):
    lines = [json.dumps(r) for r in records] + list(extra_lines)
    path.write_text("\n".join(lines) + "\n")
    return path


# Frames 0.0, 0.1, 0.2, 0.4 s: each lasts until the next; the last as long as the median
# step (0.1 s). Face 1: happy 0.1 + 0.1, sad 0.2 (frame 2 lasts 0.2 s), happy 0.1.
RECORDS = [
    {"frame": 0, "t": 0.0, "faces": [face("happy", 1), face("sad", 2)]},
    {"frame": 1, "t": 0.1, "faces": [face("happy", 1)]},
    {"frame": 2, "t": 0.2, "faces": [face("sad", 1)]},
    {"frame": 4, "t": 0.4, "faces": [face("happy", 1), face("neutral", 3)]},
]


def test_tracks_by_id_and_time_shares_by_hand(tmp_path):
    rec = read_recording(write_jsonl(tmp_path / "run.jsonl", RECORDS))
    assert (rec.frames, rec.faces, rec.frames_with_faces) == (4, 6, 4)
    assert rec.classes == CLASSES and rec.summary is None
    assert (rec.t_start, rec.t_end) == (0.0, pytest.approx(0.5))
    assert rec.sampled_fps == pytest.approx(8.0)
    one, *others = rec.tracks  # most frames first
    assert one.key == "id 1" and one.samples == 4 and one.frames.tolist() == [0, 1, 2, 4]
    np.testing.assert_allclose(one.seconds, [0.1, 0.1, 0.2, 0.1])
    assert one.shares(CLASSES) == pytest.approx({"happy": 0.6, "sad": 0.4, "neutral": 0.0})
    assert [t.key for t in others] == ["id 2", "id 3"]
    np.testing.assert_allclose(one.probs[2], [0.1, 0.8, 0.1], rtol=1e-6)
    # All faces: happy 0.3 s, sad 0.2 + 0.1 s, neutral 0.1 s of 0.7 s.
    assert rec.shares() == pytest.approx({"happy": 3 / 7, "sad": 3 / 7, "neutral": 1 / 7})


def test_faces_without_id_are_tracked_by_position(tmp_path):
    records = [
        {"frame": i, "t": i / 10, "faces": [face("happy"), face("sad")][: 1 + (i % 2)]}
        for i in range(6)
    ]
    rec = read_recording(write_jsonl(tmp_path / "old.jsonl", records))
    first, second = rec.tracks
    assert (first.key, first.face_id, first.position, first.samples) == ("position 0", None, 0, 6)
    assert (second.key, second.position, second.samples) == ("position 1", 1, 3)
    # Position 1 is seen in frames 1, 3, 5 only: three segments, drawn apart.
    assert [(s.start, s.stop) for s in second.segments()] == [(0, 1), (1, 2), (2, 3)]
    assert [(s.start, s.stop) for s in first.segments()] == [(0, 6)]


def test_bad_lines_are_skipped_and_counted(tmp_path):
    path = write_jsonl(
        tmp_path / "cut.jsonl",
        RECORDS,
        ["", "not json", '{"frame": 5, "t": "late", "faces": []}', '{"frame": 6, "t": 0.6, "fa'],
    )
    rec = read_recording(path)
    assert rec.frames == 4 and rec.bad_lines == 4


def test_unusable_inputs_are_one_line_errors(tmp_path):
    runner = CliRunner()
    out = tmp_path / "r.html"

    def error_of(*args):
        result = runner.invoke(main, ["report", *map(str, args)])
        assert result.exit_code != 0 and "Traceback" not in result.output, result.output
        (line,) = [x for x in result.stderr.splitlines() if x.startswith("Error")]
        return line

    assert "no such file" in error_of(tmp_path / "missing.jsonl", "--out", out)
    empty = write_jsonl(tmp_path / "empty.jsonl", [], ["garbage"])
    assert "no frame records" in error_of(empty, "--out", out)
    mixed = [*RECORDS, {"frame": 9, "t": 1.0, "faces": [{"label": "a", "scores": {"a": 1.0}}]}]
    assert "one run per file" in error_of(write_jsonl(tmp_path / "m.jsonl", mixed), "--out", out)
    good = write_jsonl(tmp_path / "good.jsonl", RECORDS)
    assert "one per JSONL" in error_of(good, good, "--summary", good, "--out", out)
    other = tmp_path / "other.json"
    other.write_text('{"a": 1}')
    assert "not a 'fer-edge run --summary' file" in error_of(good, "--summary", other, "-o", out)
    assert "--summary: cannot read" in error_of(good, "--summary", good, "-o", out)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert "--out" in error_of(good, "--out", blocker / "r.html")
    assert not out.exists()


class Page(html.parser.HTMLParser):
    """Collects the share cells and summary cells of a report page."""

    def __init__(self):
        super().__init__()
        self.tags, self.shares, self.summary = [], [], {}
        self._cell = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append((tag, attrs))
        if tag == "td" and ("data-label" in attrs or "data-key" in attrs):
            self._cell = attrs

    def handle_data(self, data):
        if self._cell is not None:
            if "data-key" in self._cell:
                self.summary[self._cell["data-key"]] = data
            else:
                self.shares.append((self._cell["data-label"], data))
            self._cell = None


def test_page_is_self_contained_and_shows_the_numbers(tmp_path):
    path = write_jsonl(tmp_path / "run.jsonl", RECORDS)
    summary = {"frames": 4, "fps": 12.345, "model": "m_int8.tflite", "quantized": True}
    summary |= {"source": "video clip.mp4", "detector": "haar", "runtime": "litert 2.3.0"}
    summary_path_for(path).write_text(json.dumps(summary))
    page_text = report_html([read_recording(path)])
    # Nothing to fetch: no URL, no src, no link, no import.
    assert not re.search(r"https?:|\bsrc=|<link|@import|url\(", page_text)
    page = Page()
    page.feed(page_text)
    assert sum(tag == "svg" and "timeline" in a.get("class", "") for tag, a in page.tags) == 3
    assert page.summary["source"] == "video clip.mp4" and page.summary["frames"] == "4"
    assert page.summary["fps"] == "12.3" and page.summary["model"] == "m_int8.tflite (int8)"
    assert page.summary["detector"] == "haar" and page.summary["tracks"] == "3"
    # All faces first, then face id 1: happy 60%, sad 40%.
    assert page.shares[:3] == [("happy", "42.9%"), ("sad", "42.9%"), ("neutral", "14.3%")]
    assert page.shares[3:6] == [("happy", "60.0%"), ("sad", "40.0%"), ("neutral", "0.0%")]


def test_labels_from_the_file_are_escaped(tmp_path):
    builder = RecordingBuilder("<b>run</b>")
    builder.add({"frame": 0, "t": 0.0, "faces": [{"label": "<i>x", "scores": {"<i>x": 1.0}}]})
    text = report_html([builder.build()])
    assert "<i>x" not in text and "&lt;i&gt;x" in text and "<b>run" not in text


def test_many_faces_are_listed_not_drawn():
    builder = RecordingBuilder("crowd")
    for i in range(MAX_DRAWN_TRACKS + 5):
        builder.add({"frame": i, "t": i / 10, "faces": [face("happy", i + 1)]})
    text = report_html([builder.build()])
    assert text.count('<svg class="timeline"') == MAX_DRAWN_TRACKS
    assert "5 more faces, not drawn" in text


def test_nice_steps():
    assert [nice_step(s) for s in (1.0, 6.0, 9.9, 60.0, 3600.0)] == [0.2, 1.0, 2.0, 10.0, 500.0]
    assert nice_step(0.0) == 1.0


def test_timeline_is_one_area_per_class_inside_the_plot():
    n = 5 * MAX_STEPS + 7
    times = np.arange(n) / 30.0
    seconds = np.full(n, 1 / 30.0)
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(3), size=n).astype(np.float32)
    svg = timeline_svg(times, seconds, probs, [slice(0, n)], CLASSES, (0.0, n / 30.0))
    paths = re.findall(r'<path class="area" data-label="(\w+)" fill="(#\w+)" d="([^"]+)"', svg)
    assert [(label, fill) for label, fill, _ in paths] == list(class_colors(CLASSES).items())
    for _, _, d in paths:
        points = np.array(re.findall(r"(-?[\d.]+),(-?[\d.]+)", d), float)
        assert 46 <= points[:, 0].min() <= points[:, 0].max() <= 900 - 12 + 0.05
        assert 8 - 0.05 <= points[:, 1].min() <= points[:, 1].max() <= 190 - 30 + 0.05
        # Long tracks are averaged down: two points per step on each edge.
        assert len(points) <= 4 * MAX_STEPS
    # The top class's upper edge is the plot's top: probabilities sum to 1.
    top = np.array(re.findall(r"(-?[\d.]+),(-?[\d.]+)", paths[-1][2]), float)
    assert np.abs(top[: len(top) // 2, 1] - 8).max() < 0.15


def test_png_figures_with_matplotlib(tmp_path):
    pytest.importorskip("matplotlib")
    import cv2

    path = write_jsonl(tmp_path / "run.jsonl", RECORDS)
    result = CliRunner().invoke(
        main, ["report", str(path), "-o", str(tmp_path / "r.html"), "--png"]
    )
    assert result.exit_code == 0, result.output
    figures = sorted((tmp_path / "r-figures").iterdir())
    assert [p.name for p in figures] == ["01-run-id1.png", "01-run-id2.png", "01-run-id3.png"]
    image = cv2.imread(str(figures[0]))
    assert image.shape == (340, 1000, 3)
    happy = np.array([40, 200, 250])  # BGR of the happy colour fills part of the figure
    assert (np.abs(image.astype(int) - happy).sum(axis=2) < 30).mean() > 0.05


def test_png_without_matplotlib_writes_the_html(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    path = write_jsonl(tmp_path / "run.jsonl", RECORDS)
    result = CliRunner().invoke(
        main, ["report", str(path), "-o", str(tmp_path / "r.html"), "--png"]
    )
    assert result.exit_code == 0, result.output
    assert "matplotlib is not installed" in result.stderr and (tmp_path / "r.html").is_file()
    assert not (tmp_path / "r-figures").exists()
