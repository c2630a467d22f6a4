"""Issue 27: two `fer-edge train --out R` at once: the second gets one line and touches nothing."""

import hashlib

from click.testing import CliRunner

from fer_edge.cli import main
from fer_edge.runlock import LOCK_NAME, folder_lock


def digests(folder):
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in folder.iterdir()
        if p.is_file() and p.name != LOCK_NAME
    }


def test_a_second_trainer_on_a_locked_run_folder_is_one_line(trained_run):
    result, _ = trained_run
    before = digests(result.out)
    with folder_lock(result.out, "--out", "fer-edge train"):  # the first trainer, still running
        res = CliRunner().invoke(main, ["train", "--resume", "--out", str(result.out)])
    assert res.exit_code == 1 and "Traceback" not in res.output
    (line,) = [x for x in res.stderr.splitlines() if x.startswith("Error")]
    assert line.startswith(f"Error: --out: {result.out} is in use by another fer-edge train")
    assert digests(result.out) == before
