"""Atomic file writes: an interrupted or failed run leaves the old file or none, never half a file.

Every output goes to a temporary file beside its destination, is flushed to the disk (``fsync``
of the file) and renamed onto the destination, and the folder is synced so the rename itself
survives a power cut. A symlinked output is written through: the file it points at is
replaced and the link stays. An output that exists and is not a regular file (a device, a
FIFO, a socket) is refused: a rename would replace the node itself.

A writer killed by SIGKILL cannot remove its temporary file. Each writer holds an advisory
lock (``flock``) on its temporary file while it writes, which the kernel drops when the writer
dies however it dies; the next write to the same destination removes the leftovers nobody
holds (a stale writer), and never a live writer's file. The name also carries the writer's
process id, for people.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import re
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fer_edge.errors import FerEdgeError, OutputError

#: errno values that mean "this write cannot succeed": reported in one line, never a traceback.
WRITE_ERRNOS = frozenset(
    {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO, errno.EROFS, errno.EPIPE}
)


def _label(flag: str, path: Path) -> str:
    return f"{flag}: {path}" if flag else str(path)


def write_error(flag: str, path: str | os.PathLike[str], exc: OSError) -> OutputError:
    """Return the one-line :class:`OutputError` for a failed write of ``path``."""
    reason = exc.strerror or type(exc).__name__
    prefix = f"{flag}: " if flag else ""
    return OutputError(f"{prefix}cannot write {path} ({reason})")


def destination(path: str | os.PathLike[str], flag: str = "") -> Path:
    """Return the file a write to ``path`` replaces: ``path``, or the target of its symlink.

    Symlinks are written through, never replaced: the link keeps pointing where the user
    put it, and the file it names gets the new bytes.

    Raises:
        OutputError: the destination exists and is a folder, a device, a FIFO or a socket.
    """
    given = Path(path)
    final = Path(os.path.realpath(given)) if given.is_symlink() else given
    try:
        mode = final.stat().st_mode
    except (FileNotFoundError, NotADirectoryError):  # the folder check names the problem
        return final
    except OSError as exc:
        raise write_error(flag, given, exc) from None
    if stat.S_ISDIR(mode):
        raise OutputError(f"{_label(flag, given)} is a folder; name a file")
    if not stat.S_ISREG(mode):
        raise OutputError(
            f"{_label(flag, given)} is not a regular file (a device, pipe or socket); name a file"
        )
    return final


_TEMP_RE = r"^\.{stem}\.(\d+)-[^/]+\.tmp{suffix}$"


def _temp_pattern(final: Path) -> re.Pattern[str]:
    return re.compile(_TEMP_RE.format(stem=re.escape(final.stem), suffix=re.escape(final.suffix)))


def _held(path: str) -> bool:
    """True while a live writer holds ``path``'s lock (see :class:`PendingFile`)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return True  # gone already, or not ours to judge
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return True
    finally:
        os.close(fd)  # also releases the lock we may have taken
    return False


def remove_stale_temporaries(path: str | os.PathLike[str]) -> list[Path]:
    """Remove the temporary files that dead writers of ``path`` left beside it.

    A temporary is stale when no process holds its lock (a writer killed by SIGKILL, or a
    power cut). Live writers' files are left alone.

    Returns:
        The files removed.
    """
    final = Path(path)
    pattern = _temp_pattern(final)
    removed = []
    with contextlib.suppress(OSError):
        for entry in os.scandir(final.parent):
            if pattern.match(entry.name) and not _held(entry.path):
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)
                    removed.append(Path(entry.path))
    return removed


def fsync_folder(folder: str | os.PathLike[str]) -> None:
    """Flush a folder's entries (a rename into it) to the disk."""
    fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class PendingFile:
    """A temporary file beside its destination, moved into place only by :meth:`commit`.

    Several outputs of one command commit together: :meth:`sync` every one (the step that
    can fail on a full disk), then :meth:`commit` every one; on an error :meth:`discard` them
    all, and every destination keeps its old bytes.

    Attributes:
        final: the file to replace (a symlink's target; see :func:`destination`).
        tmp: where to write meanwhile; same folder and suffix (writers that look at the
            extension, Keras' ``.keras`` or matplotlib's ``.png``, behave as on the real name).
        flag: the option that named the output, for messages.
    """

    def __init__(self, path: str | os.PathLike[str], flag: str = ""):
        """Create the temporary file (and the destination's folder if missing).

        Raises:
            OutputError: the destination is not a regular file, or the folder is unwritable.
        """
        self.flag = flag
        self.final = destination(path, flag)
        self._synced = False
        try:
            self.final.parent.mkdir(parents=True, exist_ok=True)
            remove_stale_temporaries(self.final)
            fd, tmp_name = tempfile.mkstemp(
                prefix=f".{self.final.stem}.{os.getpid()}-",
                suffix=f".tmp{self.final.suffix}",
                dir=self.final.parent,
            )
        except OSError as exc:
            raise write_error(flag, path, exc) from None
        # Held until commit or discard: it tells the next writer this file is not stale.
        fcntl.flock(fd, fcntl.LOCK_EX)
        self._lock: int | None = fd
        self.tmp = Path(tmp_name)
        # mkstemp creates 0600 files; give outputs the permissions an ordinary open() would.
        umask = os.umask(0)
        os.umask(umask)
        self.tmp.chmod(0o666 & ~umask)

    def error(self, exc: OSError) -> OutputError:
        """Return the one-line error for ``exc`` raised while writing this file."""
        return write_error(self.flag, self.final, exc)

    def sync(self) -> None:
        """Flush the temporary file to the disk.

        Raises:
            OutputError: the disk refused (the temporary file is removed).
        """
        if self._synced:
            return
        try:
            fd = os.open(self.tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            self.discard()
            raise self.error(exc) from None
        self._synced = True

    def commit(self) -> Path:
        """Sync, rename onto the destination and sync the folder; return the destination.

        Raises:
            OutputError: the sync or the rename failed (the old file is untouched).
        """
        self.sync()
        try:
            os.replace(self.tmp, self.final)
        except OSError as exc:
            self.discard()
            raise self.error(exc) from None
        # The file is in place; a folder that cannot be synced (some network file systems)
        # only weakens durability across a power cut.
        with contextlib.suppress(OSError):
            fsync_folder(self.final.parent)
        self._unlock()
        return self.final

    def discard(self) -> None:
        """Remove the temporary file; the destination keeps whatever it held."""
        self.tmp.unlink(missing_ok=True)
        self._unlock()

    def _unlock(self) -> None:
        lock, self._lock = self._lock, None
        if lock is not None:
            os.close(lock)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], flag: str = "") -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success move it onto ``path``.

    Args:
        path: the final destination (see :class:`PendingFile`). Its folder is created if
            missing.
        flag: the option that named it, for error messages.

    Yields:
        A path in the same folder to write to. It is removed if the block raises.

    Raises:
        OutputError: the write failed for want of space, a broken pipe or an I/O error (also
            raised inside the block), or the destination is not a regular file.
    """
    pending = PendingFile(path, flag)
    try:
        yield pending.tmp
    except OSError as exc:
        pending.discard()
        if exc.errno in WRITE_ERRNOS:
            raise pending.error(exc) from None
        raise
    except BaseException:
        pending.discard()
        raise
    pending.commit()


def write_bytes(path: str | os.PathLike[str], data: bytes, flag: str = "") -> Path:
    """Write ``data`` to ``path`` atomically and return the path."""
    with atomic_path(path, flag) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text(path: str | os.PathLike[str], text: str, flag: str = "") -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically and return the path."""
    return write_bytes(path, text.encode("utf-8"), flag)


def write_json(path: str | os.PathLike[str], obj: Any, flag: str = "") -> Path:
    """Write ``obj`` as indented JSON to ``path`` atomically and return the path."""
    return write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n", flag)


def check_output_file(path: str | os.PathLike[str], flag: str) -> Path:
    """Check, writing nothing, that :func:`atomic_path` can later put a file at ``path``.

    Called before any work starts, so a bad output path costs the user no run. To also check
    an output against the call's inputs and other outputs, use
    :func:`fer_edge.outputs.check_outputs`.

    Args:
        path: the output file.
        flag: the option that named it, for the message (``--jsonl``).

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        FerEdgeError: ``path`` is a folder or not a regular file (a device, a pipe: an atomic
            rename would replace it), it is read-only, or its folder cannot be created or
            written.
    """
    target = Path(path)
    final = destination(target, flag)
    if final.exists() and not os.access(final, os.W_OK):
        raise FerEdgeError(f"{flag}: {target} is read-only; make it writable or name another")
    _check_folder(final.parent, flag)
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
