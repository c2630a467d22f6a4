"""`fer-edge run --serve` end to end: a real run in a subprocess, real HTTP on 127.0.0.1, and the
page in a real headless Chromium (skipped when no Chromium is installed).

One run serves every test in this file; it is stopped with Ctrl-C (SIGINT) at the end and must
exit cleanly with its summary.
"""

import html.parser
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from fer_edge.bench.facevideo import compose_frames, write_video
from fer_edge.cli import main
from fer_edge.labels import FER2013_CLASSES

FACE = Path(__file__).resolve().parents[1] / "data" / "astronaut_face.png"
STAGES = ["capture", "detect", "classify", "output"]
DEADLINE = 60.0


def wait_until(condition, deadline=DEADLINE, message="condition"):
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {message}")


def get_json(url):
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def frames_with_faces(url):
    """``/metrics`` once the run has shown faces; ``None`` while the server is still starting."""
    try:
        metrics = get_json(url + "metrics")
    except OSError:  # a busy machine may reset the first connections while the run starts
        return None
    return metrics if metrics["frames"] >= 3 and metrics["faces"] > 0 else None


@pytest.fixture(scope="module")
def long_face_video(tmp_path_factory):
    """600 small frames of the astronaut drifting around: longer than any test here needs."""
    face = cv2.imread(str(FACE), cv2.IMREAD_GRAYSCALE)
    frames = compose_frames([face] * 150, frame_size=(320, 240), face_size=110, hold=4, jitter=3)
    path = tmp_path_factory.mktemp("serve") / "faces.avi"
    write_video(path, frames, 15.0)
    return path


@pytest.fixture(scope="module")
def live_run(tmp_path_factory, tiny_tflite, long_face_video):
    """``fer-edge run --serve 0`` (loopback, a free port) over the long video at 15 fps."""
    log = tmp_path_factory.mktemp("serve-log") / "stderr.txt"
    cmd = [
        sys.executable, "-m", "fer_edge", "run", "-m", str(tiny_tflite["int8"]),
        "-s", str(long_face_video), "--max-fps", "15", "--serve", "0",
    ]  # fmt: skip
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    with log.open("w") as stderr:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=stderr, env=env, text=True)

    def announced():
        assert proc.poll() is None, log.read_text()
        lines = [line for line in log.read_text().splitlines() if line.startswith("live view: ")]
        return lines[0].split()[2] if lines else None

    try:
        url = wait_until(announced, message="the live view URL")
        wait_until(lambda: frames_with_faces(url), message="the first frames with faces")
        yield url, proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    stderr = log.read_text()
    assert proc.returncode == 130, stderr  # stopped by Ctrl-C, outputs complete
    assert "(interrupted;" in stderr and "Traceback" not in stderr


def port_of(url):
    return int(url.rsplit(":", 1)[1].strip("/"))


def open_stream(port):
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(b"GET /stream.mjpg HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
    return sock, sock.makefile("rb")


def read_jpegs(stream, count):
    """Read the response head, then ``count`` parts; return the decoded images."""
    assert stream.readline().split()[1] == b"200"
    while stream.readline().strip():
        pass
    images = []
    for _ in range(count):
        line = stream.readline()
        while line == b"\r\n":
            line = stream.readline()
        assert line.strip() == b"--frame"
        headers = {}
        while line := stream.readline().strip():
            key, value = line.decode().split(":", 1)
            headers[key.lower()] = value.strip()
        body = stream.read(int(headers["content-length"]))
        images.append(cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_COLOR))
    return images


def test_serves_on_loopback_by_default(live_run):
    url, _ = live_run
    assert url.startswith("http://127.0.0.1:") and port_of(url) > 0


def test_metrics_schema_and_progress(live_run):
    url, _ = live_run
    first = get_json(url + "metrics")
    assert set(first) == {
        "frames", "faces", "fps", "stage_ms", "viewers", "encoded", "uptime_s",
        "last_frame_age_s", "run",
    }  # fmt: skip
    assert isinstance(first["frames"], int) and isinstance(first["faces"], int)
    assert first["fps"] > 0 and first["uptime_s"] > 0 and first["last_frame_age_s"] >= 0
    assert list(first["stage_ms"]) == STAGES
    assert all(isinstance(v, float) and v > 0 for v in first["stage_ms"].values())
    assert first["run"]["model"] == "tiny_int8.tflite" and first["run"]["detector"] == "yunet"
    assert first["run"]["source"] == "video faces.avi"
    assert first["run"]["runtime"].startswith("litert")
    later = wait_until(
        lambda: (m := get_json(url + "metrics"))["frames"] > first["frames"] and m,
        message="frames to advance",
    )
    assert later["uptime_s"] > first["uptime_s"]

    faces = get_json(url + "faces")
    assert faces["frame"] >= first["frames"] - 1 and faces["faces"]
    assert faces["faces"][0]["label"] in FER2013_CLASSES
    assert isinstance(faces["faces"][0]["id"], int) and faces["faces"][0]["id"] >= 1
    assert get_json(url + "healthz")["status"] == "ok"


def test_two_viewers_at_once(live_run):
    url, _ = live_run
    port = port_of(url)
    (a, fa), (b, fb) = open_stream(port), open_stream(port)
    try:
        seen = wait_until(
            lambda: (m := get_json(url + "metrics"))["viewers"] == 2 and m, message="two viewers"
        )
        for stream in (fa, fb):
            images = read_jpegs(stream, 3)
            assert all(image.shape == (240, 320, 3) for image in images)
        assert get_json(url + "metrics")["encoded"] > seen["encoded"]
    finally:
        for closable in (fa, a, fb, b):
            closable.close()


def test_a_viewer_that_vanishes_mid_stream_does_not_stop_the_loop(live_run):
    url, proc = live_run
    sock, stream = open_stream(port_of(url))
    read_jpegs(stream, 1)
    stream.read(100)  # in the middle of a part
    stream.close()
    sock.close()
    after = get_json(url + "metrics")["frames"]
    wait_until(lambda: get_json(url + "metrics")["frames"] >= after + 10, message="10 more frames")
    wait_until(lambda: get_json(url + "metrics")["viewers"] == 0, message="the stream to end")
    assert proc.poll() is None


class BodyAttributes(html.parser.HTMLParser):
    """Collects <body data-*> and the data-label of each face card from a DOM dump."""

    def __init__(self):
        super().__init__()
        self.body, self.cards = {}, []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "body":
            self.body = attrs
        elif "face" in (attrs.get("class") or "").split():
            self.cards.append(attrs.get("data-label"))


def test_page_in_headless_chromium(live_run, tmp_path, chromium):
    url, _ = live_run
    cmd = [
        chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
        "--no-first-run", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--disable-extensions", "--mute-audio",
        f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1280,800",
        # Virtual time here runs as fast as real time: the page polls and streams for 5 s.
        "--virtual-time-budget=5000", "--dump-dom", url,
    ]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    page = BodyAttributes()
    page.feed(done.stdout)
    body = page.body
    # The face list shows labels, as cards and in the page's own record of what it showed.
    assert page.cards and set(page.cards) <= set(FER2013_CLASSES), done.stdout[-2000:]
    labels = body["data-face-labels"].split(",")
    assert labels and set(labels) <= set(FER2013_CLASSES)
    assert all(face_id.isdigit() for face_id in body["data-face-ids"].split(","))
    assert int(body["data-face-polls"]) >= 2
    # The stream image loaded at the video's size and changed while the page watched it.
    assert int(body["data-stream-width"]) == 320
    assert int(body["data-picture-changes"]) >= 2
    assert float(body["data-fps"]) > 0 and "data-errors" not in body


def test_bad_serve_values_are_one_line_errors(tiny_tflite, long_face_video):
    def errors_of(*args):
        result = CliRunner().invoke(main, ["run", "-m", str(tiny_tflite["int8"]), *args])
        assert result.exit_code != 0 and "Traceback" not in result.output
        return [line for line in result.stderr.splitlines() if line.startswith("Error")]

    source = ["-s", str(long_face_video), "--max-frames", "2"]
    (error,) = errors_of(*source, "--serve", "web")
    assert "--serve" in error and "[HOST:]PORT" in error
    (error,) = errors_of(*source, "--serve", "127.0.0.1:70000")
    assert "0-65535" in error
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        (error,) = errors_of(*source, "--serve", str(port))
    assert f"--serve 127.0.0.1:{port}: cannot listen there" in error
