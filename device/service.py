"""``fer-edge service``: a systemd unit that starts ``fer-edge run`` at boot.

The unit is the bundled ``fer-edge.service`` with its ``@USER@``, ``@WORKDIR@`` and ``@EXEC@``
fields filled in. The run arguments are checked by ``fer-edge run``'s own parser before anything
is written, so a typo fails here rather than in a restart loop at boot.

    fer-edge service --out /etc/systemd/system/fer-edge.service -- \\
        -m models/edge_int8.tflite --source picamera --serve 0.0.0.0:8080
"""

from __future__ import annotations

import getpass
import os
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import click

from fer_edge.atomic import write_text
from fer_edge.clitypes import error_message
from fer_edge.errors import FerEdgeError
from fer_edge.outputs import check_outputs

UNIT = "fer-edge.service"
#: Words systemd reads literally without quotes (``%`` and ``$`` are doubled first).
_PLAIN_WORD = re.compile(r"[A-Za-z0-9_@%+=:,./-]+")


@dataclass(frozen=True)
class ServiceSpec:
    """What the unit runs.

    Attributes:
        run_args: the arguments after ``fer-edge run``.
        user: the account the service runs as.
        workdir: the working directory (relative paths in ``run_args`` start here).
        python: the interpreter with fer-edge installed (a venv's ``bin/python``).
    """

    run_args: tuple[str, ...]
    user: str
    workdir: Path
    python: Path


def systemd_quote(word: str) -> str:
    """Quote one word for an ``ExecStart=`` line.

    systemd expands ``%`` specifiers and ``$`` variables even inside quotes, so both are
    doubled; anything beyond plain characters is double-quoted with C-style escapes.
    """
    word = word.replace("%", "%%").replace("$", "$$")
    if _PLAIN_WORD.fullmatch(word):
        return word
    return '"' + word.replace("\\", "\\\\").replace('"', '\\"') + '"'


#: ``fer-edge run`` parameters that name a file it writes, and the one that names a folder.
_OUTPUT_FILES = ("jsonl", "save", "csv_path", "report_path", "summary_path")
_OUTPUT_FOLDERS = ("out_dir",)


def check_run_args(run_args: Sequence[str]) -> dict[str, object]:
    """Parse ``run_args`` with ``fer-edge run``'s parser without running anything.

    Returns:
        The parsed parameters, by ``run_cmd``'s parameter names.

    Raises:
        FerEdgeError: an unknown flag or a bad value, in ``fer-edge run``'s words.
    """
    from fer_edge.device.cli import run_cmd  # the service needs run's flags, not its imports

    try:
        with run_cmd.make_context("fer-edge run", list(run_args)) as ctx:
            return dict(ctx.params)
    except click.exceptions.Exit:
        raise FerEdgeError("run arguments: --help is not a run to start at boot") from None
    except click.ClickException as exc:
        raise FerEdgeError(f"run arguments: {exc.format_message()}") from None


def writable_paths(params: dict[str, object], workdir: Path) -> list[Path]:
    """Return the folders the run writes into: the unit's only writable paths.

    Each output file's folder (temporary files go beside it) and ``--out-dir``, absolute
    against ``workdir``.
    """
    folders: list[Path] = []
    for name in (*_OUTPUT_FILES, *_OUTPUT_FOLDERS):
        value = params.get(name)
        if value is None or str(value) == "-":
            continue
        path = workdir / Path(str(value))
        folder = path if name in _OUTPUT_FOLDERS else path.parent
        if folder not in folders:
            folders.append(folder)
    return folders


def render_unit(spec: ServiceSpec, writable: Sequence[Path] = ()) -> str:
    """Return the unit text for ``spec``; it may write only in ``writable``.

    ``writable`` comes from :func:`writable_paths`: under ``ProtectSystem=strict`` every
    other path is read-only to the service.

    Raises:
        FerEdgeError: a field that cannot go into a unit file (a newline, a relative path).
    """
    fields = {"user": spec.user, "workdir": str(spec.workdir), "python": str(spec.python)}
    for name, value in fields.items():
        if not value or "\n" in value:
            raise FerEdgeError(f"--{name}: {value!r} cannot go into a unit file")
    for name in ("workdir", "python"):
        if not Path(fields[name]).is_absolute():
            raise FerEdgeError(f"--{name}: systemd needs an absolute path, got {fields[name]}")
    if any("\n" in arg for arg in spec.run_args):
        raise FerEdgeError("run arguments: a newline cannot go into a unit file")
    command = [str(spec.python), "-m", "fer_edge", "run", *spec.run_args]
    template = resources.files("fer_edge.device").joinpath(UNIT).read_text(encoding="utf-8")
    if writable:
        # "-": a folder missing at start does not stop the unit; the run's own check names it.
        paths = " ".join(systemd_quote(f"-{path}") for path in writable)
        template = template.replace("@WRITABLE@", paths)
    else:
        template = template.replace(
            "ReadWritePaths=@WRITABLE@", "# The run writes no files: nothing is writable."
        )
    return (
        template.replace("@USER@", spec.user)
        .replace("@WORKDIR@", systemd_quote(str(spec.workdir)))
        .replace("@EXEC@", " ".join(systemd_quote(word) for word in command))
    )


def write_unit(out: str | os.PathLike[str], text: str) -> Path:
    """Write the unit file atomically.

    Raises:
        FerEdgeError: the folder is not writable (``/etc/systemd/system`` needs sudo).
    """
    try:
        return write_text(out, text, "--out")
    except OSError as exc:
        hint = " (try sudo)" if isinstance(exc, PermissionError) else ""
        raise FerEdgeError(f"--out: cannot write {out} ({exc.strerror}){hint}") from None


def _default_user() -> str:
    # Under sudo the unit is for the person who typed the command, not for root.
    return os.environ.get("SUDO_USER") or getpass.getuser()


@click.command("service")
@click.option("--user", default=_default_user, help="Account to run as [default: you].")
@click.option(
    "--workdir",
    type=click.Path(path_type=Path, file_okay=False, exists=True, resolve_path=True),
    default=".",
    help="Working directory; relative paths in RUN_ARGS start here [default: current].",
)
@click.option(
    "--python",
    type=click.Path(path_type=Path, dir_okay=False),
    default=sys.executable,
    help="Interpreter with fer-edge installed [default: this one].",
)
@click.option(
    "--out",
    default="-",
    show_default=True,
    metavar="PATH|-",
    help="Where to write the unit, e.g. /etc/systemd/system/fer-edge.service.",
)
@click.argument("run_args", nargs=-1, type=click.UNPROCESSED)
def service_cmd(user: str, workdir: Path, python: Path, out: str, run_args: tuple[str, ...]):
    """Write a systemd unit that starts 'fer-edge run RUN_ARGS' at boot, restarting on failure.

    \b
    Put RUN_ARGS after '--'. Example (on the Pi, in the folder holding models/):
      sudo .venv/bin/fer-edge service --out /etc/systemd/system/fer-edge.service -- \\
          -m models/edge_int8.tflite --source picamera --serve 0.0.0.0:8080
      sudo systemctl daemon-reload && sudo systemctl enable --now fer-edge
      journalctl -u fer-edge -f
    """
    try:
        params = check_run_args(run_args)
        text = render_unit(
            ServiceSpec(run_args, user, workdir, python.absolute()),
            writable_paths(params, workdir),
        )
        if out == "-":
            click.echo(text, nl=False)
            return
        # A symlinked unit is written through; a device or FIFO is refused, never replaced.
        check_outputs([("--out", out)], [("--python", python)])
        path = write_unit(out, text)
    except FerEdgeError as exc:
        # Also one line when started as `python -m fer_edge.device.service`, outside fer-edge.
        raise click.ClickException(error_message(exc)) from None
    click.echo(f"wrote {path}", err=True)
    click.echo(
        f"next: sudo systemctl daemon-reload && sudo systemctl enable --now {path.stem}\n"
        f"logs: journalctl -u {path.stem} -f",
        err=True,
    )


if __name__ == "__main__":
    service_cmd()
