"""The one exception type that means "the user gave us bad input"."""


class FerEdgeError(Exception):
    """A user-facing error: the CLI prints its message on one line and exits non-zero.

    Raise it for bad input (a missing file, an unknown class, a model of the wrong kind),
    with a message that names the file or flag at fault. Bugs stay ordinary exceptions.
    """
