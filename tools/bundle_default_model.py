"""Copy a converted model pair into the package as the bundled default.

``fer-edge convert`` writes ``PREFIX_qat_int8.tflite`` and ``PREFIX_float32.tflite`` with
model cards. This copies them to ``fer_edge/models/default_int8.tflite`` and
``default_float32.tflite``, rewriting the cards and the embedded metadata so the pair still
points at each other under the new names.

With the training run folder and a ``fer-edge bench --json`` report, the cards also get the
model card proper: architecture, training recipe and time, per-class recall and latency.
``--tta flip`` records the test-time augmentation the classifier applies by default (chosen by
measurement, see :class:`fer_edge.classifier.ClassifierOptions`).

Usage::

    python tools/bundle_default_model.py [--tta none|flip] runs/ship PREFIX [RUN_DIR BENCH_JSON]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from fer_edge.atomic import write_bytes
from fer_edge.card import gzip_size, read_card
from fer_edge.classifier import check_tta
from fer_edge.modelmeta import ModelMeta, embed_in_tflite, strip_meta

PACKAGE_MODELS = Path(__file__).resolve().parents[1] / "fer_edge" / "models"
RENAMES = {"qat_int8": "default_int8", "float32": "default_float32"}


def training_card(run: Path) -> dict[str, Any]:
    """Summarise a training run folder (``metrics.json``) for a model card."""
    metrics = json.loads((run / "metrics.json").read_text())
    return {
        "model": metrics["model"],
        "params": metrics["params"],
        "macs": metrics["macs"],
        "epochs_run": metrics["epochs_run"],
        "best_epoch": metrics["best_epoch"],
        "wall_time_s": metrics["wall_time_s"],
        "options": metrics["options"],
        "keras_val_accuracy": metrics["metrics"]["accuracy"],
        "keras_val_macro_f1": metrics["metrics"]["macro_f1"],
    }


def bench_card(report: dict[str, Any], model: str) -> dict[str, Any]:
    """Pick one model's accuracy, per-class recall and latency rows from a bench report."""
    evaluation = next(e for e in report["evaluations"] if e["model"] == model)
    return {
        "accuracy": evaluation["accuracy"],
        "macro_f1": evaluation["macro_f1"],
        "per_class_recall": {c: m["recall"] for c, m in evaluation["per_class"].items()},
        "latency_ms": [
            {
                "runtime": f"{r['runtime']} {r['runtime_version']}",
                "threads": r["threads"],
                "invoke_median": r["latency_ms"]["invoke"]["median_ms"],
                "end_to_end_median": r["latency_ms"]["end_to_end"]["median_ms"],
            }
            for r in report["results"]
            if r["model"] == model
        ],
        "machine": f"{report['environment']['cpu']} ({report['environment']['machine']})",
        "bench_created": report["created"],
    }


def bundle(
    folder: Path,
    prefix: str,
    dest: Path = PACKAGE_MODELS,
    run: Path | None = None,
    bench: Path | None = None,
    tta: str | None = None,
) -> list[Path]:
    """Copy ``PREFIX_{qat_int8,float32}`` from ``folder`` into ``dest`` under default names."""
    report = json.loads(bench.read_text()) if bench else None
    written = []
    for suffix, new_stem in RENAMES.items():
        src = folder / f"{prefix}_{suffix}.tflite"
        card = read_card(src)
        if card is None or card.meta is None:
            sys.exit(f"{src.with_suffix('.json')}: missing or unreadable model card")
        card.float_model = "default_float32.tflite"
        card.extra["bundled_from"] = src.name
        if run is not None:
            card.training = training_card(run)
        if report is not None:
            card.benchmark = bench_card(report, src.stem)
        meta = card.meta
        extra = {**meta.extra, "float_model": "default_float32.tflite"}
        if tta is not None:
            extra["tta"] = card.extra["tta"] = check_tta(tta)
        card.meta = meta = ModelMeta(meta.labels, meta.input, meta.name, extra)
        model = embed_in_tflite(strip_meta(src.read_bytes()), meta)
        target = dest / f"{new_stem}.tflite"
        write_bytes(target, model)
        card.size_bytes = len(model)
        card.gzip_bytes = gzip_size(model)
        card.write(target.with_suffix(".json"))
        written.append(target)
    return written


if __name__ == "__main__":
    args = sys.argv[1:]
    mode = None
    if args[:1] == ["--tta"] and len(args) > 1:
        mode, args = args[1], args[2:]
    if len(args) not in (2, 4):
        sys.exit(__doc__)
    run_dir, bench_json = [Path(a) for a in args[2:4]] or [None, None]
    for path in bundle(Path(args[0]), args[1], PACKAGE_MODELS, run_dir, bench_json, mode):
        print(f"wrote {path}")
