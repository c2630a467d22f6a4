"""Bundled models (package data), and the one way to find them."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from fer_edge.errors import FerEdgeError


def bundled_file(name: str, flag: str, remedy: str) -> Path:
    """Return the path of the file ``name`` shipped in this package.

    Args:
        name: the file name, e.g. ``default_int8.tflite``.
        flag: the option that falls back on it, named in the error.
        remedy: what the user can do instead, for the error.

    Raises:
        FerEdgeError: this install lacks the file (a broken or trimmed install).
    """
    candidate = resources.files(__name__).joinpath(name)
    if candidate.is_file():
        return Path(str(candidate))
    raise FerEdgeError(f"{flag}: the bundled {name} is missing from this install; {remedy}")
