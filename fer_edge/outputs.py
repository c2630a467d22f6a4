"""The output policy every writing command applies before it starts: never destroy an input.

:func:`check_outputs` takes every output path of one call and every input it reads, and
refuses, before any work, an output that is an input (the same path, a hard link to it, a
symlink to it), two outputs that are one file, and outputs that :func:`fer_edge.atomic.
check_output_file` refuses (folders, devices, FIFOs, sockets, read-only files, unwritable
folders). The writes themselves go through :mod:`fer_edge.atomic`: to a synced temporary
file, renamed into place only when complete; symlinks are written through.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from fer_edge.atomic import check_output_file
from fer_edge.errors import OutputError

#: ``(flag, path)`` pairs; ``None`` paths (an option not given) and ``-`` (stdout) are skipped.
Named = Iterable[tuple[str, "str | os.PathLike[str] | None"]]


@dataclass(frozen=True)
class _Entry:
    flag: str
    path: Path
    real: str
    inode: tuple[int, int] | None

    def same_file(self, other: _Entry) -> bool:
        # Same resolved path (symlinks followed), or the same inode (hard links).
        return self.real == other.real or (self.inode is not None and self.inode == other.inode)


def _entry(flag: str, path: str | os.PathLike[str]) -> _Entry:
    given = Path(path)
    try:
        st = given.stat()
        inode: tuple[int, int] | None = (st.st_dev, st.st_ino)
    except OSError:
        inode = None
    return _Entry(flag, given, os.path.realpath(given), inode)


def _given(pairs: Named) -> list[tuple[str, str | os.PathLike[str]]]:
    return [(flag, path) for flag, path in pairs if path is not None and str(path) != "-"]


def check_outputs(outputs: Named, inputs: Named = ()) -> list[Path]:
    """Refuse, before any work, outputs that would destroy an input or each other.

    Args:
        outputs: ``(flag, path)`` of every file the call will write.
        inputs: ``(flag, path)`` of every file the call reads (folders are fine: a new file
            in a folder destroys nothing; list the files of an image folder that is read).

    Returns:
        The output paths, in order (``None`` and ``-`` left out).

    Raises:
        OutputError: an output is an input, two outputs are one file, or an output cannot
            be written there (see :func:`~fer_edge.atomic.check_output_file`).
    """
    outs = [_entry(flag, path) for flag, path in _given(outputs)]
    for out in outs:
        check_output_file(out.path, out.flag)
    for i, out in enumerate(outs):
        for other in outs[:i]:
            if out.same_file(other):
                raise OutputError(
                    f"{other.flag} and {out.flag} both name {out.path}: give each its own file"
                )
    ins = [_entry(flag, path) for flag, path in _given(inputs)]
    for out in outs:
        for source in ins:
            if out.same_file(source):
                raise OutputError(
                    f"{out.flag}: {out.path} is the input {source.flag} {source.path}; "
                    "writing it would destroy it: name another file"
                )
    return [out.path for out in outs]
