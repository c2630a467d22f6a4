"""Click commands for training (stub until the train issue lands)."""

import click


@click.command("train")
def train_cmd() -> None:
    """Train a model (not implemented yet)."""
    raise click.ClickException("fer-edge train: not implemented yet")


@click.command("eval")
def eval_cmd() -> None:
    """Evaluate a model (not implemented yet)."""
    raise click.ClickException("fer-edge eval: not implemented yet")
