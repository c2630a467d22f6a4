"""The ``fer-edge`` command line: a thin click group.

Subcommands live next to the code they drive and are imported only when invoked, so
``fer-edge run`` on a Pi never imports the training stack and ``--help`` stays fast.
"""

from __future__ import annotations

import importlib
import signal
import sys
from typing import Any

import click

from fer_edge import __version__
from fer_edge.errors import FerEdgeError
from fer_edge.signals import sigterm_interrupts

#: name -> (module, attribute, one-line help shown in ``fer-edge --help``)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "train": ("fer_edge.train.cli", "train_cmd", "Train a model on FER2013-style data."),
    "eval": ("fer_edge.train.cli", "eval_cmd", "Evaluate a saved Keras model on a split."),
    "convert": ("fer_edge.convert.cli", "convert_cmd", "Prune, quantise and export to TFLite."),
    "run": ("fer_edge.device.cli", "run_cmd", "Detect and classify faces from a camera or file."),
    "report": (
        "fer_edge.report.cli",
        "report_cmd",
        "Turn run JSONL into an HTML report: per-face timelines, share of each expression.",
    ),
    "bench": ("fer_edge.bench.cli", "bench_cmd", "Benchmark accuracy, latency and size."),
    "service": (
        "fer_edge.device.service",
        "service_cmd",
        "Write a systemd unit that starts 'fer-edge run' at boot.",
    ),
}


class LazyGroup(click.Group):
    """A group that imports a subcommand's module only when that subcommand runs."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        """Return the subcommand names in help order."""
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """Import and return one subcommand."""
        if cmd_name not in COMMANDS:
            return None
        module_name, attr, _ = COMMANDS[cmd_name]
        return getattr(importlib.import_module(module_name), attr)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """List subcommands with their one-line help."""
        # Listing commands from the table keeps `fer-edge --help` free of heavy imports.
        with formatter.section("Commands"):
            formatter.write_dl([(name, info[2]) for name, info in COMMANDS.items()])

    def invoke(self, ctx: click.Context) -> Any:
        """Run a subcommand, turning user errors into one-line messages.

        SIGTERM raises like Ctrl-C (see :func:`~fer_edge.signals.sigterm_interrupts`), so every
        command removes its temporary files and exits 143; ``train`` and ``run`` set their own
        handlers inside, to stop after the batch or frame in flight.
        """
        try:
            with sigterm_interrupts():
                return super().invoke(ctx)
        except FerEdgeError as exc:
            from fer_edge.clitypes import error_message

            name = ctx.invoked_subcommand
            command = self.get_command(ctx, name) if name else None
            raise click.ClickException(error_message(exc, command)) from None
        except FileNotFoundError as exc:
            raise click.ClickException(f"{exc.filename}: no such file") from None
        except KeyboardInterrupt as exc:
            click.echo("interrupted", err=True)
            sys.exit(128 + getattr(exc, "signum", signal.SIGINT))


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="fer-edge")
def main() -> None:
    """fer-edge: facial-expression recognition from workstation to Raspberry Pi and Edge TPU.

    \b
    Typical flow:
      fer-edge train   --data DATA --model edge --out runs/edge
      fer-edge convert runs/edge/model.keras --data DATA --int8 --out models/edge
      fer-edge bench   models/edge/*.tflite --data DATA
      fer-edge run     --model models/edge/edge_int8.tflite --source 0
    """
