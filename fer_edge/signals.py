"""Ctrl-C and SIGTERM: the one place fer-edge sets signal handlers.

Two ways to stop, both ending in :class:`~fer_edge.errors.Interrupted` (exit ``128 + signum``):

* :func:`sigterm_interrupts`: SIGTERM raises at once, as Ctrl-C does, so ``finally`` blocks
  run (every command, around its whole call);
* :func:`stop_on_signals`: the first SIGINT or SIGTERM only records a request, which a loop
  checks between steps ("stop after this frame/batch"); a second one raises at once.

Only the main thread may set handlers: in another thread both blocks run unchanged.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Iterator
from typing import Any

from fer_edge.errors import Interrupted

#: The signals that ask a command to stop.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def raise_interrupted(signum: int, frame: Any) -> None:
    """A signal handler that raises :class:`~fer_edge.errors.Interrupted` for ``signum``."""
    raise Interrupted(signum)


class StopRequest:
    """A request to stop, set by the first SIGINT or SIGTERM, which it remembers.

    Attributes:
        requested: whether a stop was asked for.
        signum: the signal that asked (SIGINT when set without one).
    """

    def __init__(self) -> None:
        self.requested = False
        self.signum: int = signal.SIGINT

    def request(self, signum: int = signal.SIGINT) -> None:
        """Ask to stop (kept signal: the first one)."""
        if not self.requested:
            self.signum = int(signum)
        self.requested = True


@contextlib.contextmanager
def _handlers(handler: Any, signals: tuple[int, ...]) -> Iterator[bool]:
    """Install ``handler`` for ``signals`` in the block, then restore the old handlers.

    Yields whether the handlers were installed (only the main thread may set them).
    """
    if threading.current_thread() is not threading.main_thread():
        yield False
        return
    previous = {sig: signal.signal(sig, handler) for sig in signals}
    try:
        yield True
    finally:
        for sig, old in previous.items():
            # None means a handler set outside Python; the default is the closest we can restore.
            signal.signal(sig, signal.SIG_DFL if old is None else old)


@contextlib.contextmanager
def sigterm_interrupts() -> Iterator[None]:
    """Make SIGTERM raise :class:`~fer_edge.errors.Interrupted` inside the block, as Ctrl-C does.

    Python's default SIGTERM ends the process at once: no ``finally`` runs, so a temporary
    file of an atomic write is left behind and the user sees no message. Raising instead lets
    every command clean up and the CLI exit 143.
    """
    with _handlers(raise_interrupted, (signal.SIGTERM,)):
        yield


@contextlib.contextmanager
def stop_on_signals(notice: str | None = None) -> Iterator[StopRequest]:
    """Turn the first Ctrl-C or SIGTERM into a stop request; a second one raises at once.

    The loop inside checks ``request.requested`` between steps and finishes the step in
    flight. The second signal raises :class:`~fer_edge.errors.Interrupted` for itself.

    Args:
        notice: printed to stderr on the first signal (e.g. how to stop at once).

    Yields:
        The request the handlers set.
    """
    stop = StopRequest()

    def handler(signum: int, frame: Any) -> None:
        if stop.requested:
            raise Interrupted(signum)
        stop.request(signum)
        if notice is not None:
            print(notice, file=sys.stderr)

    with _handlers(handler, STOP_SIGNALS):
        yield stop
