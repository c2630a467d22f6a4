"""The long robustness checks of issue 16, run as their scripts in tools/ (slow).

``tools/soak.py``: over 20,000 frames through ``fer-edge run`` with JSONL and the live
view; RSS may grow at most 5% after warm-up. ``tools/faults.py``: ``kill -9`` of ``run``,
``bench``, ``train`` and ``convert`` at random moments; every output holds nothing, the old
file or a complete one (a long run's JSONL and CSV: or whole lines up to the last seconds).
Each takes a few minutes on 2 cores.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

TOOLS = Path(__file__).resolve().parents[2] / "tools"


def script(name: str, *args: object, timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(TOOLS / name), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.slow
def test_soak_past_the_timing_sample_bound_keeps_rss_flat(tmp_path):
    done = script("soak.py", "--out", tmp_path, "--frames", 22_000, timeout=900)
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    report = json.loads((tmp_path / "soak.json").read_text())
    assert report["frames"] == report["jsonl_lines"] == 22_000
    assert report["growth"] <= 0.05
    assert max(frames for frames, _ in report["samples"]) > 20_000
    assert report["encoded"] > 0  # the viewer really watched


@pytest.mark.slow
def test_kill_minus_nine_leaves_only_absent_old_or_complete_outputs(tmp_path):
    done = script("faults.py", "--out", tmp_path, "--seed", 1, timeout=1800)
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    tallies = {t["command"]: t for t in json.loads((tmp_path / "faults.json").read_text())}
    assert set(tallies) == {"run", "run-long", "bench", "train", "convert"}
    for tally in tallies.values():
        assert tally["failures"] == []
        assert tally["rounds"] >= 2 and tally["killed"] >= 1
        assert all("INCOMPLETE" not in counts for counts in tally["outcomes"].values())
