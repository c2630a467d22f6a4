"""The summary table a conversion prints."""

from __future__ import annotations

from collections.abc import Sequence

from fer_edge.convert.results import ConvertReport, ExportedModel

HEADER = ("model", "method", "size", "gzip", "sparsity", "val acc", "agree", "time")


def _kb(n: int) -> str:
    return f"{n / 1024:.1f} KB"


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def rows(models: Sequence[ExportedModel]) -> list[tuple[str, ...]]:
    """Return one row of strings per model, in :data:`HEADER` order."""
    return [
        (
            m.path.name,
            m.method,
            _kb(m.size_bytes),
            _kb(m.gzip_bytes),
            _pct(m.sparsity),
            _pct(m.val_accuracy),
            _pct(m.agreement),
            f"{m.seconds:.0f} s",
        )
        for m in models
    ]


def format_table(models: Sequence[ExportedModel]) -> str:
    """Return the summary table: size, gzip size, sparsity, val accuracy, float agreement.

    Text columns are left-aligned, numbers right-aligned; ``agree`` is the share of val faces
    with the same top-1 class as the float32 model.
    """
    table = [HEADER, *rows(models)]
    widths = [max(len(row[i]) for row in table) for i in range(len(HEADER))]

    def line(row: Sequence[str]) -> str:
        cells = [
            cell.ljust(w) if i < 2 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        ]
        return "  ".join(cells).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(HEADER), rule, *(line(r) for r in table[1:])])


def summary(report: ConvertReport) -> str:
    """Return the table plus one line on what the accuracies were measured on."""
    where = "val carved from train" if report.val_carved else "val"
    return (
        f"{format_table(report.models)}\n"
        f"accuracy and agreement on {report.val_images} {where} faces through the TFLite "
        f"interpreter; {report.out}/ written in {report.seconds:.0f} s"
    )
