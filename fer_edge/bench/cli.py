"""Click command for bench (stub until its issue lands)."""

import click


@click.command("bench")
def bench_cmd() -> None:
    """Bench (not implemented yet)."""
    raise click.ClickException("fer-edge bench: not implemented yet")
