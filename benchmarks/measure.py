"""``bench(options) -> BenchReport``: every model, runtime and thread count in one run.

Ratios (int8 / float latency and size, accuracy deltas) only mean something when both sides
come from the same run on the same machine, so float parents are benched alongside their
int8 children even when not asked for, and models are timed in interleaved rounds.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from fer_edge import __version__
from fer_edge.bench.config import BenchConfig
from fer_edge.bench.environment import collect_environment, load_average
from fer_edge.bench.latency import (
    LatencyResult,
    ModelTimer,
    latency_faces,
    make_crops,
    measure_interleaved,
)
from fer_edge.bench.modelfiles import ModelInfo, describe_model, display_names, expand_model_paths
from fer_edge.bench.pairing import Pairing, pair_models
from fer_edge.bench.results import (
    AccuracyRow,
    BenchReport,
    Comparison,
    DataInfo,
    ResultRow,
    Skip,
)
from fer_edge.bench.stats import difference, ratio
from fer_edge.classifier import ClassifierOptions, FaceClassifier
from fer_edge.errors import FerEdgeError, first_line
from fer_edge.evaluate import EvalSet, eval_key, evaluate, load_eval_set
from fer_edge.metrics import ClassificationMetrics, agreement
from fer_edge.runtime import Runtime, check_runtime_name, load_runtime

# What a runtime raises for a model it cannot run (old op versions, a missing delegate).
_MODEL_ERRORS = (FerEdgeError, RuntimeError, ValueError)
#: An invoke p90 this many times the median means other work kept taking the CPU.
NOISY_SPREAD = 2.0


@dataclass(frozen=True)
class BenchOptions:
    """What to bench and how.

    Attributes:
        models: ``.tflite`` files or folders; empty means the bundled models.
        data: dataset folders or FER2013 CSVs to score accuracy on (e.g. FER2013 and FER+,
            two label sets of the same faces); the first fills the main table's accuracy
            columns, every one gets its own accuracy rows. Empty: latency and size only.
        split: the split of each ``data`` to score.
        baseline: the float model to compare against where model cards do not say.
        config: warm-up, repeats, threads, runtimes, floors.
        delegate: ``"edgetpu"`` or ``None``.
        progress: show progress bars on stderr.
    """

    models: tuple[Path, ...] = ()
    data: tuple[Path, ...] = ()
    split: str = "val"
    baseline: Path | None = None
    config: BenchConfig = field(default_factory=BenchConfig)
    delegate: str | None = None
    progress: bool = False


def noisy_rows(rows: list[ResultRow]) -> list[ResultRow]:
    """Return the rows whose invoke-only p90 is over :data:`NOISY_SPREAD` times the median."""
    return [r for r in rows if r.latency.invoke.p90_ms > NOISY_SPREAD * r.latency.invoke.median_ms]


def load_runtimes(names: tuple[str, ...]) -> tuple[list[Runtime], list[Skip]]:
    """Load each named runtime; one that fails to import is skipped, not fatal.

    Raises:
        FerEdgeError: an unknown runtime name, or none of them loads.
    """
    for name in names:
        check_runtime_name(name)
    loaded: dict[str, Runtime] = {}
    skipped: list[Skip] = []
    for name in names:
        try:
            runtime = load_runtime(name)
        except FerEdgeError as exc:
            skipped.append(Skip(name, None, str(exc)))
            continue
        # "auto" and the name it resolves to are one runtime.
        loaded.setdefault(runtime.name, runtime)
    if not loaded:
        raise FerEdgeError("; ".join(f"--runtime {s.runtime}: {s.reason}" for s in skipped))
    return list(loaded.values()), skipped


def _describe_models(
    requested: list[Path], baseline: Path | None
) -> tuple[list[ModelInfo], list[str]]:
    """Pair the models, add parents not asked for, and put each parent before its children."""
    pairings = {p.model.resolve(): p for p in pair_models(requested, baseline)}
    notes = [p.note for p in pairings.values() if p.note]
    ordered: dict[Path, Pairing] = {}
    for pairing in pairings.values():
        parent = pairing.parent
        if parent is not None and parent.resolve() not in ordered:
            ordered[parent.resolve()] = pairings.get(
                parent.resolve(), Pairing(parent, None, "reference")
            )
        ordered.setdefault(pairing.model.resolve(), pairing)
    paths = [p.model for p in ordered.values()]
    infos = []
    for pairing, name in zip(ordered.values(), display_names(paths), strict=True):
        added = pairing.model.resolve() not in pairings
        if added:
            notes.append(f"added {name} to the run as the float parent of a benched model")
        info = describe_model(pairing.model, name)
        infos.append(replace(info, parent=pairing.parent, pairing=pairing.reason, added=added))
    names = {info.path.resolve(): info.name for info in infos}
    infos = [
        replace(i, parent_name=names.get(i.parent.resolve()) if i.parent else None) for i in infos
    ]
    return infos, notes


def with_tta_variants(infos: list[ModelInfo], modes: tuple[str, ...]) -> list[ModelInfo]:
    """Add a ``NAME+MODE`` row per model and TTA mode other than ``none``.

    A variant's ratios and accuracy delta are taken against the same model without TTA, so the
    table shows what the augmentation gains and what it costs per face.
    """
    out = []
    for info in infos:
        if "none" in modes:
            out.append(info)
        for mode in modes:
            if mode != "none":
                out.append(
                    replace(
                        info,
                        name=f"{info.name}+{mode}",
                        tta=mode,
                        parent=info.path,
                        parent_name=info.name if "none" in modes else None,
                        pairing="tta",
                        added=False,
                    )
                )
    return out


@contextmanager
def _bar(total: int, enabled: bool, desc: str) -> Iterator[Any]:
    with tqdm(total=total, desc=desc, disable=not enabled, file=sys.stderr, leave=False) as bar:
        yield bar


def _classifier(
    info: ModelInfo, runtime: Runtime, threads: int, delegate: str | None
) -> FaceClassifier:
    options = ClassifierOptions(threads, runtime.name, delegate, info.tta)
    return FaceClassifier(info.path, options, runtime)


def bench(options: BenchOptions) -> BenchReport:
    """Measure size, accuracy, agreement and latency of every model under every runtime.

    Args:
        options: what to bench (see :class:`BenchOptions`).

    Returns:
        The :class:`BenchReport`; ``floor_failures()`` lists accuracy floors not met.

    Raises:
        FerEdgeError: bad model paths, a missing baseline or split, unknown runtimes, or no
            runtime able to run any model.
    """
    config = options.config
    baseline = options.baseline
    if baseline is not None:
        if not baseline.is_file():
            raise FerEdgeError(f"--baseline: {baseline} does not exist")
        if baseline.suffix.lower() != ".tflite":
            raise FerEdgeError(f"--baseline: {baseline} is not a .tflite file")
    requested = expand_model_paths(options.models)
    models, notes = _describe_models(requested, baseline)
    models = with_tta_variants(models, config.tta)
    if any(m.tta != "none" for m in models) and "none" in config.tta:
        notes.append("+flip rows are compared with the same model without TTA")
    runtimes, skipped = load_runtimes(config.runtimes)
    environment = collect_environment()

    # One evaluation-set map per data set, in --data order; the first feeds the main table.
    all_sets: list[dict[Any, EvalSet]] = []
    data_infos: list[DataInfo] = []
    for data in options.data:
        eval_sets: dict[Any, EvalSet] = {}
        for info in models:
            key = eval_key(info.meta)
            if key not in eval_sets:
                eval_sets[key] = load_eval_set(
                    data, options.split, info.meta, config.limit, config.seed, options.progress
                )
                if eval_sets[key].skipped:
                    notes.append(eval_sets[key].skipped)
        first = next(iter(eval_sets.values()))
        data_infos.append(
            DataInfo(
                str(data),
                options.split,
                len(first.labels),
                first.total,
                first.label_set,
                first.unscored,
            )
        )
        all_sets.append(eval_sets)
    main_sets = all_sets[0] if all_sets else {}
    faces = latency_faces(next(iter(main_sets.values()), None), config.latency_faces, config.seed)
    crops = make_crops(faces, config.crop_size)

    report = BenchReport(
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        version=__version__,
        environment=environment,
        config=config,
        data=data_infos,
        models=models,
        runtimes=[{"name": r.name, "version": r.version} for r in runtimes],
        skipped=skipped,
        notes=notes,
    )
    steps = len(runtimes) * (len(config.threads) + len(all_sets))
    with _bar(steps, options.progress, "bench") as bar:
        for runtime in runtimes:
            usable = None
            for index, (eval_sets, data_info) in enumerate(zip(all_sets, data_infos, strict=True)):
                ran = _evaluate(report, runtime, eval_sets, data_info.name, options)
                usable = ran if index == 0 else usable
                bar.update(1)
            for threads in config.threads:
                _time(report, runtime, threads, crops, usable, options)
                bar.update(1)
    if not report.rows:
        raise FerEdgeError("no model ran: " + "; ".join(s.describe() for s in report.skipped))
    report.load_after = load_average()
    noisy = noisy_rows(report.rows)
    if noisy:
        report.notes.append(
            f"{len(noisy)} of {len(report.rows)} rows have an invoke p90 over {NOISY_SPREAD:g}x "
            f"the median: the machine was busy (load {environment.load_1m} -> "
            f"{report.load_after}); trust the ratios more than the absolute times"
        )
    return report


def _evaluate(
    report: BenchReport,
    runtime: Runtime,
    eval_sets: dict[Any, EvalSet],
    data_name: str,
    options: BenchOptions,
) -> list[ModelInfo]:
    """Score every model under ``runtime`` on one data set; return the models it could run."""
    threads = max(options.config.threads)
    predictions: dict[str, np.ndarray] = {}
    usable: list[ModelInfo] = []
    by_name = {m.name: m for m in report.models}
    metrics: dict[str, ClassificationMetrics] = {}
    for info in report.models:
        try:
            classifier = _classifier(info, runtime, threads, options.delegate)
            evaluation = evaluate(classifier, eval_sets[eval_key(info.meta)])
        except _MODEL_ERRORS as exc:
            if not any(s.runtime == runtime.name and s.model == info.name for s in report.skipped):
                report.skipped.append(Skip(runtime.name, info.name, first_line(exc)))
            continue
        usable.append(info)
        predictions[info.name] = evaluation.predictions
        metrics[info.name] = evaluation.metrics
    for info in usable:
        parent = by_name.get(info.parent_name) if info.parent_name else None
        agree = None
        if parent is not None and parent.name in predictions:
            if parent.meta.labels == info.meta.labels:
                agree = agreement(predictions[info.name], predictions[parent.name])
            else:
                report.notes.append(f"{info.name}: labels differ from {parent.name}; no agreement")
        report.evaluations.append(
            AccuracyRow(
                model=info.name,
                runtime=runtime.name,
                threads=threads,
                metrics=metrics[info.name],
                float_model=parent.name if parent else None,
                agreement=agree,
                data=data_name,
            )
        )
    return usable


def _time(
    report: BenchReport,
    runtime: Runtime,
    threads: int,
    crops: list[np.ndarray],
    usable: list[ModelInfo] | None,
    options: BenchOptions,
) -> None:
    """Time every usable model under one runtime and thread count; append rows."""
    config = options.config
    candidates = report.models if usable is None else usable
    timers: list[ModelTimer] = []
    timed: list[ModelInfo] = []
    for info in candidates:
        try:
            classifier = _classifier(info, runtime, threads, options.delegate)
            interpreter = runtime.interpreter(
                model_path=str(info.path), threads=threads, delegate=options.delegate
            )
            timers.append(ModelTimer(classifier, interpreter, crops))
        except _MODEL_ERRORS as exc:
            if not any(s.runtime == runtime.name and s.model == info.name for s in report.skipped):
                report.skipped.append(Skip(runtime.name, info.name, first_line(exc)))
            continue
        timed.append(info)
    if not timers:
        return
    latencies = measure_interleaved(timers, config.warmup, config.repeats, config.rounds)
    dtypes = {i.name: str(t.classifier.input_dtype) for i, t in zip(timed, timers, strict=True)}
    main = report.data[0].name if report.data else None
    evals = {e.model: e for e in report.evaluations if e.runtime == runtime.name and e.data == main}
    timed_by_name = {m.name: m for m in timed}
    by_name = dict(zip((m.name for m in timed), latencies, strict=True))
    for info, latency in zip(timed, latencies, strict=True):
        ev = evals.get(info.name)
        parent = timed_by_name.get(info.parent_name) if info.parent_name else None
        report.rows.append(
            ResultRow(
                model=info.name,
                method=info.method,
                input_dtype=dtypes[info.name],
                runtime=runtime.name,
                runtime_version=runtime.version,
                threads=threads,
                size_bytes=info.size_bytes,
                gzip_bytes=info.gzip_bytes,
                latency=latency,
                accuracy=ev.metrics.accuracy if ev else None,
                macro_f1=ev.metrics.macro_f1 if ev else None,
                vs_float=_compare(info, latency, ev, parent, by_name, evals),
            )
        )


def _compare(
    info: ModelInfo,
    latency: LatencyResult,
    ev: AccuracyRow | None,
    parent: ModelInfo | None,
    latencies: dict[str, LatencyResult],
    evals: dict[str, AccuracyRow],
) -> Comparison | None:
    if parent is None or parent.name not in latencies:
        return None
    base = latencies[parent.name]
    parent_ev = evals.get(parent.name)
    return Comparison(
        float_model=parent.name,
        invoke_ratio=ratio(latency.invoke.median_ms, base.invoke.median_ms),
        end_to_end_ratio=ratio(latency.end_to_end.median_ms, base.end_to_end.median_ms),
        size_ratio=ratio(info.size_bytes, parent.size_bytes),
        gzip_ratio=ratio(info.gzip_bytes, parent.gzip_bytes),
        accuracy_delta=difference(
            ev.metrics.accuracy if ev else None,
            parent_ev.metrics.accuracy if parent_ev else None,
        ),
        macro_f1_delta=difference(
            ev.metrics.macro_f1 if ev else None,
            parent_ev.metrics.macro_f1 if parent_ev else None,
        ),
        agreement=ev.agreement if ev else None,
    )
