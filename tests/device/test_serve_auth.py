"""Issue 27: off loopback the live view asks who is watching (a token on every path).

The rule is a function of the bind address (tested on its own); the enforcement is tested
against a real server on 127.0.0.1 given a token, exactly what a non-loopback bind enforces.
"""

import io
import json
import threading
import urllib.error
import urllib.request

import numpy as np
import pytest
from click.testing import CliRunner

from fer_edge.cli import main
from fer_edge.device.serve import ROUTES, LiveServer, ServeAddress
from fer_edge.device.serveauth import COOKIE, access_for, is_loopback, read_token
from fer_edge.device.service import ServiceSpec, check_run_args, render_unit, writable_paths
from fer_edge.device.sources import Frame
from fer_edge.errors import FerEdgeError
from fer_edge.faces import FrameResult

TOKEN = "s3cret-token-0123"


@pytest.mark.parametrize(
    "host, open_",
    [
        ("127.0.0.1", True),
        ("127.0.0.2", True),
        ("::1", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("192.168.1.20", False),
        ("pi.local", False),
    ],
)
def test_only_loopback_is_open_without_a_token(host, open_):
    assert is_loopback(host) is open_
    access = access_for(host)
    assert (access.token is None) is open_ and access.generated is not open_
    if not open_:
        assert len(access.token) >= 20 and access_for(host).token != access.token
    assert access_for(host, TOKEN).token == TOKEN  # a token set is enforced everywhere


def test_tokens_the_user_sets_are_checked(tmp_path):
    secret = tmp_path / "token"
    secret.write_text(TOKEN + "\n")
    assert read_token(f"@{secret}") == TOKEN == read_token(TOKEN)
    for bad in ("short", "has space in it!", "x" * 11):
        with pytest.raises(FerEdgeError, match="--serve-token"):
            read_token(bad)
    with pytest.raises(FerEdgeError, match="cannot read"):
        read_token(f"@{tmp_path / 'missing'}")


def request(url, headers=None):
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as response:
            if "mjpg" in url:  # a stream never ends: its status and first bytes are enough
                return response.status, response.headers, response.read(64)
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read()


@pytest.fixture
def guarded():
    out = io.StringIO()
    server = LiveServer(ServeAddress("127.0.0.1", 0), announce=out, token=TOKEN)
    stop = threading.Event()

    def publish():  # the frame loop: the stream and snapshot serve only new frames
        image = np.full((120, 160, 3), 80, np.uint8)
        index = 0
        while not stop.wait(0.02):
            server.write(FrameResult(Frame(index, index / 50, image), []))
            index += 1

    loop = threading.Thread(target=publish, daemon=True)
    loop.start()
    yield server, out.getvalue()
    stop.set()
    loop.join(timeout=5)
    server.close()


def test_every_path_but_healthz_refuses_a_request_without_the_token(guarded):
    server, announced = guarded
    base = server.url.rstrip("/")
    for path in [*ROUTES, "/nope"]:
        if path == "/healthz":
            continue
        status, headers, _ = request(base + path)
        assert status == 401, path
        assert headers["WWW-Authenticate"].startswith("Bearer")
        status, _, _ = request(base + path + "?token=" + "x" * len(TOKEN))
        assert status == 401, path
    status, _, body = request(base + "/healthz")
    assert status in (200, 503) and set(json.loads(body)) == {"status"}
    assert TOKEN not in announced  # a token the user set is never printed


def test_the_token_opens_every_path_by_query_cookie_or_bearer(guarded):
    server, _ = guarded
    base = server.url.rstrip("/")
    status, headers, page = request(f"{base}/?token={TOKEN}")
    assert status == 200 and b"<html" in page.lower()
    cookie = headers["Set-Cookie"]
    assert cookie.startswith(f"{COOKIE}={TOKEN};") and "HttpOnly" in cookie
    for path in ("/metrics", "/faces", "/stream.mjpg", "/snapshot.jpg"):
        assert request(base + path, {"Cookie": f"{COOKIE}={TOKEN}"})[0] == 200, path
        assert request(base + path, {"Authorization": f"Bearer {TOKEN}"})[0] == 200, path
    status, _, body = request(base + "/healthz", {"Authorization": f"Bearer {TOKEN}"})
    assert "frames" in json.loads(body)


def test_a_generated_token_is_printed_once_in_the_url():
    out = io.StringIO()
    server = LiveServer(ServeAddress("127.0.0.1", 0), announce=out, token=None)
    try:
        assert server.access.token is None and "token" not in out.getvalue()
    finally:
        server.close()
    # What a non-loopback bind does: the same server class with the generated rule.
    generated = access_for("0.0.0.0")
    server = LiveServer(ServeAddress("127.0.0.1", 0), announce=out, token=generated.token)
    try:
        assert request(server.url)[0] == 401
        assert request(f"{server.url}?token={generated.token}")[0] == 200
    finally:
        server.close()


def test_run_refuses_a_weak_token_before_starting(tmp_path):
    result = CliRunner().invoke(main, ["run", "-s", "0", "--serve", "0", "--serve-token", "abc"])
    assert result.exit_code == 1 and "--serve-token: use at least 12" in result.stderr


def test_the_unit_is_sandboxed_and_writes_only_its_output_folders(tmp_path):
    args = ("-s", "picamera", "--serve", "0.0.0.0:8080", "--jsonl", "out/run.jsonl")
    params = check_run_args((*args, "--csv", str(tmp_path / "abs" / "f.csv")))
    writable = writable_paths(params, tmp_path)
    assert writable == [tmp_path / "out", tmp_path / "abs"]
    unit = render_unit(ServiceSpec(args, "pi", tmp_path, tmp_path / "python"), writable)
    for line in ("NoNewPrivileges=yes", "ProtectSystem=strict", "PrivateTmp=yes",
                 "CapabilityBoundingSet=", "EnvironmentFile=-/etc/fer-edge/serve-token.env",
                 f"ReadWritePaths=-{tmp_path / 'out'} -{tmp_path / 'abs'}"):  # fmt: skip
        assert line in unit.splitlines(), line
    bare = render_unit(ServiceSpec(("-s", "0"), "pi", tmp_path, tmp_path / "python"))
    assert "ReadWritePaths" not in bare and "@WRITABLE@" not in bare


def test_bound_to_every_interface_it_refuses_even_local_requests_without_the_token():
    out = io.StringIO()
    server = LiveServer(ServeAddress("0.0.0.0", 0), announce=out)
    try:
        token = server.access.token
        assert server.access.generated and token is not None
        announced = out.getvalue()
        assert f"?token={token}" in announced and "open to the network on 0.0.0.0" in announced
        local = f"http://127.0.0.1:{server.address.port}"
        for path in ("/", "/stream.mjpg", "/metrics", "/faces", "/snapshot.jpg"):
            assert request(local + path)[0] == 401, path
        assert request(f"{local}/metrics?token={token}")[0] == 200
    finally:
        server.close()
