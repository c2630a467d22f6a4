"""Present a :class:`BenchReport`: terminal table, Markdown, JSON and an accuracy/latency plot."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

from fer_edge import __version__
from fer_edge.atomic import atomic_path, write_json, write_text
from fer_edge.bench.environment import Environment
from fer_edge.bench.results import BenchReport, ResultRow

HEADERS: tuple[str, ...] = (
    "model",
    "method",
    "input",
    "runtime",
    "thr",
    "size KB",
    "gzip KB",
    "acc %",
    "macro F1",
    "agree %",
    "invoke ms med/p90",
    "e2e ms med/p90",
    "x invoke",
    "x e2e",
    "x size",
    "d acc pts",
)
# The first columns (names) are left-aligned, the numbers right-aligned.
_LEFT = 4


def _ms(value: float) -> str:
    if value < 1:
        return f"{value:.3f}"
    return f"{value:.2f}" if value < 100 else f"{value:.1f}"


def _opt(value: float | None, fmt: str, scale: float = 1.0) -> str:
    return "" if value is None else format(value * scale, fmt)


def row_cells(row: ResultRow) -> list[str]:
    """Return the formatted cells of one result row, in :data:`HEADERS` order."""
    vs = row.vs_float
    inv, e2e = row.latency.invoke, row.latency.end_to_end
    return [
        row.model,
        row.method or "-",
        row.input_dtype,
        f"{row.runtime} {row.runtime_version}",
        str(row.threads),
        f"{row.size_bytes / 1024:.1f}",
        f"{row.gzip_bytes / 1024:.1f}",
        _opt(row.accuracy, ".2f", 100),
        _opt(row.macro_f1, ".3f"),
        _opt(vs.agreement if vs else None, ".2f", 100),
        f"{_ms(inv.median_ms)} / {_ms(inv.p90_ms)}",
        f"{_ms(e2e.median_ms)} / {_ms(e2e.p90_ms)}",
        _opt(vs.invoke_ratio if vs else None, ".2f") + ("x" if vs and vs.invoke_ratio else ""),
        _opt(vs.end_to_end_ratio if vs else None, ".2f")
        + ("x" if vs and vs.end_to_end_ratio else ""),
        _opt(vs.size_ratio if vs else None, ".2f") + ("x" if vs and vs.size_ratio else ""),
        _opt(vs.accuracy_delta if vs else None, "+.2f", 100),
    ]


def render_text_table(
    headers: Sequence[str], rows: Sequence[Sequence[str]], left: int = _LEFT
) -> str:
    """Return a space-aligned plain-text table; the first ``left`` columns are left-aligned."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            c.ljust(w) if i < left else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(headers), rule, *(line(r) for r in rows)])


def render_markdown_table(
    headers: Sequence[str], rows: Sequence[Sequence[str]], left: int = _LEFT
) -> str:
    """Return a GitHub-flavoured Markdown table; the first ``left`` columns are left-aligned."""
    align = ["---" if i < left else "---:" for i in range(len(headers))]
    out = ["| " + " | ".join(headers) + " |", "| " + " | ".join(align) + " |"]
    out += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in rows]
    return "\n".join(out)


class TableReport:
    """A bench report shown as one table and the lines that say how it was measured.

    Subclasses set :attr:`mode`, :attr:`headers` and :attr:`left` and give ``created``,
    ``environment``, :meth:`cells` and :meth:`how`; the terminal and Markdown forms and the
    head of the JSON document are the same for all.
    """

    #: The bench flag, e.g. ``--pipeline``.
    mode: ClassVar[str]
    headers: ClassVar[tuple[str, ...]]
    #: How many leading columns are left-aligned (names; the numbers align right).
    left: ClassVar[int]
    created: str
    environment: Environment

    def document(self, schema: str, **body: Any) -> dict[str, Any]:
        """Return the JSON document: schema, created, version, environment, then ``body``."""
        return {
            "schema": schema,
            "created": self.created,
            "fer_edge": __version__,
            "environment": self.environment.to_dict(),
            **body,
        }

    def cells(self) -> list[list[str]]:
        """Return one row per result, in :attr:`headers` order."""
        raise NotImplementedError

    def how(self) -> list[str]:
        """Return the lines that say how the numbers were measured."""
        raise NotImplementedError

    def format(self) -> str:
        """Return the terminal table and how it was measured."""
        return "\n".join([render_text_table(self.headers, self.cells(), self.left), *self.how()])

    def to_markdown(self) -> str:
        """Return the Markdown report."""
        table = render_markdown_table(self.headers, self.cells(), self.left)
        how = "\n".join(f"- {line}" for line in self.how())
        return f"## fer-edge bench {self.mode} ({self.created})\n\n{table}\n\n{how}\n"


def _how(report: BenchReport) -> list[str]:
    cfg = report.config
    crops = f"{cfg.crop_size} px BGR crops" if cfg.crop_size else "stored gray faces"
    runtimes = ", ".join(f"{r['name']} {r['version']}" for r in report.runtimes)
    lines = [
        f"machine: {report.environment.summary()}, "
        f"load {report.environment.load_1m} -> {report.load_after}",
        f"runtimes: {runtimes}",
        f"config '{cfg.name}': warm-up {cfg.warmup}, repeats {cfg.repeats} in {cfg.rounds} "
        f"interleaved rounds, threads {','.join(map(str, cfg.threads))}, end-to-end on {crops}",
    ]
    if report.data:
        lines += [d.describe() for d in report.data]
        if len(report.data) > 1:
            lines.append(f"main table accuracy: {report.data[0].name}")
    else:
        lines.append("data: none (latency and size only; pass --data for accuracy)")
    return lines


def format_table(report: BenchReport) -> str:
    """Return the terminal report: the table, then how it was measured and any skips."""
    table = render_text_table(HEADERS, [row_cells(r) for r in report.rows])
    legend = (
        "x = ratio to the float parent (same runtime, threads and run); "
        "d acc = accuracy difference in points; e2e = crop -> probabilities"
    )
    extra = [s.describe() for s in report.skipped] + list(report.notes)
    accuracy = []
    if len(report.data) > 1:
        headers, rows = _accuracy_rows(report)
        accuracy = ["", render_text_table(headers[:7], [r[:7] for r in rows], 3), ""]
    return "\n".join([table, legend, *accuracy, *_how(report), *extra])


def _accuracy_rows(report: BenchReport) -> tuple[list[str], list[list[str]]]:
    """Return the headers and rows of the accuracy table: every model on every data set."""
    labels = report.evaluations[0].metrics.labels
    same = all(e.metrics.labels == labels for e in report.evaluations)
    headers = [
        "model",
        "data",
        "runtime",
        "acc %",
        "balanced recall %",
        "macro F1",
        "agree %",
        *(labels if same else ()),
    ]
    rows = []
    # Grouped by data set (label set), in --data order, so each block reads as one table.
    order = {d.name: i for i, d in enumerate(report.data)}
    for ev in sorted(report.evaluations, key=lambda e: order.get(e.data, len(order))):
        m = ev.metrics
        recalls = [f"{100 * m.per_class[c].recall:.1f}" for c in labels] if same else []
        rows.append(
            [
                ev.model,
                ev.data,
                ev.runtime,
                f"{100 * m.accuracy:.2f}",
                f"{100 * m.balanced_recall:.1f}",
                f"{m.macro_f1:.3f}",
                _opt(ev.agreement, ".2f", 100),
                *recalls,
            ]
        )
    return headers, rows


def to_markdown(report: BenchReport) -> str:
    """Return the Markdown report: table, per-class recall, how it was measured."""
    parts = [
        f"## fer-edge bench ({report.config.name}, {report.created})",
        "",
        render_markdown_table(HEADERS, [row_cells(r) for r in report.rows]),
        "",
        "`x` columns: ratio to the float parent measured in the same run, same runtime and "
        "threads (below 1 = faster or smaller). `d acc pts`: accuracy minus the parent's, in "
        "points. `agree %`: top-1 agreement with the parent. `e2e`: face crop to "
        "probabilities (resize, normalise, quantise, invoke, dequantise); `invoke`: "
        "`interpreter.invoke()` alone. Latency: median / 90th percentile.",
        "",
    ]
    if report.evaluations:
        per_class = render_markdown_table(*_accuracy_rows(report), 3)
        parts += ["### Accuracy and per-class recall % on every data set", "", per_class, ""]
    parts += ["### How it was measured", "", *(f"- {line}" for line in _how(report))]
    parts += [f"- fer-edge {report.version}"]
    extra = [s.describe() for s in report.skipped] + list(report.notes)
    if extra:
        parts += ["", "### Notes", "", *(f"- {line}" for line in extra)]
    return "\n".join(parts) + "\n"


def write_report_json(report: BenchReport, path: str | os.PathLike[str]) -> Path:
    """Write the JSON report atomically."""
    return write_json(path, report.to_dict())


def write_markdown(report: BenchReport, path: str | os.PathLike[str]) -> Path:
    """Write the Markdown report atomically."""
    return write_text(path, to_markdown(report))


def write_plot(report: BenchReport, path: str | os.PathLike[str]) -> str:
    """Plot accuracy against end-to-end latency, one point per model, runtime and threads.

    matplotlib comes with the ``train`` extra only; on a device without it the plot is
    skipped and the returned message says so.

    Returns:
        A one-line message: where the plot went, or why it was skipped.
    """
    points = [r for r in report.rows if r.accuracy is not None]
    if not points:
        return "plot skipped: no accuracy to plot (pass --data)"
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        return "plot skipped: matplotlib is not installed (pip install 'fer-edge[train]')"

    # Figure + Agg canvas rather than pyplot: no global state, no display needed.
    fig = Figure(figsize=(8, 5.5), dpi=120)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    models = list(dict.fromkeys(r.model for r in points))
    runtimes = list(dict.fromkeys(r.runtime for r in points))
    markers = "osD^v<>pP*X"
    colors = [f"C{i % 10}" for i in range(len(models))]
    for row in points:
        ax.scatter(
            row.latency.end_to_end.median_ms,
            100 * (row.accuracy or 0.0),
            color=colors[models.index(row.model)],
            marker=markers[runtimes.index(row.runtime) % len(markers)],
            s=60,
            edgecolors="black",
            linewidths=0.5,
        )
        ax.annotate(
            f"{row.threads}t",
            (row.latency.end_to_end.median_ms, 100 * (row.accuracy or 0.0)),
            textcoords="offset points",
            xytext=(5, 4),
            fontsize=7,
        )
    for model, color in zip(models, colors, strict=True):
        ax.scatter([], [], color=color, marker="s", label=model)
    for i, runtime in enumerate(runtimes):
        ax.scatter(
            [],
            [],
            color="white",
            edgecolors="black",
            marker=markers[i % len(markers)],
            label=f"runtime {runtime}",
        )
    latencies = [r.latency.end_to_end.median_ms for r in points]
    if max(latencies) > 5 * min(latencies):
        ax.set_xscale("log")
    ax.set_xlabel("end-to-end latency per face, median (ms)  [label: threads]")
    split = f"{report.data[0].name}" if report.data else ""
    ax.set_ylabel(f"accuracy on {split} (%)")
    ax.set_title(f"fer-edge bench: {report.environment.cpu}")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    return f"plot written to {path}"
