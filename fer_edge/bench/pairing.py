"""Pair each benched model with the float32 model of the same network.

The convert stage writes a model card (``X.json``) beside every ``X.tflite``; its
``float_model`` names the float parent in the same folder. Cards may be missing or partial,
so pairing falls back to ``--baseline`` and then to a card with ``method: float`` and the same
``source``. A model with no pair is still benched; it just has no ratios.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fer_edge.modelmeta import sidecar_path

FLOAT_METHOD = "float"


@dataclass(frozen=True)
class Pairing:
    """The float parent chosen for one model.

    Attributes:
        model: the benched model.
        parent: its float32 parent, or ``None`` (a reference itself, or nothing to pair with).
        reason: how the parent was found (``card``, ``baseline``, ``source``) or why there is
            none (``reference``, ``unpaired``).
        note: a warning for the user (e.g. a card naming a missing file), or ``""``.
    """

    model: Path
    parent: Path | None
    reason: str
    note: str = ""


def read_card(model_path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """Return the model card beside ``model_path`` as a dict, or ``None`` if absent or unreadable.

    Bench must keep going on a hand-copied model without its card, so a bad card is treated
    as no card rather than an error.
    """
    card = sidecar_path(model_path)
    try:
        data = json.loads(card.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def card_method(card: dict[str, Any] | None) -> str | None:
    """Return the card's ``method`` string, or ``None``."""
    method = (card or {}).get("method")
    return str(method) if isinstance(method, str) and method else None


def _same(a: Path, b: Path) -> bool:
    return a.resolve() == b.resolve()


def _candidates(models: Sequence[Path]) -> list[Path]:
    """The given models plus their ``.tflite`` siblings, which may hold the float parent."""
    seen: dict[Path, Path] = {}
    for model in models:
        for path in (model, *sorted(model.parent.glob("*.tflite"))):
            seen.setdefault(path.resolve(), path)
    return list(seen.values())


def find_parent(
    model: Path,
    candidates: Sequence[Path],
    baseline: Path | None = None,
    cards: dict[Path, dict[str, Any] | None] | None = None,
) -> Pairing:
    """Choose the float parent of one model.

    Order: ``model`` is the baseline -> reference; the card's ``float_model`` (a file in the
    model's folder); a card saying ``method: float`` -> reference; ``baseline``; a candidate
    whose card says ``method: float`` with the same ``source``.

    Args:
        model: the model to pair.
        candidates: models that may be the parent (other benched models and their siblings).
        baseline: the ``--baseline`` model, if given.
        cards: pre-read cards by resolved path (read on demand when missing).

    Returns:
        The :class:`Pairing`.
    """
    cards = {} if cards is None else cards

    def card_of(path: Path) -> dict[str, Any] | None:
        key = path.resolve()
        if key not in cards:
            cards[key] = read_card(path)
        return cards[key]

    if baseline is not None and _same(model, baseline):
        return Pairing(model, None, "reference")
    card = card_of(model)
    note = ""
    float_name = (card or {}).get("float_model")
    if isinstance(float_name, str) and float_name:
        named = model.parent / Path(float_name).name
        if _same(named, model):
            return Pairing(model, None, "reference")
        if named.is_file():
            return Pairing(model, named, "card")
        note = f"{model.name}: its card names float model {named.name}, which is missing"
    if card_method(card) == FLOAT_METHOD:
        return Pairing(model, None, "reference", note)
    if baseline is not None:
        return Pairing(model, baseline, "baseline", note)
    source = (card or {}).get("source")
    if source:
        for other in candidates:
            other_card = card_of(other)
            if (
                not _same(other, model)
                and card_method(other_card) == FLOAT_METHOD
                and (other_card or {}).get("source") == source
            ):
                return Pairing(model, other, "source", note)
    return Pairing(model, None, "unpaired", note)


def pair_models(models: Sequence[Path], baseline: Path | None = None) -> list[Pairing]:
    """Pair every model with its float parent (see :func:`find_parent`).

    Args:
        models: the benched models.
        baseline: the ``--baseline`` model, if given.

    Returns:
        One :class:`Pairing` per model, in order.
    """
    candidates = _candidates(list(models))
    cards: dict[Path, dict[str, Any] | None] = {}
    return [find_parent(m, candidates, baseline, cards) for m in models]
