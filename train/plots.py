"""Report plots (matplotlib, headless).

Each PNG also carries its numbers as JSON text metadata (``fer_edge``), so a reader or a test
can check the picture against metrics.json.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from fer_edge.atomic import atomic_path


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: str | os.PathLike[str], numbers: Any) -> None:
    plt = _pyplot()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight", metadata={"fer_edge": json.dumps(numbers)})
    plt.close(fig)


def plot_class_distribution(
    counts: Mapping[str, Mapping[str, int]], path: str | os.PathLike[str]
) -> None:
    """Bar chart of images per class, one bar group per split."""
    plt = _pyplot()
    splits = list(counts)
    classes = list(next(iter(counts.values())))
    fig, ax = plt.subplots(figsize=(8, 4))
    width = 0.8 / max(1, len(splits))
    x = np.arange(len(classes))
    for i, split in enumerate(splits):
        values = [counts[split][c] for c in classes]
        bars = ax.bar(x + (i - (len(splits) - 1) / 2) * width, values, width, label=split)
        ax.bar_label(bars, fontsize=7)
    ax.set_xticks(x, classes)
    ax.set_ylabel("images")
    ax.set_title("Class distribution")
    ax.legend()
    _save(fig, path, {k: dict(v) for k, v in counts.items()})


def plot_training_curves(
    history: Mapping[str, Sequence[float]], path: str | os.PathLike[str]
) -> None:
    """Loss and accuracy per epoch, training vs the model-selection split, and the LR."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    epochs = np.arange(1, len(history.get("loss", [])) + 1)
    for ax, key, title in ((axes[0], "loss", "loss"), (axes[1], "accuracy", "accuracy")):
        if key in history:
            ax.plot(epochs, history[key], label="train (augmented)")
        if f"val_{key}" in history:
            ax.plot(epochs, history[f"val_{key}"], label="selection split")
        ax.set_xlabel("epoch")
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend()
    if "lr" in history:
        axes[2].plot(epochs, history["lr"])
        axes[2].set_yscale("log")
    axes[2].set_title("learning rate")
    axes[2].set_xlabel("epoch")
    axes[2].grid(alpha=0.3)
    _save(fig, path, {k: list(map(float, v)) for k, v in history.items()})


def plot_confusion(
    confusion: Sequence[Sequence[int]],
    labels: Sequence[str],
    path: str | os.PathLike[str],
    title: str = "Confusion matrix",
) -> None:
    """Row-normalised confusion matrix with counts and recall in every cell."""
    plt = _pyplot()
    cm = np.asarray(confusion, dtype=float)
    rows = cm.sum(axis=1, keepdims=True)
    norm = np.divide(cm, rows, out=np.zeros_like(cm), where=rows > 0)
    fig, ax = plt.subplots(figsize=(1.1 * len(labels) + 2, 1.0 * len(labels) + 1.5))
    image = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    for i in range(len(labels)):
        for j in range(len(labels)):
            color = "white" if norm[i, j] > 0.5 else "black"
            text = f"{int(cm[i, j])}\n{norm[i, j]:.0%}"
            ax.text(j, i, text, ha="center", va="center", fontsize=8, color=color)
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    fig.colorbar(image, ax=ax, fraction=0.046)
    _save(fig, path, {"labels": list(labels), "confusion": np.asarray(confusion).tolist()})
