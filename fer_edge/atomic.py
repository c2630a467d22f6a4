"""Atomic file writes: an interrupted run leaves the old file or none, never half a file."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any


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
