"""The one exception type that means "the user gave us bad input", and how a stop is told.

The signal handlers that raise :class:`Interrupted` live in :mod:`fer_edge.signals`.
"""

import signal


class FerEdgeError(Exception):
    """A user-facing error: the CLI prints its message on one line and exits non-zero.

    Raise it for bad input (a missing file, an unknown class, a model of the wrong kind),
    with a message that names the file or flag at fault. Bugs stay ordinary exceptions.

    Library code names an option by its Python name, not by a flag's spelling:
    ``FerEdgeError("must be at least 1, got 0", option="crop_size")``. The message stays the
    text of the exception; the CLI prints it as ``--crop-size: must be at least 1, got 0``
    (:func:`fer_edge.clitypes.error_message`, the one place option names become flags).

    Attributes:
        option: the option (keyword or dataclass field) at fault, or ``None``.
    """

    def __init__(self, message: str = "", *, option: str | None = None) -> None:
        super().__init__(message)
        self.option = option


class OutputError(FerEdgeError):
    """Writing an output failed (disk full, closed pipe, I/O error) or an output is unsafe.

    Raised with a one-line message naming the flag or the file. A command that gets it drops
    every temporary file of the call, so each output keeps the bytes it had before.
    """


def first_line(exc: BaseException, limit: int = 200) -> str:
    """Return the first line of an exception's message (its type name if it has none).

    Library errors (TensorFlow, the interpreters) can span pages; a one-line error or a
    report's skip reason keeps only the first line, cut to ``limit`` characters.
    """
    text = str(exc).strip()
    return text.splitlines()[0][:limit] if text else type(exc).__name__


class Interrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM ended a command after it saved its work.

    The CLI exits with the shell's convention for death by that signal, ``128 + signum``
    (130 for Ctrl-C, 143 for SIGTERM), so scripts can tell a stopped run from a finished one.

    Attributes:
        signum: the signal that asked to stop.
    """

    def __init__(self, signum: int = signal.SIGINT) -> None:
        super().__init__(signum)
        self.signum = int(signum)
