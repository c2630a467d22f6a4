"""The CI benchmark script end to end: fresh test models, bench with floors, real data."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_ci_script_benches_fresh_models_within_its_floors(tmp_path):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    out = subprocess.run(
        [sys.executable, str(REPO / "tools" / "ci_bench.py"), "--fresh", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    report = json.loads((tmp_path / "bench-synthetic.json").read_text())
    assert report["config"]["name"] == "ci"
    int8 = next(r for r in report["results"] if r["input_dtype"] == "int8")
    assert int8["vs_float"]["float_model"] == "ci_float"
    assert int8["accuracy"] >= 0.6 and int8["vs_float"]["agreement"] >= 0.9
    assert "x invoke" in out.stdout  # the table was printed
    scene = json.loads((tmp_path / "scene.json").read_text())
    assert [s["setting"] for s in scene["scores"]] == ["haar", "full", "default"]
    assert all(s["shown"] > 0 and s["frames"] > 0 for s in scene["scores"])
    full, tracked = scene["scores"][1:]
    assert tracked["passes"][1] > 0 and tracked["passes"][0] < full["passes"][0]
    assert tracked["macs_per_frame"] < 0.5 * full["macs_per_frame"]
    assert "right on found" in out.stdout
