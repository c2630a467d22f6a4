"""Keeping native libraries' chatter off the terminal: one line per error is ours to print.

libjpeg, FFmpeg, OpenCV and the TFLite runtimes (``INFO: Created TensorFlow Lite XNNPACK
delegate for CPU.``) write to file descriptor 2 directly, past ``sys.stderr``.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator


@contextlib.contextmanager
def quiet_stderr(into: int | None = None) -> Iterator[None]:
    """Point file descriptor 2 at ``into`` (default ``/dev/null``) for the block.

    Native libraries (libjpeg, FFmpeg, OpenCV) write to fd 2 directly, past ``sys.stderr``.
    Whatever other threads print meanwhile goes the same way, so keep the block short.
    """
    try:
        saved = os.dup(2)
    except OSError:  # no fd 2 (embedded interpreters): nothing to quiet
        yield
        return
    null = os.open(os.devnull, os.O_WRONLY) if into is None else None
    target = null if null is not None else into
    assert target is not None  # one of the two is always set
    try:
        os.dup2(target, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        if null is not None:
            os.close(null)


def runtime_chatter() -> contextlib.AbstractContextManager[None]:
    """Silence the interpreters' log lines, unless ``TF_CPP_MIN_LOG_LEVEL=0`` asks for them.

    Errors still arrive as exceptions, which the callers turn into one line.
    """
    if os.environ.get("TF_CPP_MIN_LOG_LEVEL") == "0":
        return contextlib.nullcontext()
    return quiet_stderr()
