"""The emulated Raspberry Pi check in tools/pi_emulation.

Fast: the JSONL comparison, the verdicts, and the scripts' skip and error paths. Slow and
opt-in (FER_EDGE_PI_EMULATION=1): the whole check, which downloads about 300 MB once into
~/.cache/fer-edge-pi and runs fer-edge under qemu; CI runs it as its own step instead.
"""

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fer_edge.detect import Box
from fer_edge.device.sinks import JsonlSink
from fer_edge.faces import FaceResult, Frame, FrameResult
from fer_edge.labels import FER2013_CLASSES

TOOLS = Path(__file__).resolve().parents[2] / "tools" / "pi_emulation"
STEP = 1 / 256
SKIP_CODE = 75
KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"


def load(name):
    """Import a module of tools/pi_emulation by name (compare.py imports agreement so)."""
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, TOOLS / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


agreement = load("agreement")
compare = load("compare")
DEFAULTS = agreement.DEFAULTS


def face(box, probs):
    probs = np.asarray(probs, dtype=np.float32)
    return FaceResult.from_probs(Box(*box), probs, FER2013_CLASSES).to_dict()


def probs_for(label, margin=0.3):
    """Probabilities with ``label`` on top by ``margin``."""
    p = np.full(7, (1 - margin) / 7)
    p[label] += margin
    return p


def run_of(labels, shift=0):
    """One face per frame, the given top labels, boxes moved right by ``shift`` px."""
    return [
        {"frame": i, "t": i / 10, "faces": [face([10 + i + shift, 20, 100, 100], probs_for(k))]}
        for i, k in enumerate(labels)
    ]


def test_identical_runs_agree():
    run = run_of([0, 3, 5, 6])
    result = agreement.compare_runs(run, run, STEP)
    assert result.ok
    assert (result.paired, result.label_matches, result.max_prob_diff) == (4, 4, 0.0)
    assert result.frames == (4, 4) and result.faces == (4, 4)


def test_probabilities_may_differ_by_one_int8_step_but_not_two():
    reference = run_of([3])
    for steps, ok in ((1, True), (2, False)):
        candidate = json.loads(json.dumps(reference))
        scores = candidate[0]["faces"][0]["scores"]
        scores["sad"] = round(scores["sad"] + steps * STEP, 4)
        result = agreement.compare_runs(reference, candidate, STEP)
        assert result.ok is ok
        assert result.max_prob_diff == pytest.approx(steps * STEP, abs=1e-4)
    assert "probabilities differ" in result.problems[0]


def test_label_agreement_needs_95_percent():
    labels = [i % 7 for i in range(20)]
    one_flip = labels[:-1] + [(labels[-1] + 1) % 7]
    two_flips = [(k + 1) % 7 for k in labels[:2]] + labels[2:]
    assert agreement.compare_runs(run_of(labels), run_of(one_flip), 1.0).label_agreement == 0.95
    assert agreement.compare_runs(run_of(labels), run_of(one_flip), 1.0).ok
    result = agreement.compare_runs(run_of(labels), run_of(two_flips), 1.0)
    assert result.label_matches == 18
    assert not result.ok and "labels agree on 90.0%" in result.problems[0]


def test_shifted_boxes_are_reported_and_still_paired():
    result = agreement.compare_runs(run_of([1, 2]), run_of([1, 2], shift=3), STEP)
    assert (result.box_mismatches, result.max_box_shift, result.paired) == (2, 3, 2)
    assert result.min_iou == pytest.approx(97 / 103)
    assert result.problems == ("boxes differ in 2 frames (up to 3 px, allowed 0)",)


def test_default_pipeline_tolerance_allows_2_px_and_24_steps_but_no_more():
    reference = run_of([3, 4, 5, 6] * 5)
    assert agreement.compare_runs(reference, run_of([3, 4, 5, 6] * 5, 2), STEP, DEFAULTS).ok
    shifted = agreement.compare_runs(reference, run_of([3, 4, 5, 6] * 5, 3), STEP, DEFAULTS)
    assert shifted.problems == ("boxes differ in 20 frames (up to 3 px, allowed 2)",)
    for steps, ok in ((24, True), (25, False)):
        candidate = json.loads(json.dumps(reference))
        scores = candidate[1]["faces"][0]["scores"]
        scores["sad"] = round(scores["sad"] + steps * STEP, 4)
        result = agreement.compare_runs(reference, candidate, STEP, DEFAULTS)
        assert result.ok is ok, result.problems
    assert result.problems == ("probabilities differ by up to 0.0977, allowed 0.0939",)


def test_default_pipeline_tolerance_fails_many_small_differences():
    """Every face two steps off: within the largest difference allowed, not the mean."""
    reference = run_of([3, 4, 5, 6] * 5)
    candidate = json.loads(json.dumps(reference))
    for record in candidate:
        for name, p in record["faces"][0]["scores"].items():
            record["faces"][0]["scores"][name] = round(p + 2 * STEP, 4)
    result = agreement.compare_runs(reference, candidate, STEP, DEFAULTS)
    assert result.mean_prob_diff == pytest.approx(2 * STEP, abs=1e-4)
    assert result.problems == ("probabilities differ by 0.0078 on average, allowed 0.0040",)


def test_faces_pair_by_box_not_by_order():
    two = [face([10, 20, 100, 100], probs_for(1)), face([200, 20, 100, 100], probs_for(5))]
    reference = [{"frame": 0, "t": 0.0, "faces": two}]
    swapped = [{"frame": 0, "t": 0.0, "faces": two[::-1]}]
    result = agreement.compare_runs(reference, swapped, STEP)
    assert result.ok and (result.paired, result.label_matches) == (2, 2)


def test_a_face_found_on_one_platform_only_fails_even_when_the_rest_agree():
    reference = run_of([1, 2, 3, 4])
    candidate = json.loads(json.dumps(reference))
    candidate[2]["faces"].append(face([300, 200, 80, 80], probs_for(6)))
    result = agreement.compare_runs(reference, candidate, STEP, DEFAULTS)
    assert result.box_mismatches == 1
    assert "5 faces (4 paired), reference has 4" in result.problems


def test_missing_frames_and_faces_fail():
    reference = run_of([1, 2, 3])
    candidate = run_of([1, 2, 3])[:2]
    candidate[1]["faces"] = []
    result = agreement.compare_runs(reference, candidate, STEP)
    assert result.frames == (3, 2) and result.faces == (3, 1)
    assert any("2 frames, reference has 3" in p for p in result.problems)
    assert any("1 faces (1 paired), reference has 3" in p for p in result.problems)


def test_reads_what_the_jsonl_sink_writes(tmp_path):
    path = tmp_path / "run.jsonl"
    sink = JsonlSink(path)
    frame = np.zeros((48, 48, 3), np.uint8)
    for i, label in enumerate([0, 4]):
        result = FaceResult.from_probs(Box(i, 2, 30, 30), probs_for(label), FER2013_CLASSES)
        sink.write(FrameResult(Frame(i, i / 10, frame), [result]))
    sink.write(FrameResult(Frame(2, 0.2, frame), []))
    sink.close()
    records = agreement.read_jsonl(path)
    assert [r["frame"] for r in records] == [0, 1, 2]
    assert [f["label"] for r in records for f in r["faces"]] == ["angry", "sad"]
    assert agreement.compare_runs(records, records, STEP).ok


def test_bad_jsonl_line_is_named(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"frame": 0, "faces": []}\n{"frame": 1, "faces": [\n')
    with pytest.raises(ValueError, match=r"bad\.jsonl:2: not JSON"):
        agreement.read_jsonl(path)
    path.write_text('{"frame": 0}\n')
    with pytest.raises(ValueError, match=r":1: expected an object with 'frame' and 'faces'"):
        agreement.read_jsonl(path)


def platform_run(returncode=0, runtime="tflite_runtime 2.14.0", comparison=None):
    summary = {"runtime": runtime} if returncode == 0 else None
    run = compare.PlatformRun("pi", "tflite", returncode, 1.0, summary, comparison=comparison)
    assert run.name == "pi-tflite-defaults"
    if returncode:
        run.error = "Segmentation fault"
    return run


@pytest.mark.parametrize(("code", "name"), [(-11, "SIGSEGV"), (139, "SIGSEGV"), (132, "SIGILL")])
def test_crash_signal_from_exit_status(code, name):
    assert platform_run(code).crash_signal == name


def test_verdicts():
    good = agreement.compare_runs(run_of([1]), run_of([1]), STEP)
    bad = agreement.compare_runs(run_of([1]), run_of([2]), STEP)
    assert compare.verdict(platform_run(comparison=good), False) == "pass"
    assert compare.verdict(platform_run(-11), True) == "crashed with SIGSEGV (allowed)"
    assert compare.verdict(platform_run(-11), False).startswith("FAIL: SIGSEGV")
    assert compare.verdict(platform_run(1), True).startswith("FAIL: exit 1")
    wrong_runtime = compare.verdict(platform_run(runtime="litert 2.3.0"), False)
    assert wrong_runtime == "FAIL: --runtime auto picked litert, expected tflite_runtime"
    assert compare.verdict(platform_run(comparison=bad), False).startswith("FAIL: labels agree")


def test_table_keeps_columns_for_a_crashed_run():
    run = platform_run(-11)
    text = compare.table([run], {run.name: compare.verdict(run, True)})
    header, rule, row = text.splitlines()
    assert header.count("|") == rule.count("|") == row.count("|") == 14
    assert "crashed with SIGSEGV (allowed)" in row


@pytest.fixture(scope="module")
def default_runs(tmp_path_factory):
    """The defaults check's video run through x86 fer-edge run: as is, and with each change."""
    inputs = load("inputs")
    out = tmp_path_factory.mktemp("defaults")
    video = out / "defaults.avi"
    inputs.make_default_video(video, None, frames=20)
    variants = {"defaults": (), "crop both": ("--crop", "both"), "no tta": ("--tta", "none")}
    runs = {}
    for name, extra in variants.items():
        jsonl = out / f"{name.replace(' ', '-')}.jsonl"
        command = [sys.executable, "-m", "fer_edge", "run", "-m", "default", "-s", str(video)]
        subprocess.run([*command, *extra, "--jsonl", str(jsonl)], check=True, capture_output=True)
        runs[name] = agreement.read_jsonl(jsonl)
    return runs


def test_default_pipeline_tolerance_catches_a_changed_crop_or_tta(default_runs):
    step = compare.output_step(compare.DEFAULT_MODEL)
    reference = default_runs["defaults"]
    assert sum(len(r["faces"]) for r in reference) >= 20  # the detector finds the faces
    assert agreement.compare_runs(reference, reference, step, DEFAULTS).ok
    for name in ("crop both", "no tta"):
        result = agreement.compare_runs(reference, default_runs[name], step, DEFAULTS)
        assert result.box_mismatches == 0  # same detector: only the classification moved
        assert result.problems and all(
            p.startswith("probabilities differ") for p in result.problems
        )


def script(name, *args, cache, **env):
    """Run a tools/pi_emulation script with its cache in ``cache``."""
    full_env = {
        **os.environ,
        "FER_EDGE_PI_CACHE": str(cache),
        "FER_EDGE_HOST_PYTHON": sys.executable,
    }
    return subprocess.run(
        [str(TOOLS / name), *args],
        env={**full_env, **env},
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_install_skips_when_pypi_is_unreachable(tmp_path):
    proc = script(
        "install.sh",
        "tflite",
        cache=tmp_path,
        PIP_INDEX_URL="http://127.0.0.1:9/simple/",
        PIP_RETRIES="0",
        PIP_TIMEOUT="2",
    )
    assert proc.returncode == SKIP_CODE, proc.stderr
    assert "skipped: PyPI (http://127.0.0.1:9/simple/) not reachable" in proc.stderr


@pytest.mark.skipif(
    shutil.which("apt-get") is None or not Path(KEYRING).is_file(),
    reason="needs a Debian host (apt-get and the Debian archive keyring)",
)
def test_build_root_skips_when_the_mirror_is_unreachable(tmp_path):
    proc = script("build-root.sh", cache=tmp_path, FER_EDGE_PI_DEBIAN_MIRROR="http://127.0.0.1:9")
    assert proc.returncode == SKIP_CODE, proc.stderr
    assert "skipped: Debian mirror http://127.0.0.1:9 not reachable" in proc.stderr


def test_pi_run_names_the_missing_step(tmp_path):
    proc = script("pi-run.sh", "tflite", "fer-edge", "--version", cache=tmp_path)
    assert proc.returncode == 1
    assert proc.stderr.strip() == (
        "pi-emulation: error: profile 'tflite' is not installed: "
        "run tools/pi_emulation/install.sh tflite"
    )
    proc = script("pi-run.sh", "tflite", cache=tmp_path)
    assert proc.returncode == 1 and "usage: pi-run.sh" in proc.stderr


@pytest.mark.slow
@pytest.mark.skipif(
    os.environ.get("FER_EDGE_PI_EMULATION") != "1",
    reason="set FER_EDGE_PI_EMULATION=1 to run fer-edge on the emulated Pi (CI: its own step)",
)
def test_fer_edge_on_the_emulated_pi_matches_x86(tmp_path):
    out = tmp_path / "report"
    env = {"FER_EDGE_HOST_PYTHON": sys.executable, **os.environ}
    proc = subprocess.run(
        [str(TOOLS / "check.sh"), "--out", str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=3600,
    )
    if proc.returncode == SKIP_CODE:
        pytest.skip(proc.stderr.strip().splitlines()[-1])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads((out / "report.json").read_text())
    emulated = [r for r in report["runs"] if r["platform"] == "pi"]
    assert {(r["check"], r["profile"]) for r in emulated} == {
        (check, profile) for check in ("defaults", "strict") for profile in ("litert", "tflite")
    }
    for run in emulated:
        if run["check"] == "defaults" and run["summary"]:
            assert run["summary"]["detector"] == "yunet"
            assert run["summary"]["model"] == "default_int8.tflite"
        assert run["verdict"] in ("pass", "crashed with SIGSEGV (allowed)")
        if run["comparison"]:
            assert run["comparison"]["ok"]
            assert run["comparison"]["frames"][0] == run["comparison"]["frames"][1] > 0
            assert run["comparison"]["label_agreement"] >= 0.95
