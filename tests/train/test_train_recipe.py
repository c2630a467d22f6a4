"""``fer-edge train --recipe``: a named recipe fills the flags the command line leaves alone."""

from __future__ import annotations

import json

from click.testing import CliRunner

from fer_edge.cli import main
from fer_edge.train.recipes import RECIPES


def test_recipe_fills_flags_and_the_command_line_wins(tiny_dataset, tmp_path):
    out = tmp_path / "run"
    args = ["train", "--data", str(tiny_dataset), "--out", str(out), "--recipe", "fer2013"]
    result = CliRunner().invoke(main, [*args, "--epochs", "1", "--batch-size", "32"])
    assert result.exit_code == 0, result.output
    options = json.loads((out / "state.json").read_text())["options"]
    recipe = RECIPES["fer2013"].flags
    assert options["model"] == recipe["model"] == "edge"
    assert options["model_options"] == {}
    assert options["learning_rate"] == recipe["learning_rate"]
    assert options["label_smoothing"] == recipe["label_smoothing"]
    assert options["augment"]["erase"] == recipe["erase"]
    # Given on the command line, so not the recipe's 50.
    assert options["epochs"] == 1 and options["batch_size"] == 32
    assert json.loads((out / "metrics.json").read_text())["epochs_run"] == 1


def test_recipe_with_resume_is_a_one_line_error(tmp_path):
    result = CliRunner().invoke(
        main, ["train", "--out", str(tmp_path), "--resume", "--recipe", "fer2013"]
    )
    assert result.exit_code != 0
    assert "--recipe" in result.output and "Traceback" not in result.output


def test_recipe_model_options_reach_the_builder(tiny_dataset, tmp_path, monkeypatch):
    from fer_edge.train.recipes import Recipe

    flags = {"model": "edge", "model_option": ("width=0.25",), "epochs": 1, "shift": 0.2}
    monkeypatch.setitem(RECIPES, "fer2013", Recipe("test", flags))
    out = tmp_path / "run"
    args = ["train", "--data", str(tiny_dataset), "--out", str(out), "--recipe", "fer2013"]
    result = CliRunner().invoke(main, [*args, "--batch-size", "32", "--zoom", "0.15"])
    assert result.exit_code == 0, result.output
    options = json.loads((out / "state.json").read_text())["options"]
    assert options["model_options"] == {"width": 0.25} and options["epochs"] == 1
    # Augmentation geometry from the recipe and the command line; the rest keeps its default.
    augment = options["augment"]
    assert (augment["shift"], augment["zoom"], augment["rotation"]) == (0.2, 0.15, 10.0)
    assert json.loads((out / "metrics.json").read_text())["params"] < 100_000


def test_every_recipe_flag_is_a_train_option():
    from fer_edge.train.cli import train_cmd

    names = {p.name for p in train_cmd.params}
    for name, recipe in RECIPES.items():
        assert set(recipe.flags) <= names, name
    assert RECIPES["ferplus"].flags["targets"] == "votes"
