"""Click command for run (stub until its issue lands)."""

import click


@click.command("run")
def run_cmd() -> None:
    """Run (not implemented yet)."""
    raise click.ClickException("fer-edge run: not implemented yet")
