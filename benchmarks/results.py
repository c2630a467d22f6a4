"""What a bench run produces: typed results and their JSON form."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fer_edge.bench.config import BenchConfig
from fer_edge.bench.environment import Environment
from fer_edge.bench.latency import LatencyResult
from fer_edge.bench.modelfiles import ModelInfo
from fer_edge.metrics import ClassificationMetrics

#: Bumped when a key is renamed or removed (adding keys keeps the version).
SCHEMA = "fer-edge-bench/2"


@dataclass(frozen=True)
class Comparison:
    """A model against its float parent, same runtime and thread count, same run.

    Ratios are model / float: below 1 means smaller or faster. Deltas are model - float.

    Attributes:
        float_model: the parent's display name.
        invoke_ratio: invoke-only median latency ratio.
        end_to_end_ratio: end-to-end median latency ratio.
        size_ratio: file size ratio.
        gzip_ratio: gzip size ratio.
        accuracy_delta: accuracy difference (``None`` without ``--data``).
        macro_f1_delta: macro F1 difference.
        agreement: share of images where both predict the same class.
    """

    float_model: str
    invoke_ratio: float | None
    end_to_end_ratio: float | None
    size_ratio: float | None
    gzip_ratio: float | None
    accuracy_delta: float | None = None
    macro_f1_delta: float | None = None
    agreement: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return dict(self.__dict__)


@dataclass(frozen=True)
class AccuracyRow:
    """Accuracy of one model under one runtime.

    Attributes:
        model: the model's display name.
        runtime: the runtime name.
        threads: the thread count used while scoring (results do not depend on it).
        metrics: accuracy, macro F1, per-class recall, confusion.
        float_model: the parent's display name, if paired.
        agreement: top-1 agreement with the parent under the same runtime.
        data: the data set scored (:attr:`DataInfo.name`: label set and split).
    """

    model: str
    runtime: str
    threads: int
    metrics: ClassificationMetrics
    float_model: str | None = None
    agreement: float | None = None
    data: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict: the row's fields, then the metrics' keys."""
        fields = ("model", "data", "runtime", "threads", "float_model", "agreement")
        return {**{name: getattr(self, name) for name in fields}, **self.metrics.to_dict()}


@dataclass(frozen=True)
class ResultRow:
    """One model under one runtime and thread count: the unit of the table and the plot.

    Attributes:
        model: display name.
        method: the card's method, or ``""``.
        input_dtype: the input tensor type (``float32``, ``int8``, ``uint8``).
        runtime: runtime name.
        runtime_version: its version.
        threads: interpreter threads.
        size_bytes: file size.
        gzip_bytes: gzip -9 size.
        latency: invoke-only and end-to-end timings.
        accuracy: accuracy on the split under this runtime, or ``None`` without data.
        macro_f1: macro F1 likewise.
        vs_float: the comparison with the float parent, or ``None``.
    """

    model: str
    method: str
    input_dtype: str
    runtime: str
    runtime_version: str
    threads: int
    size_bytes: int
    gzip_bytes: int
    latency: LatencyResult
    accuracy: float | None = None
    macro_f1: float | None = None
    vs_float: Comparison | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {
            "model": self.model,
            "method": self.method,
            "input_dtype": self.input_dtype,
            "runtime": self.runtime,
            "runtime_version": self.runtime_version,
            "threads": self.threads,
            "size_bytes": self.size_bytes,
            "gzip_bytes": self.gzip_bytes,
            "latency_ms": self.latency.to_dict(),
            "accuracy": self.accuracy,
            "macro_f1": self.macro_f1,
            "vs_float": self.vs_float.to_dict() if self.vs_float else None,
        }


@dataclass(frozen=True)
class Skip:
    """A runtime that would not load, or a model a runtime could not run.

    Attributes:
        runtime: the runtime name.
        model: the model's display name, or ``None`` when the whole runtime was skipped.
        reason: the one-line error, with the install hint for a missing runtime.
    """

    runtime: str
    model: str | None
    reason: str

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return dict(self.__dict__)

    def describe(self) -> str:
        """Return a one-line message."""
        what = f"{self.model} under {self.runtime}" if self.model else f"runtime {self.runtime}"
        return f"skipped {what}: {self.reason}"


@dataclass(frozen=True)
class DataInfo:
    """Where accuracy numbers came from.

    Attributes:
        path: the dataset folder or CSV.
        split: the split scored.
        images: images scored (after ``limit``).
        total: images in the split.
        label_set: whose labels: ``fer2013`` or ``ferplus`` (the ten-vote majority).
        unscored: faces of the split without a usable majority (FER+): counted, not scored.
    """

    path: str
    split: str
    images: int
    total: int
    label_set: str = "fer2013"
    unscored: int = 0

    @property
    def name(self) -> str:
        """The label set and split, e.g. ``ferplus val``: what every accuracy is on."""
        return f"{self.label_set} {self.split}"

    def describe(self) -> str:
        """Return one line: where the images came from and how many were scored."""
        sample = f" (seeded sample of {self.total})" if self.images < self.total else ""
        count = self.unscored
        unscored = f"; {count} without a usable majority, not scored" if count else ""
        return (
            f"data {self.name}: {self.path} split '{self.split}', {self.images} images"
            f"{sample}{unscored}"
        )

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {**self.__dict__, "name": self.name}


@dataclass
class BenchReport:
    """Everything one ``fer-edge bench`` run measured, with how and where it was measured.

    Attributes:
        created: UTC timestamp (ISO 8601).
        version: the fer-edge version.
        environment: machine and library versions.
        config: warm-up, repeats, threads and the rest, as used.
        data: the scored data sets (the first fills :attr:`rows`' accuracy); empty for
            latency and size only.
        models: the benched model files.
        runtimes: ``{"name", "version"}`` of every runtime that ran.
        rows: one per model, runtime and thread count.
        evaluations: one per model and runtime, with per-class figures.
        skipped: runtimes or model/runtime pairs that could not run.
        notes: other warnings (missing parents, unreadable images, a busy machine, ...).
        load_after: the 1-minute load average when timing ended (the start is in
            ``environment``); a rise means other work competed with the benchmark.
    """

    created: str
    version: str
    environment: Environment
    config: BenchConfig
    data: list[DataInfo]
    models: list[ModelInfo]
    runtimes: list[dict[str, str]]
    rows: list[ResultRow] = field(default_factory=list)
    evaluations: list[AccuracyRow] = field(default_factory=list)
    skipped: list[Skip] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    load_after: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON document written by ``--json``."""
        return {
            "schema": SCHEMA,
            "created": self.created,
            "fer_edge": self.version,
            "environment": self.environment.to_dict(),
            "load_after": self.load_after,
            "config": self.config.to_dict(),
            "data": [d.to_dict() for d in self.data],
            "runtimes": self.runtimes,
            "models": [m.to_dict() for m in self.models],
            "results": [r.to_dict() for r in self.rows],
            "evaluations": [e.to_dict() for e in self.evaluations],
            "skipped": [s.to_dict() for s in self.skipped],
            "notes": list(self.notes),
        }

    def floor_failures(self) -> list[str]:
        """Return one message per evaluation below the configured accuracy floors.

        Floors are the only thing a CI run fails on besides errors: accuracy on a fixed split
        is deterministic, speed on a shared machine is not.
        """
        failures = []
        low_acc, low_agree = self.config.min_accuracy, self.config.min_agreement
        for ev in self.evaluations:
            where = f"{ev.model} under {ev.runtime} on {ev.data}"
            if low_acc is not None and ev.metrics.accuracy < low_acc:
                failures.append(f"{where}: accuracy {ev.metrics.accuracy:.4f} < {low_acc}")
            if low_agree is not None and ev.agreement is not None and ev.agreement < low_agree:
                failures.append(
                    f"{where}: agreement with {ev.float_model} {ev.agreement:.4f} < {low_agree}"
                )
        return failures
