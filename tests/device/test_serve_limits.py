"""The live view under many and slow clients: the viewer cap, request deadlines, thread caps.

Real sockets against a real :class:`~fer_edge.device.serve.LiveServer` on 127.0.0.1; every
wait has a deadline, and the deadlines under test are shortened so the tests stay quick.
"""

import contextlib
import io
import socket
import subprocess
import threading
import time

import numpy as np
import pytest

from fer_edge.device import serve
from fer_edge.device.serve import MAX_VIEWERS, LiveServer, parse_address
from fer_edge.faces import Frame, FrameResult
from fer_edge.timing import StageTimings

STAGES = ("capture", "detect", "classify", "output")


@contextlib.contextmanager
def live_server(frames: bool = True):
    """A LiveServer with a publisher thread standing in for the frame loop."""
    live = LiveServer(parse_address("0"), StageTimings(STAGES), announce=io.StringIO())
    stop = threading.Event()

    def publish():
        image = np.full((120, 160, 3), 90, np.uint8)
        index = 0
        while not stop.is_set():
            live.write(FrameResult(Frame(index, index / 30, image), []))
            index += 1
            time.sleep(1 / 30)

    publisher = threading.Thread(target=publish, daemon=True)
    if frames:
        publisher.start()
    try:
        yield live
    finally:
        stop.set()
        if frames:
            publisher.join(timeout=5)
        live.close()


def status_of(sock: socket.socket) -> int:
    """Read the status line of a response on ``sock`` (0 if the server just closed it)."""
    line = sock.makefile("rb").readline()
    return int(line.split()[1]) if line else 0


def burst(live: LiveServer, clients: int) -> tuple[list[int], int, list[socket.socket]]:
    """Open ``clients`` streams at the same instant; return their statuses, the peak viewer
    count seen while they were answered, and the open sockets."""
    barrier = threading.Barrier(clients)
    statuses: list[int] = []
    socks: list[socket.socket] = []
    lock = threading.Lock()
    peak = [0]

    def viewer():
        sock = socket.create_connection(("127.0.0.1", live.address.port), timeout=10)
        with lock:
            socks.append(sock)
        barrier.wait(timeout=10)
        sock.sendall(b"GET /stream.mjpg HTTP/1.0\r\n\r\n")
        status = status_of(sock)
        with lock:
            statuses.append(status)
            peak[0] = max(peak[0], live.feed.viewers)

    threads = [threading.Thread(target=viewer) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return statuses, peak[0], socks


def test_twenty_concurrent_viewers_admit_exactly_the_cap():
    clients = 20
    with live_server() as live:
        for _ in range(3):  # a few bursts: the race needs the threads to interleave
            statuses, peak, socks = burst(live, clients)
            try:
                assert sorted(statuses) == [200] * MAX_VIEWERS + [503] * (clients - MAX_VIEWERS)
                assert peak <= MAX_VIEWERS
            finally:
                for sock in socks:
                    sock.close()
            deadline = time.monotonic() + 10
            while live.feed.viewers and time.monotonic() < deadline:
                time.sleep(0.02)
            assert live.feed.viewers == 0


def test_a_client_trickling_bytes_is_dropped_at_the_request_deadline(monkeypatch):
    monkeypatch.setattr(serve, "REQUEST_DEADLINE", 1.0, raising=False)
    with live_server(frames=False) as live:
        sock = socket.create_connection(("127.0.0.1", live.address.port), timeout=5)
        sock.sendall(b"G")
        start = time.monotonic()
        closed_after = None
        # One byte every 0.2 s: each read succeeds long before the per-read timeout (10 s).
        for byte in b"ET /metrics HTTP/1.0\r\nX-Slow: " + b"a" * 60:
            time.sleep(0.2)
            try:
                sock.sendall(bytes([byte]))
            except OSError:
                closed_after = time.monotonic() - start
                break
            sock.setblocking(False)
            try:
                if sock.recv(1024) == b"":
                    closed_after = time.monotonic() - start
                    break
            except BlockingIOError:
                pass
            except OSError:
                closed_after = time.monotonic() - start
                break
            finally:
                sock.setblocking(True)
            if time.monotonic() - start > 6:
                break
        sock.close()
        assert closed_after is not None, "the server kept the trickling client past 6 s"
        assert closed_after < 4.0


def test_connection_threads_are_capped_and_extra_clients_turned_away(monkeypatch):
    monkeypatch.setattr(serve, "MAX_CONNECTIONS", 4, raising=False)
    with live_server(frames=False) as live:
        port = live.address.port
        # Idle connections that never send a request each hold a handler thread until the
        # deadline; past the cap, the server answers 503 at once instead of starting a thread.
        idle = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(4)]
        try:
            time.sleep(0.3)
            threads_before = threading.active_count()
            extra = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(6)]
            try:
                started = time.monotonic()
                assert [status_of(sock) for sock in extra] == [503] * 6
                assert time.monotonic() - started < 3.0
                assert threading.active_count() <= threads_before
            finally:
                for sock in extra:
                    sock.close()
        finally:
            for sock in idle:
                sock.close()
        # Once the idle clients are gone their slots are free again.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
                sock.sendall(b"GET /healthz HTTP/1.0\r\n\r\n")
                if status_of(sock) == 200:
                    break
            time.sleep(0.1)
        else:
            raise AssertionError("slots were not freed after the idle clients left")


def listen_backlog(port: int) -> int:
    """The kernel's accept-queue limit of the listening socket on ``port`` (``ss`` Send-Q)."""
    out = subprocess.run(
        ["ss", "-ltnH", f"sport = :{port}"], capture_output=True, text=True, check=True
    ).stdout.split()
    return int(out[2])


def test_listen_backlog_takes_a_burst_of_clients():
    try:
        subprocess.run(["ss", "-V"], capture_output=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("ss (iproute2) is not installed")
    with live_server(frames=False) as live:
        assert listen_backlog(live.address.port) >= 64
