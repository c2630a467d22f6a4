import signal
import subprocess
import sys
import threading
import time

import pytest
from click.testing import CliRunner

from fer_edge import __version__
from fer_edge.cli import COMMANDS, main


def test_version():
    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0 and __version__ in result.output


@pytest.mark.parametrize("command", list(COMMANDS))
def test_every_command_has_help(command):
    result = CliRunner().invoke(main, [command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage: main " + command in result.output or f"{command} [OPTIONS]" in result.output


def test_top_level_help_lists_commands():
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    for command in COMMANDS:
        assert command in result.output


def test_console_script_runs():
    out = subprocess.run(
        [sys.executable, "-m", "fer_edge", "--version"], capture_output=True, text=True
    )
    assert out.returncode == 0 and __version__ in out.stdout


def test_device_side_imports_no_tensorflow():
    code = (
        "import sys\n"
        "sys.modules['tensorflow'] = None\n"
        "sys.modules['tf_keras'] = None\n"
        "import fer_edge.device, fer_edge.cli, fer_edge.classifier, fer_edge.data\n"
        "from fer_edge.cli import main\n"
        "main.get_command(None, 'run')\n"
        "main.get_command(None, 'bench')\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_sigterm_stops_a_command_with_a_message_and_no_partial_output(
    tiny_tflite, tiny_dataset, tmp_path
):
    # Python's default SIGTERM kills at once (no message, no cleanup); the CLI turns it into
    # the Ctrl-C path: "interrupted", exit 143, no report written.
    out = tmp_path / "out"
    out.mkdir()
    cmd = [sys.executable, "-m", "fer_edge", "bench", str(tiny_tflite["int8"])]
    cmd += ["--data", str(tiny_dataset), "--repeats", "10000000", "--json", str(out / "b.json")]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen: list[str] = []
    timing = threading.Event()

    def read() -> None:
        for line in proc.stderr:
            seen.append(line)
            if "XNNPACK" in line:  # LiteRT logs it when the bench loads the model
                timing.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    timing.wait(timeout=90)
    time.sleep(1.0)
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=120)
    reader.join(timeout=10)
    err = "".join(seen)
    assert proc.returncode == 143, err[-2000:]
    assert "interrupted" in err and "Traceback" not in err
    assert list(out.iterdir()) == []
