"""A library error names its option by its Python name; the CLI alone spells it as a flag."""

import click
import pytest
from click.testing import CliRunner

from fer_edge.cli import main
from fer_edge.clitypes import error_message, option_flag
from fer_edge.errors import FerEdgeError


@click.command()
@click.option("--model", "pipeline_model")
@click.option("--crop-size", type=int)
def _cmd(pipeline_model, crop_size):
    raise FerEdgeError("must be a file", option="pipeline_model")


def test_option_flag_follows_the_command_then_spells_the_name():
    assert option_flag("pipeline_model", _cmd) == "--model"
    assert option_flag("crop_size", _cmd) == "--crop-size"
    assert option_flag("latency_faces", _cmd) == "--latency-faces"
    assert option_flag("max_frames") == "--max-frames"


@pytest.mark.parametrize(
    ("error", "text"),
    [
        (FerEdgeError("no such file"), "no such file"),
        (FerEdgeError("must be at least 1", option="crop_size"), "--crop-size: must be at least 1"),
    ],
)
def test_error_message(error, text):
    assert error_message(error, _cmd) == text
    assert str(error) == text.split(": ", 1)[-1]  # the library's text keeps no flag


def test_bench_prints_a_config_field_as_its_flag():
    result = CliRunner().invoke(main, ["bench", "--crop-size", "100000"])
    assert result.exit_code == 1
    assert "Error: --crop-size: crop_size must be at most" in result.output
