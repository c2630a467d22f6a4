"""The output policy (fer_edge.outputs, fer_edge.atomic): no output destroys an input (issue 27).

Real files, hard links, symlinks, FIFOs, device nodes and a real full tmpfs.
"""

import errno
import os
import stat
import subprocess
import sys

import pytest

from fer_edge.atomic import (
    PendingFile,
    atomic_path,
    remove_stale_temporaries,
    write_bytes,
    write_json,
)
from fer_edge.errors import OutputError
from fer_edge.outputs import check_outputs

from ..conftest import symlinked


def test_an_output_that_is_an_input_is_refused_by_path_link_and_symlink(tmp_path):
    source = tmp_path / "v.mp4"
    source.write_bytes(b"video")
    hard = tmp_path / "hard.mp4"
    os.link(source, hard)
    soft = tmp_path / "soft.mp4"
    soft.symlink_to(source)
    for alias in (source, tmp_path / "." / "v.mp4", hard, soft):
        with pytest.raises(OutputError, match="--save: .* is the input --source"):
            check_outputs([("--save", alias)], [("--source", source)])
    assert source.read_bytes() == b"video"


def test_two_outputs_naming_one_file_are_refused(tmp_path):
    with pytest.raises(OutputError, match="--csv and --jsonl both name"):
        check_outputs([("--csv", tmp_path / "x"), ("--jsonl", tmp_path / "." / "x")])
    check_outputs([("--csv", tmp_path / "x.csv"), ("--jsonl", "-"), ("--save", None)])


def test_fifos_sockets_and_devices_are_refused_and_left_alone(tmp_path, full_device):
    fifo = tmp_path / "out.json"
    os.mkfifo(fifo)
    with pytest.raises(OutputError, match="--json: .* is not a regular file"):
        check_outputs([("--json", fifo)])
    with pytest.raises(OutputError, match="not a regular file"):
        write_json(fifo, {"a": 1})  # the writer checks too (a race after the check)
    assert stat.S_ISFIFO(fifo.stat().st_mode)
    device = full_device
    with pytest.raises(OutputError, match="not a regular file"):
        check_outputs([("--json", device)])
    with pytest.raises(OutputError):
        write_json(device, {})
    assert stat.S_ISCHR(device.stat().st_mode)


def test_a_symlinked_output_is_written_through_and_stays_a_link(tmp_path):
    link, target = symlinked(tmp_path, "real", "unit.service", "old")
    write_bytes(link, b"new")
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert target.read_bytes() == b"new"
    assert sorted(p.name for p in target.parent.iterdir()) == ["unit.service"]


def test_a_read_only_output_is_refused_before_work(tmp_path):
    done = tmp_path / "keep.json"
    done.write_text("{}")
    done.chmod(0o444)
    if os.access(done, os.W_OK):
        pytest.skip("root may write anything")
    with pytest.raises(OutputError, match="read-only"):
        check_outputs([("--json", done)])


def test_disk_full_is_one_line_and_keeps_the_old_file(small_tmpfs, fill_disk):
    old = small_tmpfs / "metrics.json"
    old.write_text('{"old": true}\n')
    fill_disk(small_tmpfs, 8192)
    with pytest.raises(OutputError) as caught:
        write_json(old, {"rows": ["x" * 100] * 2000})
    message = str(caught.value)
    assert "\n" not in message and "No space left on device" in message and str(old) in message
    assert old.read_text() == '{"old": true}\n'
    assert sorted(p.name for p in small_tmpfs.iterdir()) == ["filler.bin", "metrics.json"]


def test_write_errors_raised_inside_the_block_become_output_errors(tmp_path):
    target = tmp_path / "a.bin"
    target.write_bytes(b"old")
    with pytest.raises(OutputError, match="Input/output error"), atomic_path(target, "--x"):
        raise OSError(errno.EIO, os.strerror(errno.EIO))
    assert target.read_bytes() == b"old" and os.listdir(tmp_path) == ["a.bin"]


def test_file_and_folder_are_fsynced(tmp_path, monkeypatch):
    synced = []
    real = os.fsync

    def spy(fd):
        synced.append(stat.S_ISDIR(os.fstat(fd).st_mode))
        real(fd)

    monkeypatch.setattr(os, "fsync", spy)
    write_bytes(tmp_path / "x.bin", b"1")
    assert synced == [False, True]  # the file before the rename, then its folder


def test_leftovers_of_dead_writers_are_removed_and_live_ones_kept(tmp_path):
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        text=True,
        capture_output=True,
        check=True,
    )
    live = PendingFile(tmp_path / "run.jsonl")  # a writer still at work: its lock is held
    stale = tmp_path / f".run.{int(dead.stdout)}-abc123.tmp.jsonl"  # nobody holds its lock
    other = tmp_path / f".other.{int(dead.stdout)}-abc123.tmp.jsonl"
    for path in (stale, other):
        path.write_text("partial")
    try:
        assert remove_stale_temporaries(tmp_path / "run.jsonl") == [stale]
        write_bytes(tmp_path / "other.jsonl", b"{}\n")  # a write cleans up after its own name
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted([live.tmp.name, "other.jsonl"])
    finally:
        live.discard()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.jsonl"]
