"""Issue 27: one writer per run folder, and damaged inputs are one line that names the file.

Real processes hold and lose the lock (SIGKILL); real damaged files; real subprocesses where
stdout or start-up needs a fresh process.
"""

import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest
from click.testing import CliRunner

from fer_edge.card import read_card
from fer_edge.cli import main
from fer_edge.errors import FerEdgeError
from fer_edge.models import resolve_model
from fer_edge.runlock import LOCK_NAME, folder_lock

ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
HOLD = textwrap.dedent(
    """
    import sys, time
    from fer_edge.runlock import folder_lock
    with folder_lock(sys.argv[1], "--out", "fer-edge train"):
        print("held", flush=True)
        time.sleep(60)
    """
)


def test_a_second_writer_is_refused_and_a_dead_ones_lock_is_free(tmp_path):
    run = tmp_path / "R"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(run)], stdout=subprocess.PIPE, text=True, env=ENV
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        with pytest.raises(FerEdgeError) as caught, folder_lock(run, "--out", "fer-edge train"):
            pass
        message = str(caught.value)
        assert message.startswith(f"--out: {run} is in use by another fer-edge train (pid ")
        assert str(holder.pid) in message
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=10)
    # The killed holder left its lock file; the kernel dropped its lock with the process.
    assert (run / LOCK_NAME).exists()
    with folder_lock(run, "--out") as lock:
        assert f"pid {os.getpid()} " in lock.read_text()
        with pytest.raises(FerEdgeError, match="in use"), folder_lock(run, "--out"):
            pass  # also a second open in the same process


@pytest.mark.parametrize(
    "state, fragment",
    [
        ('{"options": ', "is damaged (Expecting value"),
        ("[1, 2]", "is damaged (not a fer-edge train state"),
        ('{"options": {"bogus": 1}, "epoch": 1, "last": "e.keras"}', "is damaged (its options"),
        (b"\xff\xfe\x00", "is damaged"),
    ],
)
def test_a_damaged_state_json_is_one_line(tmp_path, state, fragment):
    run = tmp_path / "R"
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "e.keras").write_bytes(b"x")
    path = run / "state.json"
    path.write_bytes(state if isinstance(state, bytes) else state.encode())
    result = CliRunner().invoke(main, ["train", "--resume", "--out", str(run)])
    assert result.exit_code == 1 and "Traceback" not in result.output
    (line,) = [x for x in result.stderr.splitlines() if x.startswith("Error")]
    assert line.startswith(f"Error: --resume: {path} ") and fragment in line


@pytest.mark.parametrize(
    "change",
    [
        {"float_model": 5},
        {"sparsity": "high"},
        {"size_bytes": True},
        {"meta": {"labels": ["a"], "input": "x"}},
    ],
)
def test_a_malformed_card_is_a_warning_naming_it_not_a_traceback(tmp_path, capsys, change):
    model = resolve_model("fer2013")
    copy = tmp_path / "m.tflite"
    copy.write_bytes(model.read_bytes())
    card = json.loads(model.with_suffix(".json").read_text())
    (tmp_path / "m.json").write_text(json.dumps({**card, **change}))
    assert read_card(copy) is None
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"warning: ignoring the model card {tmp_path / 'm.json'} (")
    (tmp_path / "m.json").write_text("[]")
    assert read_card(copy) is None
    (tmp_path / "m.json").unlink()
    assert read_card(copy) is None and capsys.readouterr().err == ""


def test_extreme_numbers_in_a_jsonl_are_skipped_lines(tmp_path):
    face = {"id": 1, "box": [1, 2, 3, 4], "label": "happy", "scores": {"happy": 0.9, "sad": 0.1}}
    good = {"frame": 0, "t": 0.0, "faces": [face]}
    extreme = [
        {**good, "frame": 10**30},
        {**good, "t": 1e308},
        {**good, "t": float("inf")},
        {**good, "frame": -1},
        {**good, "faces": [{**face, "id": 10**40}]},
        {**good, "faces": [{**face, "scores": {"happy": 1e308, "sad": 0.1}}]},
    ]
    jsonl = tmp_path / "a.jsonl"
    jsonl.write_text("\n".join(json.dumps(r) for r in [good, *extreme]) + "\n")
    result = CliRunner().invoke(main, ["report", str(jsonl), "--out", str(tmp_path / "a.html")])
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output and (tmp_path / "a.html").exists()
    jsonl.write_text("\n".join(json.dumps(r) for r in extreme) + "\n")
    result = CliRunner().invoke(main, ["report", str(jsonl), "--out", str(tmp_path / "b.html")])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert f"Error: {jsonl}: no frame records" in result.stderr


def test_bench_crop_size_is_bounded():
    result = CliRunner().invoke(main, ["bench", "--crop-size", "100000"])
    assert result.exit_code == 1
    assert "Error: --crop-size: crop_size must be at most 2048" in result.stderr


def run_image(extra, **popen):
    face = os.path.join(os.path.dirname(__file__), "..", "data", "astronaut_face.png")
    command = [sys.executable, "-m", "fer_edge", "run", "-m", "fer2013", "-s", face, *extra]
    return subprocess.run(command, stderr=subprocess.PIPE, text=True, env=ENV, timeout=120, **popen)


def test_jsonl_to_a_closed_or_full_stdout_is_one_line(tmp_path):
    closed = run_image(["--jsonl", "-"], stdout=None, preexec_fn=lambda: os.close(1))
    assert closed.returncode == 1 and closed.stderr.strip() == "Error: --jsonl -: stdout is closed"
    with open("/dev/full", "w") as full:
        done = run_image(["--jsonl", "-", "--csv", str(tmp_path / "c.csv")], stdout=full)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    errors = [x for x in done.stderr.splitlines() if x.startswith("Error")]
    assert errors == ["Error: --jsonl -: cannot write to stdout (No space left on device)"]
    assert not (tmp_path / "c.csv").exists()
    assert "XNNPACK" not in done.stderr  # no runtime log lines around the one line


def test_ctrl_c_while_the_cli_imports_is_one_line():
    code = textwrap.dedent(
        """
        import sys
        class Interrupt:  # Ctrl-C arriving while fer_edge.cli is being imported
            def find_spec(self, name, path=None, target=None):
                if name == "fer_edge.cli":
                    raise KeyboardInterrupt
        sys.meta_path.insert(0, Interrupt())
        from fer_edge.entry import main
        main()
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV)
    assert done.returncode == 130 and done.stderr == "interrupted\n"
