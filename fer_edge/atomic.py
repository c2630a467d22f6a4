"""Atomic file writes: an interrupted run leaves the old file or none, never half a file."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fer_edge.errors import FerEdgeError


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it onto ``path``.

    The temporary name keeps the final suffix, so writers that look at the extension (Keras'
    ``.keras``, matplotlib's ``.png``) behave as they would on the real name.

    Args:
        path: the final destination. Its folder is created if missing.

    Yields:
        A path in the same folder to write to. It is removed if the block raises.
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(
        prefix=f".{final.stem}.", suffix=f".tmp{final.suffix}", dir=final.parent
    )
    os.close(fd)
    tmp = Path(tmp_name)
    # mkstemp creates 0600 files; give outputs the permissions an ordinary open() would.
    umask = os.umask(0)
    os.umask(umask)
    tmp.chmod(0o666 & ~umask)
    try:
        yield tmp
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically and return the path."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically and return the path."""
    return write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike[str], obj: Any) -> Path:
    """Write ``obj`` as indented JSON to ``path`` atomically and return the path."""
    return write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def check_output_file(path: str | os.PathLike[str], flag: str) -> Path:
    """Check, writing nothing, that :func:`atomic_path` can later put a file at ``path``.

    Called before any work starts, so a bad output path costs the user no run.

    Args:
        path: the output file.
        flag: the option that named it, for the message (``--jsonl``).

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        FerEdgeError: ``path`` is a folder or not a regular file (a device, a pipe: an atomic
            rename would replace it), or its folder cannot be created or written.
    """
    target = Path(path)
    if target.is_dir():
        raise FerEdgeError(f"{flag}: {target} is a folder; name a file")
    if target.exists() and not target.is_file():
        raise FerEdgeError(f"{flag}: {target} is not a regular file")
    _check_folder(target.parent, flag)
    return target


def check_output_folder(path: str | os.PathLike[str], flag: str) -> Path:
    """Check, writing nothing, that ``path`` is or can become a writable folder.

    Raises:
        FerEdgeError: ``path`` is a file, or it cannot be created or written.
    """
    target = Path(path)
    if target.exists() and not target.is_dir():
        raise FerEdgeError(f"{flag}: {target} is a file, not a folder")
    _check_folder(target, flag)
    return target


def _check_folder(folder: Path, flag: str) -> None:
    # The nearest existing ancestor decides: mkdir(parents=True) creates the rest in it.
    existing = folder
    while not existing.exists() and existing.parent != existing:
        existing = existing.parent
    if not existing.is_dir():
        raise FerEdgeError(f"{flag}: cannot create {folder}: {existing} is a file")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise FerEdgeError(f"{flag}: cannot write in {existing} (permission denied)")
