"""Bundled models (package data), and the one way to find them."""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

from fer_edge.errors import FerEdgeError

#: The bundled classifiers by the name ``--model`` takes (each an int8 file with its float32
#: parent and model cards beside it). ``default``: trained on FER+'s ten-vote labels;
#: ``fer2013``: the earlier default, trained on FER2013's own labels, for FER2013 comparisons.
BUNDLED_CLASSIFIERS: dict[str, str] = {
    "default": "default_int8.tflite",
    "fer2013": "fer2013_int8.tflite",
}


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


def resolve_model(value: str | os.PathLike[str] | None, flag: str = "--model") -> Path:
    """Return the classifier that ``--model`` names: a bundled name or a file path.

    Args:
        value: ``None`` (the bundled default), a name of :data:`BUNDLED_CLASSIFIERS`, or a
            path to a ``.tflite`` file.
        flag: the option, named in errors.

    Raises:
        FerEdgeError: a bundled name whose file this install lacks.
    """
    name = "default" if value is None else os.fspath(value)
    if name in BUNDLED_CLASSIFIERS:
        return bundled_file(
            BUNDLED_CLASSIFIERS[name],
            flag,
            "reinstall fer-edge or pass a .tflite made by 'fer-edge convert'",
        )
    return Path(name)
