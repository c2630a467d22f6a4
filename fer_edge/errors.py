"""The one exception type that means "the user gave us bad input"."""


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
