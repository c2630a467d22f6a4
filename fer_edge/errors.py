"""The one exception type that means "the user gave us bad input", and how a stop is told."""

import signal


class FerEdgeError(Exception):
    """A user-facing error: the CLI prints its message on one line and exits non-zero.

    Raise it for bad input (a missing file, an unknown class, a model of the wrong kind),
    with a message that names the file or flag at fault. Bugs stay ordinary exceptions.
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
