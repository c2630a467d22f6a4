"""Named training recipes: the flags that retrain a shipped model, for ``fer-edge train --recipe``.

A recipe only fills in flags the command line leaves at their defaults, so ``--recipe default
--epochs 10`` is the same recipe, shorter.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Recipe:
    """A named set of ``fer-edge train`` flags.

    Attributes:
        summary: one line for ``--help`` and the log.
        flags: click parameter name -> value (``model_option`` takes a tuple of ``KEY=VALUE``).
    """

    summary: str
    flags: dict[str, Any] = field(default_factory=dict)


RECIPES: dict[str, Recipe] = {
    # The bundled default (fer_edge/models/default_*.tflite), see README "Model".
    "default": Recipe(
        summary="edge (0.38 M params, 33 M MACs), Adam 2e-3 + cosine over 50 epochs, label "
        "smoothing 0.1, random erasing 0.25, the standard augmentation (80 min on 2 cores)",
        flags={
            "model": "edge",
            "epochs": 50,
            "learning_rate": 2e-3,
            "schedule": "cosine",
            "label_smoothing": 0.1,
            "erase": 0.25,
        },
    ),
}


def recipe_help() -> str:
    """Return the ``--recipe`` help text naming every recipe."""
    names = "; ".join(f"{name}: {recipe.summary}" for name, recipe in RECIPES.items())
    return f"Start from a named recipe; flags given on the command line win. {names}."
