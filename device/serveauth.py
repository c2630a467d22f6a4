"""Who may watch the live view: open on loopback, a token everywhere else.

``--serve 0.0.0.0:8080`` streams the camera to the whole network. Bound to anything but a
loopback address, every route but a bare ``/healthz`` needs the token: given with
``--serve-token`` (a value, or ``@FILE`` to read it from a file) or the ``FER_EDGE_SERVE_TOKEN``
environment variable, else a random one printed once in the URL. A browser opening that URL
gets the token as a cookie (HttpOnly, SameSite=Strict), so the page's stream and JSON requests
carry it; scripts may send ``Authorization: Bearer TOKEN`` or ``?token=TOKEN`` instead.
Comparisons are constant-time.
"""

from __future__ import annotations

import hmac
import ipaddress
import re
import secrets
from dataclasses import dataclass
from http.cookies import CookieError, SimpleCookie
from pathlib import Path
from typing import Protocol
from urllib.parse import parse_qs

from fer_edge.errors import FerEdgeError

#: The environment variable ``fer-edge run`` reads the token from (after ``--serve-token``).
TOKEN_ENV = "FER_EDGE_SERVE_TOKEN"
COOKIE = "fer_edge_token"
#: Shortest token a user may set: guessing 12 URL-safe characters is out of reach over HTTP.
MIN_TOKEN_LENGTH = 12
_TOKEN_CHARS = re.compile(r"[A-Za-z0-9._~-]+")  # safe in a URL and a cookie unquoted


class Headers(Protocol):
    """Request headers: a dict, or http.server's message object."""

    def get(self, name: str) -> str | None:
        """Return the header's value, or ``None``."""
        ...


def is_loopback(host: str) -> bool:
    """True when ``host`` only accepts connections from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to any interface


def read_token(value: str) -> str:
    """Return the token ``--serve-token`` names: the value, or a file's first line (``@FILE``).

    Raises:
        FerEdgeError: the file is unreadable, or the token is short or has unsafe characters.
    """
    token = value
    if value.startswith("@"):
        try:
            token = Path(value[1:]).read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            reason = getattr(exc, "strerror", None) or "not text"
            raise FerEdgeError(f"--serve-token: cannot read {value[1:]} ({reason})") from None
    if len(token) < MIN_TOKEN_LENGTH or not _TOKEN_CHARS.fullmatch(token):
        raise FerEdgeError(
            f"--serve-token: use at least {MIN_TOKEN_LENGTH} characters of A-Z a-z 0-9 . _ ~ -"
        )
    return token


@dataclass(frozen=True)
class Access:
    """The live view's access rule.

    Attributes:
        token: the credential every request needs (``None``: open, loopback only).
        generated: the token was made up here, so it must be shown once to the user.
    """

    token: str | None
    generated: bool = False

    def allows(self, path_query: str, headers: Headers) -> bool:
        """True when the request (its ``path?query`` and headers) carries the token."""
        if self.token is None:
            return True
        return any(self._same(given) for given in _offered(path_query, headers))

    def _same(self, given: str) -> bool:
        assert self.token is not None
        return hmac.compare_digest(given.encode(), self.token.encode())

    def cookie(self) -> str:
        """The ``Set-Cookie`` value that lets a browser's later requests carry the token."""
        return f"{COOKIE}={self.token}; Path=/; HttpOnly; SameSite=Strict"


def access_for(host: str, token: str | None = None) -> Access:
    """Return the rule for a server bound to ``host``.

    A token given is always enforced; without one, loopback is open and any other address
    gets a random token.
    """
    if token is not None:
        return Access(token)
    if is_loopback(host):
        return Access(None)
    return Access(secrets.token_urlsafe(18), generated=True)


def _offered(path_query: str, headers: Headers) -> list[str]:
    offered = parse_qs(path_query.partition("?")[2]).get("token", [])
    auth = headers.get("Authorization") or ""
    if auth[:7].lower() == "bearer ":
        offered.append(auth[7:].strip())
    try:
        jar = SimpleCookie(headers.get("Cookie") or "")
    except CookieError:
        jar = SimpleCookie()
    if COOKIE in jar:
        offered.append(jar[COOKIE].value)
    return offered
