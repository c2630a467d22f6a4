"""The ``fer-edge`` console script: the CLI imported under a Ctrl-C guard.

Importing click and the command table takes a moment; Ctrl-C then must be the one line
``interrupted`` and exit 130, like Ctrl-C at any later point, not a traceback.
"""

import signal
import sys


def main() -> None:
    """Import and run :func:`fer_edge.cli.main`."""
    try:
        from fer_edge.cli import main as cli
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        raise SystemExit(128 + signal.SIGINT) from None
    cli()
