"""The class names: FER2013's seven, FER+'s contempt, and named class subsets."""

from __future__ import annotations

from collections.abc import Iterable

from fer_edge.errors import FerEdgeError

#: The 7 FER2013 classes in canonical label order (0 angry ... 6 neutral).
FER2013_CLASSES: tuple[str, ...] = (
    "angry",
    "disgust",
    "fear",
    "happy",
    "sad",
    "surprise",
    "neutral",
)

#: Every class a model may predict, in canonical order: FER2013's seven, then FER+'s eighth
#: (``contempt``, which only FER+ labels: ``--classes ferplus8``).
KNOWN_CLASSES: tuple[str, ...] = (*FER2013_CLASSES, "contempt")

#: Named subsets accepted wherever a class list is: ``--classes fer4``.
SUBSETS: dict[str, tuple[str, ...]] = {
    "fer7": FER2013_CLASSES,
    "fer4": ("happy", "sad", "surprise", "neutral"),
    "ferplus8": KNOWN_CLASSES,
}


def resolve_classes(spec: str | Iterable[str] | None) -> tuple[str, ...]:
    """Turn a class specification into an ordered tuple of class names.

    Args:
        spec: ``None`` for all 7 classes, a subset name (``"fer4"``), a comma-separated string
            (``"happy,sad,surprise,neutral"``) or an iterable of names. Case and spaces are
            ignored.

    Returns:
        The classes in canonical FER2013 order; index ``i`` of the tuple is label ``i`` of the
        remapped dataset.

    Raises:
        FerEdgeError: an unknown or repeated class name, or an empty list.
    """
    if spec is None:
        return FER2013_CLASSES
    if isinstance(spec, str):
        key = spec.strip().lower()
        if key in SUBSETS:
            return SUBSETS[key]
        names = [part.strip().lower() for part in key.split(",") if part.strip()]
    else:
        names = [str(part).strip().lower() for part in spec]
    if not names:
        raise FerEdgeError("--classes: empty class list")
    unknown = [name for name in names if name not in KNOWN_CLASSES]
    if unknown:
        raise FerEdgeError(
            f"--classes: unknown class {', '.join(repr(u) for u in unknown)}; valid classes are "
            f"{', '.join(KNOWN_CLASSES)} (or a subset name: {', '.join(SUBSETS)})"
        )
    if len(set(names)) != len(names):
        raise FerEdgeError(f"--classes: repeated class in {','.join(names)}")
    # Canonical order keeps label indices stable however the user spelled the list.
    return tuple(name for name in KNOWN_CLASSES if name in names)
