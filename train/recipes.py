"""Named training recipes: the flags that retrain a shipped model, for ``fer-edge train --recipe``.

A recipe only fills in flags the command line leaves at their defaults, so ``--recipe fer2013
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
    # Stage 1 of the bundled fer2013 model (fer_edge/models/fer2013_*.tflite), see
    # docs/models.md.
    "fer2013": Recipe(
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
    # Stage 1 of the bundled FER+ default (fer_edge/models/default_*.tflite), see
    # docs/models.md: then a device-framed fine-tune, the tail's logit adjustment and QAT.
    "ferplus": Recipe(
        summary="edge on FER+ (--data a FER+ folder): cross-entropy against the ten votes, "
        "square-root class weights, Adam 2e-3 + cosine over 40 epochs, random erasing 0.25, "
        "bfloat16 mixed precision (47 min on 2 cores)",
        flags={
            "model": "edge",
            "epochs": 40,
            "learning_rate": 2e-3,
            "schedule": "cosine",
            "targets": "votes",
            "class_weight": 0.5,
            "erase": 0.25,
            "precision": "mixed",
        },
    ),
}


def recipe_help() -> str:
    """Return the ``--recipe`` help text naming every recipe."""
    names = "; ".join(f"{name}: {recipe.summary}" for name, recipe in RECIPES.items())
    return f"Start from a named recipe; flags given on the command line win. {names}."
