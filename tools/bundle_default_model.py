"""Copy a converted model pair into the package as a bundled model.

``fer-edge convert`` writes ``PREFIX_qat_int8.tflite`` and ``PREFIX_float32.tflite`` with
model cards. This copies them to ``fer_edge/models/NAME_int8.tflite`` and
``NAME_float32.tflite`` (``--name``, default ``default``: see
:data:`fer_edge.models.BUNDLED_CLASSIFIERS`), rewriting the cards and the embedded metadata so
the pair still points at each other under the new names. ``--label-set fer2013|ferplus``
records whose labels the model was trained on, in the card and inside the model.

With the training run folder and a ``fer-edge bench --json`` report, the cards also get the
model card proper: architecture, training recipe and time, per-class recall and latency.
``--tta flip`` records the test-time augmentation the classifier applies by default (chosen by
measurement, see :class:`fer_edge.classifier.ClassifierOptions`).

Usage::

    python tools/bundle_default_model.py [--tta none|flip] [--name NAME] [--label-set SET] \
        runs/ship PREFIX [RUN_DIR BENCH_JSON]

``RUN_DIR`` may be ``-`` to keep the card's training record and take only the benchmark.
A bundled pair can be renamed by bundling it again from the package folder:
``--name fer2013 fer_edge/models default`` with ``--from-bundled`` (its files are
``default_int8.tflite`` and ``default_float32.tflite``; the old names are then removed).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from fer_edge.atomic import write_bytes
from fer_edge.card import gzip_size, read_card
from fer_edge.classifier import check_tta
from fer_edge.modelmeta import ModelMeta, embed_in_tflite, strip_meta

PACKAGE_MODELS = Path(__file__).resolve().parents[1] / "fer_edge" / "models"
#: convert's file suffixes -> the bundled ones.
SUFFIXES = {"qat_int8": "int8", "float32": "float32"}


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
    """Pick one model's accuracy, per-class recall and latency rows from a bench report.

    The top-level accuracy is the report's first data set's; ``by_data`` has every data set
    (e.g. FER+ val and FER2013 val: two label sets of the same faces).
    """
    evaluations = [e for e in report["evaluations"] if e["model"] == model]
    if not evaluations:
        raise SystemExit(f"the bench report has no accuracy for {model}")

    def scores(evaluation: dict[str, Any]) -> dict[str, Any]:
        return {
            "accuracy": evaluation["accuracy"],
            "balanced_recall": evaluation.get("balanced_recall"),
            "macro_f1": evaluation["macro_f1"],
            "per_class_recall": {c: m["recall"] for c, m in evaluation["per_class"].items()},
        }

    return {
        **scores(evaluations[0]),
        "data": evaluations[0].get("data"),
        "by_data": {e.get("data", ""): scores(e) for e in evaluations},
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
    name: str = "default",
    label_set: str | None = None,
    from_bundled: bool = False,
) -> list[Path]:
    """Copy ``PREFIX_{qat_int8,float32}`` from ``folder`` into ``dest`` as ``NAME_{int8,float32}``.

    With ``from_bundled`` the sources are a bundled pair (``PREFIX_int8``, ``PREFIX_float32``),
    which is removed once its copy under ``name`` is written.
    """
    report = json.loads(bench.read_text()) if bench else None
    written, sources = [], []
    float_name = f"{name}_float32.tflite"
    for suffix, new_suffix in SUFFIXES.items():
        src = folder / f"{prefix}_{new_suffix if from_bundled else suffix}.tflite"
        card = read_card(src)
        if card is None or card.meta is None:
            raise SystemExit(f"{src.with_suffix('.json')}: missing or unreadable model card")
        card.float_model = float_name
        if not from_bundled:
            card.extra["bundled_from"] = src.name
        if run is not None:
            card.training = training_card(run)
        if report is not None:
            card.benchmark = bench_card(report, src.stem)
        meta = card.meta
        extra = {**meta.extra, "float_model": float_name}
        if tta is not None:
            extra["tta"] = card.extra["tta"] = check_tta(tta)
        if label_set is not None:
            extra["label_set"] = card.extra["label_set"] = label_set
        card.meta = meta = ModelMeta(meta.labels, meta.input, meta.name, extra)
        model = embed_in_tflite(strip_meta(src.read_bytes()), meta)
        target = dest / f"{name}_{new_suffix}.tflite"
        write_bytes(target, model)
        card.size_bytes = len(model)
        card.gzip_bytes = gzip_size(model)
        card.write(target.with_suffix(".json"))
        written.append(target)
        sources.append(src)
    if from_bundled:
        kept = {path.resolve() for path in written}
        for src in sources:
            if src.resolve() not in kept:  # renamed: the old name goes
                src.unlink()
                src.with_suffix(".json").unlink()
    return written


def main(argv: list[str] | None = None) -> None:
    """Parse the command line and bundle."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("prefix")
    parser.add_argument("run", type=Path, nargs="?")
    parser.add_argument("bench", type=Path, nargs="?")
    parser.add_argument("--tta", choices=["none", "flip"])
    parser.add_argument("--name", default="default")
    parser.add_argument("--label-set", choices=["fer2013", "ferplus"])
    parser.add_argument("--from-bundled", action="store_true")
    args = parser.parse_args(argv)
    if (args.run is None) != (args.bench is None):
        parser.error("give both RUN_DIR and BENCH_JSON, or neither (RUN_DIR - keeps the card's)")
    if args.run == Path("-"):  # keep the card's training record (its run folder is gone)
        args.run = None
    for path in bundle(
        args.folder,
        args.prefix,
        PACKAGE_MODELS,
        args.run,
        args.bench,
        args.tta,
        args.name,
        args.label_set,
        args.from_bundled,
    ):
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
