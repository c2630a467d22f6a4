"""The live view's HTTP server on 127.0.0.1, fed by a publisher thread standing in for the loop.

Real sockets and a real ThreadingHTTPServer throughout; every network wait has a deadline.
"""

import contextlib
import io
import json
import socket
import struct
import threading
import time
import urllib.error
import urllib.request

import cv2
import numpy as np
import pytest

from fer_edge.detect import Box
from fer_edge.device.serve import MAX_VIEWERS, LiveServer, ServeAddress, parse_address
from fer_edge.errors import FerEdgeError
from fer_edge.faces import FaceResult, Frame, FrameResult
from fer_edge.labels import FER2013_CLASSES
from fer_edge.timing import StageTimings

STAGES = ("capture", "detect", "classify", "output")
DEADLINE = 20.0


def face(label_index=3):
    probs = np.full(7, 0.02, dtype=np.float32)
    probs[label_index] = 0.88
    return FaceResult.from_probs(Box(40, 30, 100, 100), probs, FER2013_CLASSES)


class Publisher(threading.Thread):
    """Publishes numbered frames like the device loop, and records per-stage timings."""

    def __init__(self, server, size=(320, 240), fps=40.0, noise=False):
        super().__init__(daemon=True)
        self.server, self.size, self.period, self.noise = server, size, 1.0 / fps, noise
        self.count = 0
        self.stop = threading.Event()
        rng = np.random.default_rng(0)
        shape = (size[1], size[0], 3)
        # Noise compresses badly: big JPEGs fill socket buffers quickly.
        self.base = (
            rng.integers(0, 255, shape, dtype=np.uint8) if noise else np.full(shape, 90, np.uint8)
        )

    def run(self):
        while not self.stop.is_set():
            image = self.base.copy()
            cv2.putText(image, str(self.count), (10, 200), cv2.FONT_HERSHEY_SIMPLEX, 2, (255,) * 3)
            for name in STAGES:
                self.server.timings.add(name, 0.001 * (STAGES.index(name) + 1))
            self.server.write(
                FrameResult(Frame(self.count, self.count * self.period, image), [face()])
            )
            self.count += 1
            time.sleep(self.period)


class Served:
    def __init__(self, **publisher):
        self.timings = StageTimings(STAGES)
        self.out = io.StringIO()
        self.live = LiveServer(
            parse_address("0"), self.timings, {"model": "m.tflite"}, announce=self.out
        )
        self.url = self.live.url
        self.port = self.live.address.port
        self.publisher = Publisher(self, **publisher)

    def write(self, result):
        self.live.write(result)

    def close(self):
        self.publisher.stop.set()
        self.publisher.join(timeout=5)
        self.live.close()


@pytest.fixture
def served():
    s = Served()
    s.publisher.start()
    wait_until(lambda: s.publisher.count >= 3)
    yield s
    s.close()


def wait_until(condition, deadline=DEADLINE, message="condition"):
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if condition():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {message}")


def get(url, timeout=10.0):
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read()


def get_json(url):
    status, headers, body = get(url)
    assert headers["Content-Type"] == "application/json"
    return status, json.loads(body)


class MjpegClient:
    """A raw-socket MJPEG reader that parses the multipart stream part by part."""

    def __init__(self, port, rcvbuf=None, timeout=10.0):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(timeout)
        self.sock.connect(("127.0.0.1", port))
        self.sock.sendall(b"GET /stream.mjpg HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        self.file = self.sock.makefile("rb")

    def status_and_headers(self):
        status = self.file.readline().decode()
        headers = {}
        while line := self.file.readline().strip():
            key, value = line.decode().split(":", 1)
            headers[key.lower()] = value.strip()
        return int(status.split()[1]), headers

    def part(self):
        line = self.file.readline()
        while line in (b"\r\n", b"\n"):
            line = self.file.readline()
        assert line.strip() == b"--frame", line
        headers = {}
        while line := self.file.readline().strip():
            key, value = line.decode().split(":", 1)
            headers[key.lower()] = value.strip()
        assert headers["content-type"] == "image/jpeg"
        body = self.file.read(int(headers["content-length"]))
        return int(headers["x-frame-index"]), body

    def close(self):
        self.file.close()
        self.sock.close()


# --- addresses ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "host", "port"),
    [
        ("8080", "127.0.0.1", 8080),
        ("0", "127.0.0.1", 0),
        (":9000", "127.0.0.1", 9000),
        ("0.0.0.0:8080", "0.0.0.0", 8080),
        ("pi.local:80", "pi.local", 80),
        ("[::1]:8081", "::1", 8081),
    ],
)
def test_parse_address(spec, host, port):
    assert parse_address(spec) == ServeAddress(host, port)


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [("http", "expected [HOST:]PORT"), ("70000", "0-65535"), ("::1:80", "brackets"), ("", "PORT")],
)
def test_parse_address_errors(spec, fragment):
    with pytest.raises(FerEdgeError) as info:
        parse_address(spec)
    assert info.value.option == "serve"  # the CLI prints it as --serve
    assert fragment in str(info.value)


def test_binds_loopback_unless_told_otherwise():
    out = io.StringIO()
    live = LiveServer(parse_address("0"), announce=out)
    try:
        host, port = live._server.socket.getsockname()[:2]
        assert host == "127.0.0.1" and port > 0
        assert out.getvalue().startswith(f"live view: http://127.0.0.1:{port}/")
        status, _, _ = get(live.url + "healthz")
        assert status == 200
        # Another address of this machine (if it has one) must not answer.
        probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            probe.connect(("192.0.2.1", 9))  # UDP connect sends nothing; it picks a source IP
            own_ip = probe.getsockname()[0]
        except OSError:
            own_ip = None
        finally:
            probe.close()
        if own_ip and not own_ip.startswith("127."):
            with pytest.raises(OSError), socket.create_connection((own_ip, port), timeout=3):
                pass
    finally:
        live.close()


def test_ipv6_loopback():
    try:
        live = LiveServer(parse_address("[::1]:0"), announce=io.StringIO())
    except FerEdgeError as exc:
        pytest.skip(f"no IPv6 loopback here ({exc})")
    try:
        assert live.url.startswith("http://[::1]:")
        status, _ = get_json(live.url + "healthz")
        assert status == 200
    finally:
        live.close()


def test_port_in_use_is_a_one_line_error():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(FerEdgeError, match=f"--serve 127.0.0.1:{port}: cannot listen"):
            LiveServer(ServeAddress("127.0.0.1", port), announce=io.StringIO())


# --- routes -------------------------------------------------------------------------------


def test_page_json_routes_and_404(served):
    status, headers, body = get(served.url)
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert "default-src 'none'" in headers["Content-Security-Policy"]
    page = body.decode()
    assert 'src="stream.mjpg"' in page and "fetch(" in page
    assert "http://" not in page and "https://" not in page  # no CDN, nothing off-box

    status, faces = get_json(served.url + "faces")
    assert status == 200 and set(faces) == {"frame", "t", "faces"}
    (one,) = faces["faces"]
    assert one["label"] == "happy" and one["box"] == [40, 30, 100, 100]
    assert list(one["scores"]) == list(FER2013_CLASSES)

    status, metrics = get_json(served.url + "metrics?cache=1")
    assert status == 200
    assert set(metrics) == {
        "frames", "faces", "fps", "stage_ms", "viewers", "encoded", "uptime_s",
        "last_frame_age_s", "run",
    }  # fmt: skip
    assert metrics["faces"] == metrics["frames"] >= 3  # one face per frame
    assert list(metrics["stage_ms"]) == list(STAGES)
    # The publisher records 1, 2, 3 and 4 ms for the four stages.
    assert [round(v) for v in metrics["stage_ms"].values()] == [1, 2, 3, 4]
    assert metrics["fps"] > 0 and metrics["viewers"] == 0 and metrics["run"]["model"] == "m.tflite"

    status, health = get_json(served.url + "healthz")
    assert status == 200 and health["status"] == "ok" and health["frames"] >= 3

    for path in ("nope", "index.html", "live.html", "stream.mjpg/x", "static/../live.html", "%2e"):
        status, _, body = get(served.url + path)
        assert status == 404 and body == b"not found\n", path
    request = urllib.request.Request(served.url, data=b"x", method="POST")
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(request, timeout=10)
    assert info.value.code == 501


def test_snapshot_is_the_annotated_frame(served):
    status, headers, body = get(served.url + "snapshot.jpg")
    assert status == 200 and headers["Content-Type"] == "image/jpeg"
    image = cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_COLOR)
    assert image.shape == (240, 320, 3)
    # The face box is drawn in happy's colour (BGR 40, 200, 250) on a flat gray frame.
    columns = image[60:110, 34:47].mean(axis=0)  # around the box's left edge at x=40
    edge = columns[np.argmax(columns[:, 2])]
    # A 1-pixel line loses some saturation to JPEG's chroma subsampling; gray has R == B.
    assert edge[2] > 170 and edge[2] - edge[0] > 50, columns


def test_healthz_reports_a_stalled_loop(served, monkeypatch):
    served.publisher.stop.set()
    served.publisher.join(timeout=5)
    monkeypatch.setattr("fer_edge.device.livefeed.STALL_SECONDS", 0.2)
    time.sleep(0.4)
    status, health = get_json(served.url + "healthz")
    assert status == 503 and health["status"] == "stalled"


# --- streams ------------------------------------------------------------------------------


def test_two_viewers_get_fresh_frames(served):
    a, b = MjpegClient(served.port), MjpegClient(served.port)
    try:
        for client in (a, b):
            status, headers = client.status_and_headers()
            assert status == 200
            assert headers["content-type"] == "multipart/x-mixed-replace; boundary=frame"
        wait_until(lambda: get_json(served.url + "metrics")[1]["viewers"] == 2, message="2 viewers")
        for client in (a, b):
            parts = [client.part() for _ in range(5)]
            indices = [index for index, _ in parts]
            assert indices == sorted(set(indices))  # strictly newer each time
            image = cv2.imdecode(np.frombuffer(parts[-1][1], np.uint8), cv2.IMREAD_COLOR)
            assert image.shape == (240, 320, 3)
    finally:
        a.close()
        b.close()
    wait_until(lambda: get_json(served.url + "metrics")[1]["viewers"] == 0, message="0 viewers")


def test_slow_viewer_skips_frames_and_never_holds_the_loop():
    served = Served(size=(480, 360), fps=30.0, noise=True)
    served.publisher.start()
    slow = MjpegClient(served.port, rcvbuf=4096)
    try:
        assert slow.status_and_headers()[0] == 200
        first, _ = slow.part()
        start = served.publisher.count
        # Stop reading while the loop runs on: the socket buffers fill and the sender blocks.
        wait_until(lambda: served.publisher.count >= start + 40, message="publisher to go on")
        indices = [slow.part()[0] for _ in range(40)]
        gaps = np.diff([first, *indices])
        assert (gaps >= 1).all() and gaps.max() > 1, indices  # frames dropped, not queued
        assert indices[-1] > start + 20  # and it caught up with the loop
    finally:
        slow.close()
        served.close()


def test_vanishing_clients_do_not_hurt(served, capsys):
    for i in range(12):
        client = MjpegClient(served.port)
        client.sock.recv(5)
        if i % 2:
            # An abrupt reset rather than a polite close.
            client.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        client.close()
    with socket.create_connection(("127.0.0.1", served.port), timeout=5) as half:
        half.sendall(b"GET /metr")  # a request that never finishes
        before = served.publisher.count
        wait_until(lambda: served.publisher.count > before + 5, message="the loop to go on")
        wait_until(lambda: served.live.feed.viewers == 0, message="streams to notice")
        status, metrics = get_json(served.url + "metrics")
        assert status == 200 and metrics["frames"] > before
    assert "error serving" not in capsys.readouterr().err


def test_viewer_limit(served):
    clients = [MjpegClient(served.port) for _ in range(MAX_VIEWERS)]
    try:
        for client in clients:
            assert client.status_and_headers()[0] == 200
        wait_until(lambda: served.live.feed.viewers == MAX_VIEWERS, message="all viewers")
        status, _, body = get(served.url + "stream.mjpg")
        assert status == 503 and body == b"too many viewers\n"
    finally:
        for client in clients:
            client.close()


def test_close_ends_streams_and_frees_the_port():
    served = Served()
    served.publisher.start()
    client = MjpegClient(served.port)
    assert client.status_and_headers()[0] == 200
    client.part()
    served.close()
    with contextlib.suppress(ConnectionError):
        while client.file.read(65536):
            pass  # drains to EOF: the server ended the stream
    client.close()
    with socket.socket() as again:
        again.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as any server would
        again.bind(("127.0.0.1", served.port))
