"""Arrays computed once per run (teacher predictions, re-cut faces), kept in the run folder.

They take minutes to make and are the same for every epoch, so ``--resume`` reads them back
instead of redoing them. A file made for other inputs (its ``key`` differs, or its arrays have
other lengths) is recomputed.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from fer_edge.atomic import atomic_path


def cached_arrays(
    path: Path,
    key: str,
    lengths: dict[str, int],
    compute: Callable[[], dict[str, np.ndarray]],
    write: bool = True,
) -> dict[str, np.ndarray]:
    """Return the arrays named in ``lengths``, from ``path`` if it holds them for ``key``.

    Args:
        path: the ``.npz`` file.
        key: what the arrays were made from (e.g. the teacher files); stored beside them.
        lengths: array name -> expected length.
        compute: makes the arrays when the file is missing or stale.
        write: save what ``compute`` made (only the chief of a multi-worker run writes).
    """
    if path.is_file():
        with np.load(path) as stored:
            fits = all(name in stored and len(stored[name]) == n for name, n in lengths.items())
            if fits and "key" in stored and str(stored["key"]) == key:
                return {name: stored[name] for name in lengths}
    result = compute()
    if write:
        with atomic_path(path) as tmp, open(tmp, "wb") as handle:
            arrays: dict[str, Any] = {"key": np.array(key), **result}
            np.savez(handle, **arrays)
    return result
