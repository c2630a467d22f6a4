"""The stage graph (docs/architecture.md): the import-linter contracts in pyproject.toml hold."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
STAGES = ("train", "convert", "device", "bench", "report")


def contracts() -> list[dict]:
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    with open(ROOT / "pyproject.toml", "rb") as f:
        return tomllib.load(f)["tool"]["importlinter"]["contracts"]


def test_import_contracts_hold():
    pytest.importorskip("importlinter", reason="import-linter is not installed (the dev extra)")
    env = {**os.environ, "PYTHON": sys.executable}
    out = subprocess.run(
        [str(ROOT / "tools" / "importcheck.sh")],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "0 broken" in out.stdout


def test_core_contract_names_every_core_module():
    # The core contract lists its modules one by one (the stages are subpackages of fer_edge):
    # a new module in fer_edge/ must join the list, or it could import a stage unchecked.
    core = next(c for c in contracts() if c["name"] == "core imports no stage")
    on_disk = {"fer_edge"} | {
        f"fer_edge.{p.stem}"
        for p in (ROOT / "fer_edge").iterdir()
        if (p.suffix == ".py" or (p / "__init__.py").is_file()) and p.stem != "__init__"
    }
    assert set(core["source_modules"]) == on_disk
    assert set(core["forbidden_modules"]) == {f"fer_edge.{stage}" for stage in STAGES}


def test_every_stage_has_a_contract():
    sources = {m for c in contracts() for m in c["source_modules"]}
    assert {f"fer_edge.{stage}" for stage in STAGES} <= sources
