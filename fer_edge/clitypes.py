"""Click parameter types shared by every ``fer-edge`` command."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from fer_edge.errors import FerEdgeError
from fer_edge.runtime import RUNTIME_CHOICES


class FiniteFloat(click.FloatRange):
    """A float flag that refuses ``inf`` and ``nan`` (which Python's ``float()`` accepts).

    Takes :class:`click.FloatRange`'s arguments; with none it is any finite float. A NaN
    slips through every range check (all its comparisons are false) and an infinite rate
    or fraction turns into a zero period or a writer that never returns, so they are refused
    at parse time, naming the flag.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._bounded = self.min is not None or self.max is not None
        if not self._bounded:
            self.name = "float"  # shown as FLOAT in --help, as a plain float flag was

    def _describe_range(self) -> str:
        return super()._describe_range() if self._bounded else ""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        """Parse the value, refuse a non-finite one, then apply the range."""
        number = click.FLOAT.convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        return super().convert(number, param, ctx)


#: A file (not a folder) flag, given to the command as a :class:`~pathlib.Path`.
FILE = click.Path(path_type=Path, dir_okay=False)


def runtime_option(help: str | None = None) -> Callable[[Any], Any]:
    """Return the ``--runtime`` option (``auto`` or one interpreter runtime by name)."""
    return click.option("--runtime", type=click.Choice(RUNTIME_CHOICES), default="auto", help=help)


def option_flag(name: str, command: click.Command | None = None) -> str:
    """Return the flag a user types for the option ``name`` (a Python name such as ``crop_size``).

    The command's own declaration wins (``pipeline_model`` is ``--model`` in ``fer-edge
    bench``); otherwise the name is spelt as a flag, ``--crop-size``. With no ``command``, the
    command being run (if any) is asked.
    """
    if command is None:
        ctx = click.get_current_context(silent=True)
        command = ctx.command if ctx is not None else None
    for param in command.params if command is not None else ():
        if param.name == name and isinstance(param, click.Option):
            longest = max(param.opts, key=len)
            return longest if longest.startswith("--") else param.opts[0]
    return "--" + name.replace("_", "-")


def error_message(exc: FerEdgeError, command: click.Command | None = None) -> str:
    """Return a user error as the CLI prints it: ``--flag: message`` when it names an option.

    The one place a library error's option name (:attr:`FerEdgeError.option`) becomes a flag;
    no command rewrites message text.
    """
    if exc.option is None:
        return str(exc)
    return f"{option_flag(exc.option, command)}: {exc}"
