"""The systemd unit behind service mode: rendering, quoting, argument checks, systemd's verdict."""

import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from fer_edge.device.service import ServiceSpec, render_unit, service_cmd, systemd_quote
from fer_edge.errors import FerEdgeError

REPO = Path(__file__).resolve().parents[2]
RUN_ARGS = ("-m", "models/edge_int8.tflite", "--source", "picamera", "--serve", "0.0.0.0:8080")


def unit_fields(text):
    fields = {}
    for line in text.splitlines():
        if line and not line.startswith(("#", "[")):
            key, value = line.split("=", 1)
            fields[key] = value
    return fields


def systemd_words(exec_start):
    """Split an ExecStart value back into words (systemd's quoting, then its % and $ escapes)."""
    return [w.replace("%%", "%").replace("$$", "$") for w in shlex.split(exec_start)]


def spec(run_args=RUN_ARGS, **changes):
    values = {
        "run_args": tuple(run_args),
        "user": "pi",
        "workdir": Path("/home/pi/fer edge"),
        "python": Path("/home/pi/fer edge/.venv/bin/python"),
    }
    return ServiceSpec(**{**values, **changes})


def test_bundled_unit_restarts_on_failure_at_boot():
    template = (REPO / "device" / "fer-edge.service").read_text()
    fields = unit_fields(template)
    assert fields["Restart"] == "on-failure" and fields["WantedBy"] == "multi-user.target"
    # `systemctl stop` (SIGTERM) makes `fer-edge run` exit 143: a clean stop, not a failure.
    assert fields["SuccessExitStatus"].split() == ["130", "143"]
    assert fields["KillSignal"] == "SIGTERM" and fields["SupplementaryGroups"] == "video"
    assert {fields["User"], fields["WorkingDirectory"], fields["ExecStart"]} == {
        "@USER@",
        "@WORKDIR@",
        "@EXEC@",
    }


def test_render_fills_the_fields_and_quotes_words():
    args = (*RUN_ARGS, "--jsonl", "/var/log/fer edge/$USER-100%.jsonl", "-s", "faces/*.jpg")
    fields = unit_fields(render_unit(spec(args)))
    assert fields["User"] == "pi" and "@" not in "".join(fields.values())
    assert systemd_words(fields["WorkingDirectory"]) == ["/home/pi/fer edge"]
    words = systemd_words(fields["ExecStart"])
    assert words == ["/home/pi/fer edge/.venv/bin/python", "-m", "fer_edge", "run", *args]
    assert "$$USER-100%%" in fields["ExecStart"]  # no expansion by systemd


@pytest.mark.parametrize(
    ("word", "quoted"),
    [("picamera", "picamera"), ("a b", '"a b"'), ('say "hi"', '"say \\"hi\\""'), ("50%", "50%%")],
)
def test_systemd_quote(word, quoted):
    assert systemd_quote(word) == quoted


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"user": ""}, "--user"),
        ({"workdir": Path("relative")}, "--workdir: systemd needs an absolute path"),
        ({"run_args": ("--jsonl", "a\nb")}, "newline"),
    ],
)
def test_render_rejects_what_a_unit_cannot_hold(changes, fragment):
    with pytest.raises(FerEdgeError, match=fragment):
        render_unit(spec(**changes))


def test_command_writes_the_unit_and_says_what_next(tmp_path):
    out = tmp_path / "system" / "fer-edge.service"
    result = CliRunner().invoke(
        service_cmd,
        ["--user", "pi", "--workdir", str(tmp_path), "--out", str(out), "--", *RUN_ARGS],
    )
    assert result.exit_code == 0, result.output
    assert "systemctl daemon-reload && sudo systemctl enable --now fer-edge" in result.stderr
    fields = unit_fields(out.read_text())
    command = [sys.executable, "-m", "fer_edge", "run", *RUN_ARGS]
    assert systemd_words(fields["ExecStart"]) == command
    assert systemd_words(fields["WorkingDirectory"]) == [str(tmp_path)]


def test_command_prints_to_stdout_by_default():
    result = CliRunner().invoke(service_cmd, ["--", "-s", "0"])
    assert result.exit_code == 0
    assert unit_fields(result.stdout)["ExecStart"].endswith("-m fer_edge run -s 0")


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--", "--bogus"], "run arguments: No such option '--bogus'"),
        (["--", "--serve", "web"], "run arguments: Invalid value for '--serve'"),
        (["--", "--size", "big"], "Invalid value for '--size'"),
        (["--", "--help"], "--help is not a run"),
        (["--out", "/proc/no/such/dir/x.service", "--", "-s", "0"], "--out: cannot write"),
    ],
)
def test_command_errors_are_one_line(args, fragment):
    result = CliRunner().invoke(service_cmd, args)
    assert result.exit_code == 1 and "Traceback" not in result.output
    (error,) = [line for line in result.stderr.splitlines() if line.startswith("Error")]
    assert fragment in error


def test_systemd_accepts_the_unit(tmp_path):
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze not installed")
    unit = tmp_path / "fer-edge.service"
    args = (*RUN_ARGS, "--jsonl", "a b%.jsonl")
    unit.write_text(render_unit(ServiceSpec(args, "root", tmp_path, Path(sys.executable))))
    done = subprocess.run(
        [analyze, "verify", "--man=no", str(unit)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "fer-edge.service" not in done.stderr, done.stderr  # no complaint about our unit
