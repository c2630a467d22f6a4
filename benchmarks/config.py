"""Benchmark configurations: how long to warm up, how often to repeat, which threads.

Defaults live here so a device with only the installed package can bench; the named
variations in ``configs/`` ship with the package and are picked by name (``--config pi4``) or
given as a path to any JSON file of the same shape.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fer_edge.classifier import TTA_CHOICES
from fer_edge.errors import FerEdgeError

#: The named configurations that ship with the package.
CONFIGS = Path(__file__).resolve().parent / "configs"


#: Largest ``--crop-size``: bigger than any face crop a camera gives at 4K.
MAX_CROP_SIZE = 2048


@dataclass(frozen=True)
class BenchConfig:
    """One benchmark configuration.

    Attributes:
        name: a short name recorded in reports.
        warmup: untimed calls per model before timing (first invokes pack weights).
        repeats: timed calls per model, runtime, thread count and kind (invoke, end-to-end).
        rounds: the repeats are cut into this many slices timed in turn across models, so
            background load hits all models alike.
        threads: interpreter thread counts to time.
        runtimes: runtimes to compare (``auto``, ``litert``, ``tflite_runtime``, ``tf``).
        crop_size: end-to-end inputs are BGR face crops of this many pixels, like a camera's;
            0 feeds the stored gray faces as they are.
        latency_faces: distinct faces cycled through while timing.
        limit: score at most this many images of the split (``None``: all), a seeded sample.
        seed: seed of that sample and of the latency faces.
        min_accuracy: fail when a model's accuracy is below this (``None``: no floor).
        min_agreement: fail when a model agrees with its float parent on fewer top-1 predictions
            than this (``None``: no floor).
        tta: test-time augmentation modes to bench every model with (``none``, ``flip``); each
            mode past ``none`` adds a ``NAME+MODE`` row compared with the plain model.
    """

    name: str = "default"
    warmup: int = 20
    repeats: int = 200
    rounds: int = 5
    threads: tuple[int, ...] = (1, 2)
    runtimes: tuple[str, ...] = ("auto",)
    crop_size: int = 96
    latency_faces: int = 32
    limit: int | None = None
    seed: int = 0
    min_accuracy: float | None = None
    min_agreement: float | None = None
    tta: tuple[str, ...] = ("none",)

    def __post_init__(self) -> None:
        """Validate values, naming the offending field."""
        for key in ("warmup", "crop_size"):
            if getattr(self, key) < 0:
                raise FerEdgeError(f"{key} must be 0 or more, got {getattr(self, key)}", option=key)
        if self.crop_size > MAX_CROP_SIZE:
            # Every timed call gets a crop this size: 100000 px a side would be 30 GB.
            raise FerEdgeError(
                f"crop_size must be at most {MAX_CROP_SIZE}, got {self.crop_size}",
                option="crop_size",
            )
        for key in ("repeats", "rounds", "latency_faces"):
            if getattr(self, key) < 1:
                raise FerEdgeError(
                    f"{key} must be at least 1, got {getattr(self, key)}", option=key
                )
        if not self.threads or any(t < 1 for t in self.threads):
            raise FerEdgeError(
                f"threads must be positive integers, got {list(self.threads)}", option="threads"
            )
        if not self.runtimes:
            raise FerEdgeError("runtimes must name at least one runtime", option="runtimes")
        if not self.tta:
            raise FerEdgeError("tta must name at least one mode", option="tta")
        unknown = [m for m in self.tta if m not in TTA_CHOICES]
        if unknown:
            raise FerEdgeError(
                f"tta must be among {', '.join(TTA_CHOICES)}, got {unknown[0]!r}", option="tta"
            )
        if self.limit is not None and self.limit < 1:
            raise FerEdgeError(f"limit must be at least 1, got {self.limit}", option="limit")
        for key in ("min_accuracy", "min_agreement"):
            value = getattr(self, key)
            if value is not None and not 0.0 <= value <= 1.0:
                raise FerEdgeError(f"{key} must be within 0-1, got {value}", option=key)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict (recorded in every report)."""
        data = dataclasses.asdict(self)
        data["threads"] = list(self.threads)
        data["runtimes"] = list(self.runtimes)
        data["tta"] = list(self.tta)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "config") -> BenchConfig:
        """Build a config from a dict, rejecting unknown keys and wrong types.

        Args:
            data: the parsed JSON object.
            where: the file name used in error messages.

        Raises:
            FerEdgeError: an unknown key or a value of the wrong type.
        """
        known = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise FerEdgeError(
                f"{where}: unknown key {', '.join(unknown)}; known keys are {', '.join(known)}"
            )
        values: dict[str, Any] = {}
        for key, value in data.items():
            values[key] = _coerce(key, value, where)
        try:
            return cls(**values)
        except FerEdgeError as exc:
            raise FerEdgeError(f"{where}: {exc}") from None


def _coerce(key: str, value: Any, where: str) -> Any:
    def bad(kind: str) -> FerEdgeError:
        return FerEdgeError(f"{where}: '{key}' must be {kind}, got {value!r}")

    if key == "name":
        if not isinstance(value, str):
            raise bad("a string")
        return value
    if key in ("threads", "runtimes", "tta"):
        items = value if isinstance(value, list) else [value]
        kind = int if key == "threads" else str
        if not all(isinstance(v, kind) and not isinstance(v, bool) for v in items):
            raise bad(f"a list of {'integers' if kind is int else 'strings'}")
        return tuple(items)
    if key in ("min_accuracy", "min_agreement"):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise bad("a number or null")
        return None if value is None else float(value)
    if key == "limit" and value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise bad("an integer")
    return value


def config_names() -> list[str]:
    """Return the names of the configurations shipped in ``configs/``."""
    return sorted(p.stem for p in CONFIGS.glob("*.json"))


def load_config(path: str | os.PathLike[str]) -> BenchConfig:
    """Read a benchmark configuration: a shipped one by name (``pi4``) or a JSON file.

    Raises:
        FerEdgeError: no such name or file, not JSON, or unknown keys or bad values.
    """
    file = Path(path)
    if not file.is_file() and file.suffix == "" and len(file.parts) == 1:
        if str(path) not in config_names():
            raise FerEdgeError(
                f"--config: no configuration named {path!r} and no such file; shipped ones: "
                f"{', '.join(config_names())}"
            )
        file = CONFIGS / f"{path}.json"
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FerEdgeError(f"--config: {file} does not exist") from None
    except (OSError, ValueError) as exc:
        raise FerEdgeError(f"--config: {file} is not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise FerEdgeError(f"--config: {file} must hold a JSON object")
    return BenchConfig.from_dict(data, where=f"--config {file}")


def parse_int_list(text: str, flag: str) -> tuple[int, ...]:
    """Parse ``"1,2,4"`` into ``(1, 2, 4)``.

    Raises:
        FerEdgeError: an empty list or a value that is not a positive integer.
    """
    parts = [p.strip() for p in text.split(",") if p.strip()]
    try:
        values = tuple(int(p) for p in parts)
    except ValueError:
        raise FerEdgeError(f"{flag}: expected a comma list of integers, got {text!r}") from None
    if not values or any(v < 1 for v in values):
        raise FerEdgeError(f"{flag}: expected positive integers, got {text!r}")
    return values


def parse_name_list(text: str) -> tuple[str, ...]:
    """Parse ``"litert, tf"`` into ``("litert", "tf")``, dropping repeats."""
    names = [p.strip().lower() for p in text.split(",") if p.strip()]
    return tuple(dict.fromkeys(names))
