"""Pair each benched model with the float32 model of the same network.

The convert stage writes a model card (``X.json``) beside every ``X.tflite``; its
``float_model`` names the float parent in the same folder. Cards may be missing or partial,
so pairing falls back to ``--baseline`` and then to a card with ``method: float`` and the same
``source``. A model with no pair is still benched; it just has no ratios.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from fer_edge.card import ModelCard, read_card


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
    cards: dict[Path, ModelCard | None] | None = None,
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

    def card_of(path: Path) -> ModelCard | None:
        key = path.resolve()
        if key not in cards:
            cards[key] = read_card(path)
        return cards[key]

    if baseline is not None and _same(model, baseline):
        return Pairing(model, None, "reference")
    card = card_of(model)
    note = ""
    float_name = card.float_model if card else None
    if float_name:
        named = model.parent / Path(float_name).name
        if _same(named, model):
            return Pairing(model, None, "reference")
        if named.is_file():
            return Pairing(model, named, "card")
        note = f"{model.name}: its card names float model {named.name}, which is missing"
    if card is not None and card.is_float_reference:
        return Pairing(model, None, "reference", note)
    if baseline is not None:
        return Pairing(model, baseline, "baseline", note)
    source = card.source if card else ""
    if source:
        for other in candidates:
            other_card = card_of(other)
            if (
                not _same(other, model)
                and other_card is not None
                and other_card.is_float_reference
                and other_card.source == source
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
    cards: dict[Path, ModelCard | None] = {}
    return [find_parent(m, candidates, baseline, cards) for m in models]
