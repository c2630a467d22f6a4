"""README's result tables are what tools/results_tables.py makes of the result file they cite."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ..conftest import load_tool

REPO = Path(__file__).resolve().parents[2]


def _tables_tool():
    return load_tool("results_tables")


@pytest.mark.parametrize("page", ["README.md", "benchmarks/README.md"])
def test_labelsets_table_is_generated_from_its_result_file(page):
    import json

    text = (REPO / page).read_text()
    table = re.search(r"<!-- table:labelsets -->\n(.*?)<!-- /table:labelsets -->", text, re.S)
    assert table, f"{page} has no labelsets table"
    # The newest labelsets report is the one the tables come from.
    report = sorted((REPO / "benchmarks" / "results").glob("*-labelsets.json"))[-1]
    expected = _tables_tool().labelsets_table(json.loads(report.read_text()), "default_int8")
    assert table.group(1) == expected


def test_update_replaces_only_between_the_markers(tmp_path):
    tool = _tables_tool()
    page = tmp_path / "page.md"
    page.write_text("before\n<!-- table:labelsets -->\nold\n<!-- /table:labelsets -->\nafter\n")
    tool.update(page, "labelsets", "new\n")
    assert page.read_text() == (
        "before\n<!-- table:labelsets -->\nnew\n<!-- /table:labelsets -->\nafter\n"
    )
