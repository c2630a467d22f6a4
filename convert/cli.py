"""Click command for convert (stub until its issue lands)."""

import click


@click.command("convert")
def convert_cmd() -> None:
    """Convert (not implemented yet)."""
    raise click.ClickException("fer-edge convert: not implemented yet")
