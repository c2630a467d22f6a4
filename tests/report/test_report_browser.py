"""The report of a real run, opened in a real headless Chromium (skipped without one).

The run: the two-face astronaut clip through the tiny real TFLite model. The page must render
(every face's timeline drawn, over the right stretch of time, in the class colours) and show
the numbers that the JSONL holds, computed here on their own from the JSONL lines.
"""

import html.parser
import json
import statistics
import subprocess
from collections import defaultdict

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from fer_edge.cli import main
from fer_edge.labels import FER2013_CLASSES
from fer_edge.report.svgchart import ChartBox, class_colors

HEADLESS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-extensions", "--mute-audio",
]  # fmt: skip


def expected_from_jsonl(lines):
    """Per face id: the share of time of each top label (a frame lasts until the next one)."""
    times = [line["t"] for line in lines]
    steps = [max(0.0, b - a) for a, b in zip(times[:-1], times[1:], strict=True)]
    durations = [*steps, statistics.median(steps)]
    seconds = defaultdict(lambda: dict.fromkeys(FER2013_CLASSES, 0.0))
    spans = {}
    for line, duration in zip(lines, durations, strict=True):
        for face in line["faces"]:
            seconds[face["id"]][face["label"]] += duration
            first = spans.get(face["id"], (line["t"], None))[0]
            spans[face["id"]] = (first, line["t"] + duration)
    shares = {
        f"id {i}": {c: v / sum(by_label.values()) for c, v in by_label.items()}
        for i, by_label in seconds.items()
    }
    return shares, {f"id {i}": span for i, span in spans.items()}, times[-1] + durations[-1]


class ReportDom(html.parser.HTMLParser):
    """The body's data-*, each face article's data-* and share cells, the summary cells."""

    def __init__(self):
        super().__init__()
        self.body, self.faces, self.summary = {}, {}, {}
        self._face, self._cell = None, None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "body":
            self.body = attrs
        elif tag == "article" and "track" in attrs.get("class", ""):
            self._face = attrs["data-track"]
            self.faces[self._face] = {"attrs": attrs, "shares": {}}
        elif tag == "td" and ("data-key" in attrs or "share" in attrs.get("class", "")):
            self._cell = attrs

    def handle_data(self, data):
        if self._cell is None:
            return
        if "data-key" in self._cell:
            self.summary[self._cell["data-key"]] = data
        elif self._face is not None:
            self.faces[self._face]["shares"][self._cell["data-label"]] = data
        self._cell = None


@pytest.fixture(scope="module")
def report(tmp_path_factory, tiny_tflite, two_face_video):
    """The run's JSONL and summary, and the report made from them by `fer-edge report`."""
    out = tmp_path_factory.mktemp("report")
    runner = CliRunner()
    run = runner.invoke(
        main,
        [
            "run", "-m", str(tiny_tflite["float"]), "-s", str(two_face_video),
            "--jsonl", str(out / "pair.jsonl"), "--summary", str(out / "pair.summary.json"),
        ],
    )  # fmt: skip
    assert run.exit_code == 0, run.output
    made = runner.invoke(main, ["report", str(out / "pair.jsonl"), "-o", str(out / "pair.html")])
    assert made.exit_code == 0, made.output
    lines = [json.loads(line) for line in (out / "pair.jsonl").read_text().splitlines()]
    summary = json.loads((out / "pair.summary.json").read_text())
    return out / "pair.html", lines, summary


def chromium_cmd(chromium, tmp_path, *args):
    return [chromium, *HEADLESS, f"--user-data-dir={tmp_path / 'profile'}", *args]


def test_report_renders_and_shows_the_jsonl_numbers(report, chromium, tmp_path):
    page, lines, summary = report
    cmd = chromium_cmd(chromium, tmp_path, "--window-size=1280,900", "--dump-dom", page.as_uri())
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    dom = ReportDom()
    dom.feed(done.stdout)
    shares, spans, t_end = expected_from_jsonl(lines)
    assert len(shares) == 7  # the pair moves three times; one face keeps its id once

    # Every face's timeline was drawn by the browser.
    assert int(dom.body["data-drawn-timelines"]) == len(shares) == int(dom.body["data-timelines"])
    assert int(dom.body["data-drawn-areas"]) >= len(shares)
    assert set(dom.faces) == set(shares)
    box = ChartBox()
    for key, face in dom.faces.items():
        # The shares shown are the JSONL's.
        assert face["shares"] == {c: f"{v:.1%}" for c, v in shares[key].items()}, key
        # Its areas cover the stretch of time the face was seen in (the axis spans the run).
        start, end = spans[key]
        x0 = box.left + start / t_end * box.plot_width
        x1 = box.left + end / t_end * box.plot_width
        attrs = face["attrs"]
        assert float(attrs["data-drawn-x0"]) == pytest.approx(x0, abs=0.6), key
        assert float(attrs["data-drawn-x1"]) == pytest.approx(x1, abs=0.6), key
        assert int(attrs["data-samples"]) == sum(
            f["id"] == int(key.split()[1]) for line in lines for f in line["faces"]
        )

    s = dom.summary
    assert s["frames"] == str(len(lines)) == str(summary["frames"])
    assert s["faces"] == str(sum(len(line["faces"]) for line in lines))
    assert s["tracks"] == str(len(shares))
    assert s["fps"] == f"{summary['fps']:.1f}" and s["sampled_fps"] == "10.0"
    assert s["model"] == "tiny_float.tflite (float)" and s["detector"] == "yunet"
    assert s["source"] == "video pair.mp4"


def test_screenshot_shows_the_timelines(report, chromium, tmp_path):
    page, lines, _ = report
    shot = tmp_path / "report.png"
    cmd = chromium_cmd(
        chromium, tmp_path, "--window-size=1280,1400", f"--screenshot={shot}", page.as_uri()
    )
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and shot.is_file(), done.stderr[-2000:]
    image = cv2.imread(str(shot))
    assert image.shape == (1400, 1280, 3)
    # The most frequent top label's colour covers a real part of the page: the stacked areas.
    top = statistics.mode(f["label"] for line in lines for f in line["faces"])
    rgb = class_colors(FER2013_CLASSES)[top]
    bgr = np.array([int(rgb[5:7], 16), int(rgb[3:5], 16), int(rgb[1:3], 16)])
    share = (np.abs(image.astype(int) - bgr).sum(axis=2) < 12).mean()
    assert share > 0.02, (top, share)
