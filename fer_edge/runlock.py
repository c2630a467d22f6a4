"""One writer per folder: an advisory lock that dies with its holder.

``fer-edge train --out R`` holds ``R/.fer-edge.lock`` for the whole run, so a second trainer
on the same folder stops with a one-line error instead of mixing its epochs into the first
one's checkpoints. The lock is ``flock`` on that file: the kernel drops it when the holder
exits, however it exits (SIGKILL, a power cut), so a stale lock cannot outlive its process;
the file that stays behind only records who held it last.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
from collections.abc import Iterator
from pathlib import Path

from fer_edge.errors import FerEdgeError

LOCK_NAME = ".fer-edge.lock"


def _holder(lock: Path) -> str:
    with contextlib.suppress(OSError, UnicodeDecodeError):
        text = lock.read_text(encoding="utf-8").strip()
        if text:
            return f" ({text})"
    return ""


@contextlib.contextmanager
def folder_lock(folder: str | os.PathLike[str], flag: str, what: str = "run") -> Iterator[Path]:
    """Hold the lock of ``folder`` (created if missing) for the block.

    Args:
        folder: the folder one process at a time may write.
        flag: the option that named it, for the message (``--out``).
        what: what holds it, for the message (``fer-edge train``).

    Yields:
        The lock file.

    Raises:
        FerEdgeError: another live process holds the lock, or the folder cannot be created.
    """
    root = Path(folder)
    try:
        root.mkdir(parents=True, exist_ok=True)
        fd = os.open(root / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise FerEdgeError(f"{flag}: cannot use {root} ({exc.strerror})") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise FerEdgeError(
                f"{flag}: {root} is in use by another {what}{_holder(root / LOCK_NAME)}; "
                "wait for it to finish or choose another folder"
            ) from None
        # Who holds it, for the next one's message; a leftover from a dead holder is simply
        # overwritten (the kernel already released its lock).
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()} on {socket.gethostname()}\n".encode())
        yield root / LOCK_NAME
    finally:
        os.close(fd)  # releases the flock
