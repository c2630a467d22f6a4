"""Write README's result tables from bench result files, so no number is copied by hand.

Each table sits in a Markdown file between ``<!-- table:NAME -->`` and ``<!-- /table:NAME -->``
and is rebuilt from one ``fer-edge bench --json`` report:

- ``labelsets``: every model (and its ``+flip`` row) on every data set of the report (FER+ val
  against the ten-vote majority, FER2013 val against FER2013's labels): accuracy, balanced
  recall, what faces ten people call neutral are said to be (neutral / fear), the time per
  face (crop to probabilities, both invokes of a ``+flip`` row) at the report's first thread
  count and its ratio to a reference model.

Usage::

    python tools/results_tables.py REPORT.json [--reference default_int8] [--update FILE ...]

Without ``--update`` the table is printed.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any


def _pct(value: float | None, digits: int = 1) -> str:
    return "" if value is None else f"{100 * value:.{digits}f}"


def _calm(evaluation: dict[str, Any]) -> str:
    """Return 'neutral / fear' shares of the faces whose label is neutral, or ''."""
    labels = evaluation["labels"]
    if "neutral" not in labels or "fear" not in labels:
        return ""
    row = evaluation["confusion"][labels.index("neutral")]
    total = sum(row)
    if not total:
        return ""
    neutral, fear = (100 * row[labels.index(c)] / total for c in ("neutral", "fear"))
    return f"{neutral:.1f} / {fear:.1f}"


def labelsets_table(report: dict[str, Any], reference: str) -> str:
    """Return the Markdown table of every model on every data set of ``report``."""
    datasets = [d["name"] for d in report["data"]]
    if not datasets:
        raise SystemExit("the report has no accuracy: run fer-edge bench with --data")
    threads = report["config"]["threads"][0]
    invoke = {
        r["model"]: r["latency_ms"]["end_to_end"]["median_ms"]
        for r in report["results"]
        if r["threads"] == threads
    }
    by = {(e["model"], e["data"]): e for e in report["evaluations"]}
    trained_on = {m["name"]: m.get("label_set", "fer2013") for m in report["models"]}
    headers = ["model", "trained on"]
    for name in datasets:
        headers += [f"{name} acc %", f"{name} balanced recall %"]
        if name.startswith("ferplus"):
            headers.append(f"{name} calm faces: neutral / fear %")
    headers += [f"ms per face ({threads} thread)", f"x {reference}"]
    rows = []
    for model in trained_on:
        cells = [model, trained_on[model]]
        for name in datasets:
            ev = by.get((model, name))
            cells += [_pct(ev and ev["accuracy"], 2), _pct(ev and ev["balanced_recall"])]
            if name.startswith("ferplus"):
                cells.append(_calm(ev) if ev else "")
        ms = invoke.get(model)
        base = invoke.get(reference)
        cells += ["" if ms is None else f"{ms:.3f}", f"{ms / base:.2f}x" if ms and base else ""]
        rows.append(cells)
    align = ["---", "---", *["---:"] * (len(headers) - 2)]
    lines = ["| " + " | ".join(headers) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    where = f"{report['environment']['cpu']}, {report['runtimes'][0]['name']} "
    where += f"{report['runtimes'][0]['version']}, {report['created']}"
    return "\n".join(lines) + f"\n\nOne `fer-edge bench` run ({where}).\n"


def update(path: Path, name: str, table: str) -> None:
    """Replace the text between the ``table:NAME`` markers of ``path`` with ``table``."""
    text = path.read_text()
    pattern = re.compile(rf"(<!-- table:{name} -->\n).*?(<!-- /table:{name} -->)", flags=re.DOTALL)
    if not pattern.search(text):
        raise SystemExit(f"{path}: no <!-- table:{name} --> ... <!-- /table:{name} --> markers")
    path.write_text(pattern.sub(lambda m: m.group(1) + table + m.group(2), text))


def main(argv: list[str] | None = None) -> None:
    """Parse the command line; print or update the tables."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("report", type=Path)
    parser.add_argument("--reference", default="default_int8")
    parser.add_argument("--update", type=Path, nargs="*", default=[])
    args = parser.parse_args(argv)
    report = json.loads(args.report.read_text())
    table = labelsets_table(report, args.reference)
    if not args.update:
        sys.stdout.write(table)
    for path in args.update:
        update(path, "labelsets", table)
        print(f"updated {path}")


if __name__ == "__main__":
    main()
