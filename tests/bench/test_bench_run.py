"""fer-edge bench end to end on tiny real TFLite models made in the test session."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from fer_edge.bench.config import BenchConfig
from fer_edge.bench.measure import BenchOptions, bench
from fer_edge.bench.render import HEADERS, format_table, to_markdown, write_plot
from fer_edge.bench.results import SCHEMA
from fer_edge.classifier import FaceClassifier
from fer_edge.cli import main
from fer_edge.data import load_dataset
from fer_edge.errors import FerEdgeError
from fer_edge.modelmeta import read_meta

FAST = BenchConfig(name="test", warmup=2, repeats=12, rounds=3, threads=(1,), latency_faces=4)
FAST_FLAGS = ["--warmup", "1", "--repeats", "5", "--threads", "1", "--no-progress"]


@pytest.fixture(scope="module")
def carded(tiny_tflite, tmp_path_factory) -> dict[str, Path]:
    """The tiny models in one folder, with the model cards the convert stage writes."""
    folder = tmp_path_factory.mktemp("carded")
    out = {}
    for kind, method in (("float", "float"), ("int8", "ptq-int8")):
        path = folder / tiny_tflite[kind].name
        shutil.copy(tiny_tflite[kind], path)
        card = {
            "meta": read_meta(path).to_dict(),
            "method": method,
            "source": "tiny.keras",
            "float_model": tiny_tflite["float"].name,
        }
        path.with_suffix(".json").write_text(json.dumps(card))
        out[kind] = path
    return out


@pytest.fixture(scope="module")
def report(carded, tiny_dataset):
    """One bench of the int8 model alone: its float parent must be found and added."""
    config = BenchConfig(**{**FAST.__dict__, "threads": (1, 2)})
    return bench(BenchOptions(models=(carded["int8"],), data=(tiny_dataset,), config=config))


def _agreement_by_hand(carded: dict[str, Path], data: Path, limit: int | None = None) -> float:
    """Top-1 agreement of the tiny int8 model with its float parent, counted independently."""
    from fer_edge.evaluate import load_eval_set

    eval_set = load_eval_set(data, "val", read_meta(carded["int8"]), limit=limit)
    tops = [
        np.argmax(FaceClassifier(carded[k]).probabilities_batch(eval_set.images), axis=1)
        for k in ("float", "int8")
    ]
    return float(np.mean(tops[0] == tops[1]))


def test_int8_is_paired_with_its_float_parent_in_the_same_run(report, carded, tiny_dataset):
    names = [m.name for m in report.models]
    assert names == ["tiny_float", "tiny_int8"]
    assert report.models[0].added and report.models[0].pairing == "reference"
    assert report.models[1].pairing == "card"
    assert {(r.model, r.threads) for r in report.rows} == {(m, t) for m in names for t in (1, 2)}
    for row in report.rows:
        if row.model == "tiny_float":
            assert row.vs_float is None
            continue
        vs = row.vs_float
        assert vs.float_model == "tiny_float"
        size_f, size_q = (carded[k].stat().st_size for k in ("float", "int8"))
        assert vs.size_ratio == pytest.approx(size_q / size_f)
        base = next(r for r in report.rows if r.model == "tiny_float" and r.threads == row.threads)
        assert vs.invoke_ratio == pytest.approx(
            row.latency.invoke.median_ms / base.latency.invoke.median_ms
        )
        assert vs.accuracy_delta == pytest.approx(row.accuracy - base.accuracy)
        assert vs.agreement == pytest.approx(_agreement_by_hand(carded, tiny_dataset))


def test_latency_stats_are_consistent(report):
    for row in report.rows:
        for stats in (row.latency.invoke, row.latency.end_to_end):
            assert stats.count == FAST.repeats
            assert 0 < stats.min_ms <= stats.median_ms <= stats.p90_ms <= stats.max_ms
        assert row.runtime == "litert" and row.runtime_version
        assert row.input_dtype == ("int8" if row.model == "tiny_int8" else "float32")


def test_accuracy_matches_the_classifier_directly(report, carded, tiny_dataset):
    val = load_dataset(tiny_dataset, splits=("val",)).split("val")
    for kind in ("float", "int8"):
        clf = FaceClassifier(carded[kind])
        pred = np.argmax(clf.probabilities_batch(val.images), axis=1)
        ev = next(e for e in report.evaluations if e.model == f"tiny_{kind}")
        assert ev.metrics.count == len(val)
        assert ev.metrics.accuracy == pytest.approx(float(np.mean(pred == val.labels)))
        assert sum(c.support for c in ev.metrics.per_class.values()) == len(val)
    evs = {e.model: e for e in report.evaluations}
    pred_f = np.array(evs["tiny_float"].metrics.confusion).sum(axis=0)
    assert pred_f.sum() == len(val)
    assert evs["tiny_int8"].float_model == "tiny_float"


def test_json_schema(report, tmp_path):
    from fer_edge.bench.render import write_report_json

    data = json.loads(write_report_json(report, tmp_path / "r.json").read_text())
    assert data["schema"] == SCHEMA
    assert set(data) >= {
        "created",
        "environment",
        "config",
        "data",
        "runtimes",
        "models",
        "results",
        "evaluations",
        "skipped",
        "notes",
    }
    assert data["config"]["warmup"] == FAST.warmup and data["config"]["repeats"] == FAST.repeats
    env = data["environment"]
    assert {"cpu", "cores", "numpy", "opencv", "packages"} <= set(env)
    assert data["runtimes"][0]["name"] == "litert"
    row = next(r for r in data["results"] if r["model"] == "tiny_int8")
    assert set(row["latency_ms"]) == {"invoke", "end_to_end"}
    assert set(row["latency_ms"]["invoke"]) >= {"n", "count", "median_ms", "p90_ms", "mean_ms"}
    assert set(row["vs_float"]) >= {
        "float_model",
        "invoke_ratio",
        "end_to_end_ratio",
        "size_ratio",
        "gzip_ratio",
        "accuracy_delta",
        "agreement",
    }
    ev = data["evaluations"][0]
    assert set(ev["per_class"]) == set(ev["labels"])
    assert {"precision", "recall", "f1", "support"} <= set(ev["per_class"]["happy"])
    assert len(ev["confusion"]) == len(ev["labels"])
    assert data["data"][0]["split"] == "val" and data["data"][0]["images"] == 56


def test_markdown_and_terminal_tables(report):
    md = to_markdown(report)
    header = "| " + " | ".join(HEADERS) + " |"
    lines = md.splitlines()
    start = lines.index(header)
    table = lines[start + 2 : start + 2 + len(report.rows)]
    assert all(line.startswith("| tiny_") for line in table)
    assert all(line.count("|") == len(HEADERS) + 1 for line in table)
    per_class = lines[lines.index("### Accuracy and per-class recall % on every data set") + 2]
    cells = per_class.strip("| ").split(" | ")
    assert cells[:3] == ["model", "data", "runtime"] and cells[4] == "balanced recall %"
    assert cells[7:] == list(report.evaluations[0].metrics.labels)
    first = lines[lines.index("### Accuracy and per-class recall % on every data set") + 4]
    assert first.split(" | ")[1] == "fer2013 val"
    assert f"litert {report.runtimes[0]['version']}" in md
    text = format_table(report)
    assert text.splitlines()[0].split()[0] == "model"
    assert report.environment.cpu in text


def test_plot_is_a_png(report, tmp_path):
    pytest.importorskip("matplotlib")
    message = write_plot(report, tmp_path / "plot.png")
    assert "written" in message
    assert (tmp_path / "plot.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_without_data_latency_and_size_still_run(carded):
    report = bench(BenchOptions(models=(carded["float"], carded["int8"]), config=FAST))
    assert report.data == [] and not report.evaluations
    assert all(r.accuracy is None for r in report.rows)
    int8 = next(r for r in report.rows if r.model == "tiny_int8")
    assert int8.vs_float.size_ratio is not None and int8.vs_float.agreement is None
    assert "no accuracy" in write_plot(report, "unused.png")


def test_cli_writes_all_outputs_with_a_baseline(tiny_tflite, tiny_dataset, tmp_path):
    # No cards here: pairing comes from --baseline.
    out = tmp_path / "out"
    result = CliRunner().invoke(
        main,
        [
            "bench",
            str(tiny_tflite["int8"]),
            "--baseline",
            str(tiny_tflite["float"]),
            "--data",
            str(tiny_dataset),
            "--limit",
            "20",
            "--json",
            str(out / "b.json"),
            "--markdown",
            str(out / "b.md"),
            "--plot",
            str(out / "b.png"),
            *FAST_FLAGS,
        ],
    )
    assert result.exit_code == 0, result.output
    data = json.loads((out / "b.json").read_text())
    int8 = next(m for m in data["models"] if m["name"] == "tiny_int8")
    assert int8["pairing"] == "baseline"
    assert data["data"][0]["images"] == 20 and data["data"][0]["total"] == 56
    assert (out / "b.md").read_text().startswith("## fer-edge bench")
    assert "tiny_int8" in result.output and "x invoke" in result.output


def test_accuracy_floor_fails_after_writing_the_report(carded, tiny_dataset, tmp_path):
    result = CliRunner().invoke(
        main,
        [
            "bench",
            str(carded["int8"]),
            "--data",
            str(tiny_dataset),
            "--min-accuracy",
            "1.0",
            "--json",
            str(tmp_path / "r.json"),
            *FAST_FLAGS,
        ],
    )
    assert result.exit_code == 1
    assert "Error: accuracy floor not met: tiny_" in result.output
    assert (tmp_path / "r.json").is_file()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["missing.tflite"], "MODELS: missing.tflite does not exist"),
        (["{float}", "--threads", "0"], "--threads"),
        (["{float}", "--runtime", "onnx"], "--runtime: unknown runtime 'onnx'"),
        (["{float}", "--repeats", "0"], "repeats must be at least 1"),
        (["{float}", "--baseline", "nope.tflite"], "--baseline: nope.tflite does not exist"),
        (["{float}", "--data", "{data}", "--split", "test"], "has no test/ folder"),
        (["{float}", "--source", "x.mp4"], "--source only applies with --pipeline"),
        (["{float}", "--min-accuracy", "2"], "min_accuracy must be within 0-1"),
    ],
)
def test_bad_input_is_one_line(args, message, tiny_tflite, tiny_dataset):
    args = [a.format(float=tiny_tflite["float"], data=tiny_dataset) for a in args]
    # Later flags win, so the fast defaults go first.
    result = CliRunner().invoke(main, ["bench", *FAST_FLAGS, *args])
    assert result.exit_code != 0
    assert message in result.output
    assert "Traceback" not in result.output


def test_no_models_benches_the_bundled_pairs():
    report = bench(BenchOptions(config=FAST))
    names = {f"{n}_{k}" for n in ("default", "fer2013") for k in ("int8", "float32")}
    assert {r.model for r in report.rows} == names
    for name in ("default", "fer2013"):
        int8 = next(r for r in report.rows if r.model == f"{name}_int8")
        assert int8.vs_float is not None and int8.vs_float.float_model == f"{name}_float32"


def test_no_models_and_none_bundled_says_what_to_do(monkeypatch):
    # Stands in for an install without package data (a fork that ships no model).
    monkeypatch.setattr("fer_edge.bench.modelfiles.bundled_models", lambda: [])
    with pytest.raises(FerEdgeError, match="pass .tflite files"):
        bench(BenchOptions(config=FAST))


def test_two_runtimes_side_by_side(carded, tiny_dataset):
    config = BenchConfig(**{**FAST.__dict__, "runtimes": ("litert", "tf")})
    report = bench(BenchOptions(models=(carded["int8"],), data=(tiny_dataset,), config=config))
    assert [r["name"] for r in report.runtimes] == ["litert", "tf"]
    assert {r.runtime for r in report.rows} == {"litert", "tf"}
    # Ratios never mix runtimes: each int8 row is compared with the float row of its runtime.
    acc = {(e.model, e.runtime): e.metrics.accuracy for e in report.evaluations}
    for row in report.rows:
        if row.vs_float:
            assert row.vs_float.accuracy_delta == pytest.approx(
                acc[(row.model, row.runtime)] - acc[("tiny_float", row.runtime)]
            )


def _run_blocked(blocked: list[str], args: list[str]) -> subprocess.CompletedProcess:
    code = (
        "import sys\n"
        f"for m in {blocked!r}: sys.modules[m] = None\n"
        "from fer_edge.cli import main\n"
        "try:\n"
        f"    main({args!r}, standalone_mode=False)\n"
        "except Exception as exc:\n"
        "    print('ERROR', type(exc).__name__, exc)\n"
        "print('TF_IMPORTED', sys.modules.get('tensorflow') is not None)\n"
    )
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


def test_runtime_forced_off_is_skipped_with_its_install_hint(carded):
    # TensorFlow blocked: "litert,tf" benches with litert and reports tf as skipped.
    args = ["bench", str(carded["int8"]), "--runtime", "litert,tf", *FAST_FLAGS]
    out = _run_blocked(["tensorflow"], args)
    assert "ERROR" not in out.stdout, out.stdout + out.stderr
    assert "skipped runtime tf" in out.stdout and "pip install 'fer-edge[train]'" in out.stdout
    assert "tiny_int8" in out.stdout and "litert" in out.stdout


def test_only_runtime_forced_off_is_a_clear_error(carded):
    args = ["bench", str(carded["int8"]), "--runtime", "litert", *FAST_FLAGS]
    out = _run_blocked(["ai_edge_litert"], args)
    assert "ERROR" in out.stdout and "Traceback" not in out.stdout + out.stderr
    assert "--runtime litert: no usable" in out.stdout
    assert "pip install ai-edge-litert" in out.stdout


def test_bench_never_imports_tensorflow_on_the_device_path(carded, tiny_dataset):
    args = ["bench", str(carded["int8"]), "--data", str(tiny_dataset), *FAST_FLAGS]
    out = _run_blocked([], args)
    assert "ERROR" not in out.stdout, out.stdout + out.stderr
    assert "TF_IMPORTED False" in out.stdout


def test_plot_is_skipped_with_a_note_without_matplotlib(report, tmp_path, monkeypatch):
    # The device extra has no matplotlib: the bench must still finish, saying why no plot.
    monkeypatch.setitem(sys.modules, "matplotlib.backends.backend_agg", None)
    message = write_plot(report, tmp_path / "plot.png")
    assert message.startswith("plot skipped: matplotlib is not installed")
    assert not (tmp_path / "plot.png").exists()


@pytest.mark.fer2013
def test_bench_on_fer2013_val_sample(carded, fer2013_root):
    config = BenchConfig(**{**FAST.__dict__, "limit": 300})
    report = bench(BenchOptions(models=(carded["int8"],), data=(fer2013_root,), config=config))
    assert report.data[0].images == 300 and report.data[0].total > 3000
    for ev in report.evaluations:
        assert ev.metrics.count == 300
        assert sum(c.support for c in ev.metrics.per_class.values()) == 300
    int8 = next(e for e in report.evaluations if e.model == "tiny_int8")
    assert int8.agreement == pytest.approx(_agreement_by_hand(carded, fer2013_root, limit=300))


@pytest.mark.parametrize("flag", ["--json", "--markdown", "--plot"])
def test_report_paths_are_checked_before_any_model_runs(tmp_path, flag):
    folder = tmp_path / "reports"
    folder.mkdir()
    result = CliRunner().invoke(main, ["bench", flag, str(folder), "--repeats", "1"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.stderr.strip().splitlines() == [
        f"Error: {flag}: {folder} is a folder; name a file"
    ]
    assert list(folder.iterdir()) == []


def test_bench_thread_counts_are_bounded_before_any_model_runs():
    result = CliRunner().invoke(main, ["bench", "--threads", "1,100000"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.stderr.strip().startswith("Error: --threads: must be 1-")
