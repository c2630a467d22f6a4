"""``fer-edge run --serve``: a live page, an MJPEG stream and JSON status over HTTP.

Standard library only: a :class:`~http.server.ThreadingHTTPServer` in a daemon thread, one
thread per client. The routes are fixed (:data:`ROUTES`); anything else is a 404, and the only
file served is the bundled page. The frame loop talks to the clients through a
:class:`~fer_edge.device.livefeed.LiveFeed`, so a slow or vanished client costs the loop nothing
but a dropped frame.
"""

from __future__ import annotations

import contextlib
import io
import ipaddress
import json
import socket
import socketserver
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import IO, Any

from fer_edge.device.livefeed import LiveFeed
from fer_edge.device.serveauth import Access, access_for, is_loopback
from fer_edge.errors import FerEdgeError
from fer_edge.faces import FrameResult
from fer_edge.timing import StageTimings

DEFAULT_HOST = "127.0.0.1"
PAGE = "live.html"
#: Open MJPEG streams allowed at once; each costs a thread and a socket, never loop time.
MAX_VIEWERS = 8
#: A client that accepts no data for this long is dropped.
CLIENT_TIMEOUT = 10.0
#: The whole request (line and headers) must arrive within this many seconds, however it is
#: spread out: a per-read timeout alone restarts on every byte a slow client sends.
REQUEST_DEADLINE = 10.0
#: Connections served at once (viewers included); past it a client gets a 503 and no thread.
MAX_CONNECTIONS = 32
#: Pending connections the kernel queues before accept() (socketserver's default is 5).
LISTEN_BACKLOG = 64
BUSY_RESPONSE = (
    b"HTTP/1.0 503 Service Unavailable\r\nContent-Type: text/plain\r\n"
    b"Content-Length: 5\r\nConnection: close\r\n\r\nbusy\n"
)
#: How often a waiting stream checks whether the run has ended.
WAIT_SLICE = 0.5
#: How long ``/snapshot.jpg`` waits for a fresh frame before answering 503.
SNAPSHOT_WAIT = 5.0
BOUNDARY = "frame"
#: Send buffer per stream. The kernel's default grows to megabytes, which for a slow viewer
#: means dozens of stale frames queued in the socket; a few frames' worth keeps it current.
STREAM_SNDBUF = 128 * 1024
#: The page is self-contained: inline style and script, images from this server only.
PAGE_POLICY = (
    "default-src 'none'; img-src 'self'; connect-src 'self'; "
    "style-src 'unsafe-inline'; script-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"
)


@dataclass(frozen=True)
class ServeAddress:
    """Where to listen.

    Attributes:
        host: an IP address or host name; ``127.0.0.1`` unless one was given.
        port: the TCP port; ``0`` picks a free one.
    """

    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def parse_address(spec: str) -> ServeAddress:
    """Parse ``--serve [HOST:]PORT``: ``8080``, ``0.0.0.0:8080``, ``[::1]:8080``, ``pi.local:80``.

    Raises:
        FerEdgeError: not a port, or a port out of range (its option is ``serve``).
    """
    text = spec.strip()
    host, sep, port_text = text.rpartition(":")
    if not sep:
        host = ""
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise FerEdgeError("put an IPv6 host in brackets, e.g. [::1]:8080", option="serve")
    try:
        port = int(port_text)
    except ValueError:
        raise FerEdgeError(
            "expected [HOST:]PORT such as 8080 or 0.0.0.0:8080", option="serve"
        ) from None
    if not 0 <= port <= 65535:
        raise FerEdgeError("port must be 0-65535", option="serve")
    return ServeAddress(host or DEFAULT_HOST, port)


def _is_ipv6(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).version == 6
    except ValueError:
        return False


class _Server(ThreadingHTTPServer):
    """One thread per client, at most ``slots`` at once; threads never keep the process alive."""

    daemon_threads = True
    request_queue_size = LISTEN_BACKLOG
    feed: LiveFeed
    page: bytes
    slots: threading.BoundedSemaphore
    access: Access

    def server_bind(self) -> None:
        """Bind without HTTPServer's reverse DNS lookup of the host, which can stall at boot."""
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Ignore clients that vanish; report anything else in one line, not a traceback."""
        error = sys.exc_info()[1]
        if isinstance(error, (ConnectionError, TimeoutError)):
            return
        print(f"live view: error serving {client_address[0]}: {error!r}", file=sys.stderr)

    def process_request(self, request: Any, client_address: Any) -> None:
        """Start a handler thread if a slot is free; otherwise answer 503 without one."""
        if not self.slots.acquire(blocking=False):
            self._turn_away(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self.slots.release()  # no thread started to release it
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        """Serve one connection in its thread, then free its slot."""
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.slots.release()

    def _turn_away(self, request: socket.socket) -> None:
        # Never block the accepting thread on a client: what does not fit the socket buffer
        # at once is dropped. Reading what the client sent first avoids a reset on close.
        with contextlib.suppress(OSError):
            request.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                request.recv(65536)
            request.send(BUSY_RESPONSE)
        self.shutdown_request(request)


class _Server6(_Server):
    address_family = socket.AF_INET6


class _DeadlineReader(io.RawIOBase):
    """Socket reads that share one deadline, each also bounded by the per-read timeout."""

    def __init__(self, sock: socket.socket, deadline: float, per_read: float):
        self._sock, self._deadline, self._per_read = sock, deadline, per_read

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("request deadline passed")
        self._sock.settimeout(min(left, self._per_read))
        try:
            return self._sock.recv_into(buffer)
        finally:
            # Writes share the socket's timeout: give them the full per-send allowance back.
            self._sock.settimeout(self._per_read)


class _Handler(BaseHTTPRequestHandler):
    """Answers the fixed routes; 404 for everything else."""

    server: _Server
    timeout = CLIENT_TIMEOUT

    def setup(self) -> None:
        """Read the request through a reader with a total :data:`REQUEST_DEADLINE`."""
        super().setup()
        self.rfile.close()
        deadline = time.monotonic() + REQUEST_DEADLINE
        self.rfile = io.BufferedReader(_DeadlineReader(self.connection, deadline, self.timeout))

    def version_string(self) -> str:
        """Name the server without the Python version."""
        return "fer-edge"

    def do_GET(self) -> None:  # noqa: N802 - the http.server naming
        """Check the credential, then dispatch on the path (the query string is ignored).

        Without the token (see :mod:`~fer_edge.device.serveauth`) every path answers 401,
        unknown ones included, except ``/healthz``, which then tells only the status.
        """
        path = self.path.split("?", 1)[0]
        access = self.server.access
        self._granted = access.allows(self.path, self.headers)
        self._cookie = self._granted and access.token is not None and "token=" in self.path
        if not self._granted and path != "/healthz":
            self._send(
                HTTPStatus.UNAUTHORIZED,
                b"token required: open the URL fer-edge printed, with ?token=...\n",
                "text/plain; charset=utf-8",
                {"WWW-Authenticate": 'Bearer realm="fer-edge"'},
            )
            return
        route = ROUTES.get(path)
        if route is None:
            self._send(HTTPStatus.NOT_FOUND, b"not found\n", "text/plain; charset=utf-8")
            return
        route(self)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base signature
        """Stay quiet: the page polls several times a second and would flood the journal."""

    def _send(
        self,
        status: HTTPStatus,
        body: bytes,
        content_type: str,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        if getattr(self, "_cookie", False):  # a browser that came with ?token= keeps it
            self.send_header("Set-Cookie", self.server.access.cookie())
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _json(self, obj: Any, status: HTTPStatus = HTTPStatus.OK) -> None:
        self._send(status, json.dumps(obj).encode() + b"\n", "application/json")

    def page(self) -> None:
        self._send(
            HTTPStatus.OK,
            self.server.page,
            "text/html; charset=utf-8",
            {"Content-Security-Policy": PAGE_POLICY, "X-Frame-Options": "DENY"},
        )

    def faces(self) -> None:
        self._json(self.server.feed.faces())

    def metrics(self) -> None:
        self._json(self.server.feed.metrics().to_dict())

    def healthz(self) -> None:
        healthy, body = self.server.feed.health()
        if not self._granted:  # open to health checkers, but it tells them only the status
            body = {"status": body["status"]}
        self._json(body, HTTPStatus.OK if healthy else HTTPStatus.SERVICE_UNAVAILABLE)

    def snapshot(self) -> None:
        with self.server.feed.watch():
            frame = self.server.feed.next_jpeg(0, SNAPSHOT_WAIT)
        if frame is None:
            self._send(HTTPStatus.SERVICE_UNAVAILABLE, b"no frame yet\n", "text/plain")
            return
        self._send(HTTPStatus.OK, frame.jpeg, "image/jpeg")

    def stream(self) -> None:
        feed = self.server.feed
        with feed.watch(MAX_VIEWERS) as admitted:
            if not admitted:
                self._send(HTTPStatus.SERVICE_UNAVAILABLE, b"too many viewers\n", "text/plain")
                return
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, STREAM_SNDBUF)
            self.send_response(HTTPStatus.OK)
            self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
            self.send_header("Cache-Control", "no-store")
            self.send_header("X-Content-Type-Options", "nosniff")
            self.end_headers()
            seq = 0
            while not feed.closed:
                frame = feed.next_jpeg(seq, WAIT_SLICE)
                if frame is None:
                    continue
                seq = frame.seq
                head = (
                    f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\n"
                    f"Content-Length: {len(frame.jpeg)}\r\nX-Frame-Index: {frame.index}\r\n\r\n"
                ).encode()
                try:
                    self.wfile.write(head + frame.jpeg + b"\r\n")
                except (ConnectionError, TimeoutError):
                    return  # the viewer left or stopped reading; the loop never noticed


#: Path -> handler method. Nothing else is served.
ROUTES: dict[str, Callable[[_Handler], None]] = {
    "/": _Handler.page,
    "/stream.mjpg": _Handler.stream,
    "/snapshot.jpg": _Handler.snapshot,
    "/faces": _Handler.faces,
    "/metrics": _Handler.metrics,
    "/healthz": _Handler.healthz,
}


def load_page() -> bytes:
    """Return the bundled live page (one self-contained HTML file)."""
    return resources.files("fer_edge.device").joinpath(PAGE).read_bytes()


class LiveServer:
    """A sink that serves the run live over HTTP; starts listening when created."""

    def __init__(
        self,
        address: ServeAddress,
        timings: StageTimings | None = None,
        run_info: Mapping[str, str] | None = None,
        announce: IO[str] | None = None,
        token: str | None = None,
    ):
        """Bind, start the server thread and print the URL.

        Args:
            address: where to listen.
            timings: the loop's per-stage samples (see :class:`LiveFeed`).
            run_info: fixed facts for the page (model, detector, runtime, source).
            announce: where to print ``live view: http://...`` (stderr by default).
            token: the credential every request needs; ``None``: none on a loopback
                address, a random one (printed once, in the URL) on any other
                (:func:`~fer_edge.device.serveauth.access_for`).

        Raises:
            FerEdgeError: the address cannot be bound (in use, not local, no permission).
        """
        page = load_page()
        server_class = _Server6 if _is_ipv6(address.host) else _Server
        try:
            self._server = server_class((address.host, address.port), _Handler)
        except (OSError, OverflowError) as exc:
            reason = getattr(exc, "strerror", None) or str(exc)
            raise FerEdgeError(f"--serve {address}: cannot listen there ({reason})") from None
        self.feed = LiveFeed(timings, run_info)
        self._server.feed = self.feed
        self._server.page = page
        self._server.slots = threading.BoundedSemaphore(MAX_CONNECTIONS)
        self.access = self._server.access = access_for(address.host, token)
        host, port = self._server.server_address[:2]
        self.address = ServeAddress(str(host), int(port))
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True
        )
        self._thread.start()
        stream = announce or sys.stderr
        url = self.url
        if self.access.generated:
            url += f"?token={self.access.token}"  # shown once: the only way to learn it
        stream.write(f"live view: {url}  (JSON: /metrics /faces /healthz)\n")
        if not is_loopback(address.host):
            how = "the token in this URL" if self.access.generated else "the token you set"
            stream.write(
                f"live view: open to the network on {address.host}: every request but "
                f"/healthz needs {how} (?token=, a cookie or Authorization: Bearer)\n"
            )
        stream.flush()

    @property
    def url(self) -> str:
        """The page's URL (with the real port when port 0 was asked for)."""
        return f"http://{self.address}/"

    def write(self, result: FrameResult) -> None:
        """Publish the frame to the viewers without waiting for them."""
        self.feed.publish(result)

    def close(self) -> None:
        """End the streams, stop listening and free the port."""
        self.feed.close()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5.0)
