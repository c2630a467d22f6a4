"""The run folder: its file names, the resume state (``state.json``) and reading it back."""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fer_edge.atomic import atomic_path, write_json
from fer_edge.errors import FerEdgeError, first_line
from fer_edge.train.options import TrainOptions


class RunPaths:
    """File names inside a run folder.

    Each finished epoch is saved as ``checkpoints/epoch-NNNN.keras``; ``state.json`` names the
    last and the best of them and is written after them, so it is the commit point: a run
    killed at any instant resumes from a checkpoint that matches its state. ``last.keras`` and
    ``best.keras`` follow as links for people and for folders written before that (whose
    ``state.json`` names no checkpoint).
    """

    def __init__(self, out: str | Path) -> None:
        self.out = Path(out)
        self.checkpoints = self.out / "checkpoints"
        self.last = self.checkpoints / "last.keras"
        self.best = self.checkpoints / "best.keras"
        self.state = self.out / "state.json"
        self.history = self.out / "history.json"
        self.model = self.out / "model.keras"
        self.metrics = self.out / "metrics.json"
        self.logs = self.out / "logs"
        self.teacher = self.out / "teacher.npz"
        self.recrop = self.out / "recrop.npz"

    def checkpoint(self, state: RunState | Mapping[str, Any], which: str) -> Path:
        """Return the ``"last"`` or ``"best"`` checkpoint that ``state`` (state.json) names."""
        name = getattr(state, which) if isinstance(state, RunState) else state.get(which)
        if name is None:  # a run folder from before per-epoch checkpoints
            return self.last if which == "last" else self.best
        return self.checkpoints / name


#: The keys of ``state.json``, in the order they are written.
_STATE_KEYS = (
    "options",
    "epoch",
    "best_score",
    "best_epoch",
    "wall_time_s",
    "wall_before",
    "best",
    "last",
)


@dataclass
class RunState:
    """Where a run stands: ``state.json`` (all but :attr:`history`) plus ``history.json``.

    The checkpoint callback updates it after every finished epoch and writes it (see
    :class:`RunPaths` for why ``state.json`` is the commit point).

    Attributes:
        options: the run's :class:`~fer_edge.train.options.TrainOptions` as a dict.
        epoch: finished epochs over all sessions.
        best_score: the best selection accuracy so far (-1: none yet).
        best_epoch: the epoch that scored it (0: none yet).
        wall_time_s: training wall time over all sessions, up to the last finished epoch.
        wall_before: ``wall_time_s`` when this session started.
        best: the best epoch's checkpoint file name in ``checkpoints/`` (``None``: a folder
            from before per-epoch checkpoints, whose best is ``best.keras``).
        last: the last finished epoch's checkpoint file name (``None``: ``last.keras``).
        history: per-epoch Keras logs (``history.json``, not part of ``state.json``).
        extra: keys of a ``state.json`` this version does not know, written back unchanged.
        started: ``time.perf_counter()`` when this session started (never saved).
    """

    options: dict[str, Any]
    epoch: int = 0
    best_score: float = -1.0
    best_epoch: int = 0
    wall_time_s: float = 0.0
    wall_before: float = 0.0
    best: str | None = None
    last: str | None = None
    history: dict[str, list[float]] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    started: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """Return the ``state.json`` content (no history; unset checkpoint names left out)."""
        data: dict[str, Any] = {}
        for key in _STATE_KEYS:
            value = getattr(self, key)
            if value is not None or key not in ("best", "last"):
                data[key] = value
        return {**data, **self.extra}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunState:
        """Inverse of :meth:`to_dict`; a ``state.json`` without ``wall_before`` gets 0."""
        known = {key: data[key] for key in _STATE_KEYS if key in data}
        extra = {key: value for key, value in data.items() if key not in _STATE_KEYS}
        return cls(**known, extra=extra)

    @classmethod
    def load(cls, paths: RunPaths) -> RunState:
        """Read ``state.json`` (without the history).

        Raises:
            FerEdgeError: a damaged state file, named in one line.
        """
        return cls.from_dict(read_state(paths))

    def read_history(self, paths: RunPaths) -> None:
        """Take ``history.json``, cut to :attr:`epoch` epochs (a kill may fall between them).

        Raises:
            FerEdgeError: a damaged history file, named in one line.
        """
        history = read_run_json(paths.history, "--resume") if paths.history.exists() else {}
        if not isinstance(history, dict) or not all(isinstance(v, list) for v in history.values()):
            raise FerEdgeError(f"--resume: {paths.history} is damaged (not a training history)")
        self.history = {key: values[: self.epoch] for key, values in history.items()}

    def start_session(self) -> None:
        """Start this session's clock; :attr:`wall_time_s` goes on from where it stood."""
        self.started, self.wall_before = time.perf_counter(), self.wall_time_s

    def add_to_history(self, logs: Mapping[str, float]) -> None:
        """Append one finished epoch's logs to :attr:`history`."""
        for key, value in logs.items():
            self.history.setdefault(key, []).append(float(value))

    def record_epoch(self, epoch: int, score: float, name: str) -> bool:
        """Record finished ``epoch`` (1-based), saved as ``name``; return whether it is best."""
        improved = score > self.best_score
        if improved:
            self.best_score, self.best_epoch, self.best = score, epoch, name
        self.last = name
        self.epoch = epoch
        self.wall_time_s = self.wall_before + time.perf_counter() - self.started
        return improved

    def save(self, paths: RunPaths) -> None:
        """Write ``history.json``, then ``state.json``.

        History first: resume cuts it to state.json's epoch count if a kill falls between.
        """
        write_json(paths.history, self.history)
        write_json(paths.state, self.to_dict())


def link_or_copy(source: Path, target: Path) -> None:
    """Point ``target`` at ``source``'s content atomically (a hard link, else a copy)."""
    with atomic_path(target) as tmp:
        tmp.unlink()
        try:
            os.link(source, tmp)
        except OSError:  # no hard links on this file system
            shutil.copyfile(source, tmp)


def read_run_json(path: Path, flag: str = "--out") -> Any:
    """Read one JSON file of a run folder; a damaged one is a one-line error naming it.

    Raises:
        FerEdgeError: the file is unreadable or not JSON (e.g. edited by hand, or a disk that
            lost its tail).
    """
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FerEdgeError(f"{flag}: {path} is missing") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise FerEdgeError(f"{flag}: {path} is damaged ({first_line(exc)})") from None


def read_state(paths: RunPaths) -> dict[str, Any]:
    """Return ``state.json`` as a dict, checked for what resuming needs.

    Raises:
        FerEdgeError: a damaged state file, named in one line.
    """
    state = read_run_json(paths.state, "--resume")
    if (
        not isinstance(state, dict)
        or not isinstance(state.get("options"), dict)
        or not isinstance(state.get("epoch"), int)
        or not all(isinstance(state.get(k, ""), (str, type(None))) for k in ("last", "best"))
    ):
        raise FerEdgeError(
            f"--resume: {paths.state} is damaged (not a fer-edge train state: needs "
            "'options', 'epoch' and checkpoint names)"
        )
    return state


def load_options_for_resume(out: str | Path) -> TrainOptions:
    """Return the options an interrupted run in ``out`` was started with."""
    paths = RunPaths(out)
    state = read_state(paths) if paths.state.is_file() else None
    if state is None or not paths.checkpoint(state, "last").is_file():
        raise FerEdgeError(f"--resume: no checkpoint in {paths.out} (expected {paths.last.name})")
    try:
        return TrainOptions.from_dict(state["options"])
    except (TypeError, ValueError, KeyError) as exc:
        raise FerEdgeError(
            f"--resume: {paths.state} is damaged (its options: {first_line(exc)})"
        ) from None


def epochs_in(model: Any, recorded: int, steps: int) -> int:
    """Return the finished epochs a resumed checkpoint really holds.

    Before issue 16 a Ctrl-C mid-epoch was saved as a finished epoch; the optimizer's step
    count in the checkpoint tells (``state.json`` from then on always matches it).

    Args:
        model: the compiled checkpoint.
        recorded: the epochs ``state.json`` records.
        steps: training steps per epoch.
    """
    iterations = int(model.optimizer.iterations.numpy())
    done = min(recorded, iterations // steps)
    if done < recorded:
        print(
            f"resume: the checkpoint holds {done} finished epochs and part of the next "
            f"({iterations} steps of {steps} per epoch); epoch {done + 1} is trained again",
            file=sys.stderr,
        )
    return done
