"""Issue 27: no command destroys what the user gave it, and a failed write keeps old files.

Real CLI runs (in process, or a subprocess where a closed pipe needs a real one), real files,
hard links, symlinks, FIFOs, a real full tmpfs; the tiny real TFLite model.
"""

import hashlib
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from ..conftest import run_cli, symlinked

cli = run_cli


def error_line(result):
    assert result.exit_code != 0, result.output
    lines = [x for x in result.stderr.splitlines() if x.strip()]
    errors = [x for x in lines if x.startswith("Error")]
    assert len(errors) == 1, result.stderr
    return errors[0]


def digest(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@pytest.fixture
def video(tmp_path, two_face_video) -> Path:
    path = tmp_path / "v.mp4"
    shutil.copy(two_face_video, path)
    return path


@pytest.mark.parametrize("flag", ["--save", "--jsonl", "--csv", "--report", "--summary"])
def test_run_never_writes_over_its_source(tmp_path, video, tiny_tflite, flag):
    before = digest(video)
    link = tmp_path / "alias.mp4"
    os.link(video, link)
    for target in (video, link):
        result = cli("run", "-m", tiny_tflite["int8"], "-s", video, flag, target)
        line = error_line(result)
        assert line.startswith(f"Error: {flag}: ") and "is the input --source" in line
    assert digest(video) == before


def test_run_refuses_two_outputs_in_one_file_and_the_model(tmp_path, video, tiny_tflite):
    both = tmp_path / "x"
    result = cli("run", "-m", tiny_tflite["int8"], "-s", video, "--csv", both, "--jsonl", both)
    assert "both name" in error_line(result) and not both.exists()
    model = tmp_path / "m.tflite"
    shutil.copy(tiny_tflite["int8"], model)
    before = digest(model)
    result = cli("run", "-m", model, "-s", video, "--jsonl", model)
    assert "is the input --model" in error_line(result)
    assert digest(model) == before


def test_an_image_of_the_folder_being_read_is_not_an_output(tmp_path, tiny_tflite, astronaut_face):
    import cv2

    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("a.png", "b.png"):
        cv2.imwrite(str(folder / name), astronaut_face)
    before = digest(folder / "b.png")
    result = cli("run", "-m", tiny_tflite["int8"], "-s", folder, "--csv", folder / "b.png")
    assert "is the input --source" in error_line(result)
    assert digest(folder / "b.png") == before


def test_batch_out_dir_in_the_source_folder_keeps_later_sources(tmp_path, video, tiny_tflite):
    # b's annotated video would be the later source "b.annotated.mp4".
    shutil.copy(video, tmp_path / "b.mp4")
    shutil.copy(video, tmp_path / "b.annotated.mp4")
    before = digest(tmp_path / "b.annotated.mp4")
    result = cli(
        "run", "-m", tiny_tflite["int8"], "-s", tmp_path / "b.mp4", "-s",
        tmp_path / "b.annotated.mp4", "--out-dir", tmp_path, "--save-videos",
    )  # fmt: skip
    assert "is the input --source" in error_line(result)
    assert digest(tmp_path / "b.annotated.mp4") == before
    assert not (tmp_path / "b.jsonl").exists()


def test_report_eval_bench_refuse_to_overwrite_their_inputs(tmp_path, video, tiny_tflite):
    jsonl = tmp_path / "a.jsonl"
    assert cli("run", "-m", tiny_tflite["int8"], "-s", video, "--jsonl", jsonl).exit_code == 0
    before = digest(jsonl)
    assert "is the input JSONL" in error_line(cli("report", jsonl, "--out", jsonl))
    assert digest(jsonl) == before
    model = tmp_path / "m.tflite"
    shutil.copy(tiny_tflite["int8"], model)
    before = digest(model)
    line = error_line(cli("eval", model, "--data", tmp_path / "nodata", "--json", model))
    assert line.startswith("Error: --json: ") and "is the input MODEL" in line
    line = error_line(cli("bench", model, "--json", model))
    assert line.startswith("Error: --json: ") and "is the input MODELS" in line
    line = error_line(cli("bench", tmp_path, "--markdown", model))
    assert "is the input MODELS" in line
    assert digest(model) == before


def test_eval_refuses_a_device_node_before_evaluating(tmp_path, full_device):
    node = full_device
    # The data does not exist: the output is refused before anything is loaded.
    line = error_line(cli("eval", "m.keras", "--data", tmp_path / "none", "--json", node))
    assert "not a regular file" in line
    assert stat.S_ISCHR(node.stat().st_mode)


def test_service_writes_through_a_symlink_and_refuses_a_fifo(tmp_path):
    link, real = symlinked(tmp_path, "units", "fer-edge.service", "old unit")
    assert cli("service", "--out", link, "--", "--source", "0").exit_code == 0
    assert link.is_symlink() and "ExecStart=" in real.read_text()
    fifo = tmp_path / "pipe.service"
    os.mkfifo(fifo)
    assert "not a regular file" in error_line(cli("service", "--out", fifo, "--", "-s", "0"))
    assert stat.S_ISFIFO(fifo.stat().st_mode)


def test_a_full_disk_on_jsonl_keeps_the_old_csv_and_jsonl(
    tmp_path, video, tiny_tflite, small_tmpfs, fill_disk
):
    csv_path = tmp_path / "faces.csv"
    csv_path.write_text("old csv\n")
    jsonl = small_tmpfs / "run.jsonl"
    jsonl.write_text('{"old": 1}\n')
    fill_disk(small_tmpfs, 2048)  # a few lines fit, the whole run does not
    result = cli(
        "run", "-m", tiny_tflite["int8"], "-s", video, "--csv", csv_path, "--jsonl", jsonl,
        "--report", tmp_path / "r.html",
    )  # fmt: skip
    line = error_line(result)
    assert line.startswith("Error: --jsonl: cannot write") and "No space left" in line
    assert csv_path.read_text() == "old csv\n" and jsonl.read_text() == '{"old": 1}\n'
    assert not (tmp_path / "r.html").exists()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []
    assert sorted(p.name for p in small_tmpfs.iterdir()) == ["filler.bin", "run.jsonl"]


def test_a_full_disk_on_save_is_an_error_and_keeps_the_old_video(
    tmp_path, video, tiny_tflite, small_tmpfs, fill_disk
):
    old = small_tmpfs / "out.mp4"
    old.write_bytes(b"old video")
    jsonl = tmp_path / "run.jsonl"
    jsonl.write_text("old\n")
    fill_disk(small_tmpfs, 16384)  # the first frames fit, the rest are lost
    result = cli("run", "-m", tiny_tflite["int8"], "-s", video, "--save", old, "--jsonl", jsonl)
    line = error_line(result)
    assert line.startswith("Error: --save: ") and "lost frames" in line
    assert old.read_bytes() == b"old video" and jsonl.read_text() == "old\n"
    assert sorted(p.name for p in small_tmpfs.iterdir()) == ["filler.bin", "out.mp4"]


def test_stdout_closed_by_head_is_one_line_and_keeps_the_csv(tmp_path, video, tiny_tflite):
    csv_path = tmp_path / "faces.csv"
    csv_path.write_text("old csv\n")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    command = [sys.executable, "-m", "fer_edge", "run", "-m", str(tiny_tflite["int8"])]
    command += ["-s", str(video), "--jsonl", "-", "--csv", str(csv_path), "--max-fps", "20"]
    proc = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True
    )
    assert proc.stdout is not None and proc.stdout.readline().startswith("{")
    proc.stdout.close()  # what `| head -1` does
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 1, stderr
    errors = [x for x in stderr.splitlines() if x.startswith("Error")]
    assert errors == ["Error: --jsonl -: cannot write to stdout (Broken pipe)"], stderr
    assert "Traceback" not in stderr and "Exception ignored" not in stderr
    assert csv_path.read_text() == "old csv\n"
