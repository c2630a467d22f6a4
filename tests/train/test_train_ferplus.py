"""Training on FER+ votes: --targets votes, sample and joint, through the real trainer."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from click.testing import CliRunner

from fer_edge.cli import main
from fer_edge.data import load_dataset
from fer_edge.labels import FER2013_CLASSES
from fer_edge.synthetic import write_ferplus_dataset, write_folder_dataset


@pytest.fixture(scope="module")
def tiny_ferplus(tmp_path_factory):
    return write_ferplus_dataset(
        tmp_path_factory.mktemp("fp") / "ferplus", {"train": 40, "val": 10}
    )


def _train(args, tmp_path):
    return CliRunner().invoke(
        main,
        [
            "train",
            "--model",
            "edge",
            "--model-option",
            "width=0.25",
            "--epochs",
            "2",
            "--batch-size",
            "32",
            "--out",
            str(tmp_path / "run"),
            *args,
        ],
    )


@pytest.mark.parametrize("targets", ["votes", "sample"])
def test_train_on_votes_writes_a_ferplus_run(targets, tiny_ferplus, tmp_path):
    result = _train(
        ["--data", str(tiny_ferplus), "--targets", targets, "--class-weight", "0.5"], tmp_path
    )
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["options"]["targets"] == targets
    assert metrics["data"]["label_set"] == "ferplus"
    assert metrics["data"]["unscored"]["val"] == {"no majority": 28}
    # Scored on the majority of the val faces that have one.
    assert metrics["metrics"]["count"] == 42
    assert 0.0 <= metrics["metrics"]["balanced_recall"] <= 1.0


def test_joint_targets_mix_votes_with_the_fer2013_label(tiny_ferplus, tmp_path):
    from fer_edge.train.joint import joint_targets

    dataset = load_dataset(tiny_ferplus, splits=("train",))
    train = dataset.split("train")
    # A FER2013 copy of every FER+ face, labelled one class over from its FER+ majority.
    fer2013 = tmp_path / "fer2013"
    for name, label in zip(train.names, train.labels, strict=True):
        other = FER2013_CLASSES[(int(label) + 1) % 7]
        (fer2013 / "train" / other).mkdir(parents=True, exist_ok=True)
        shutil.copy(tiny_ferplus / "FER2013Train" / str(name), fer2013 / "train" / other / name)
    (targets,) = joint_targets(dataset, [train], str(fer2013), 0.25)
    own = np.eye(7)[(train.labels + 1) % 7]
    np.testing.assert_allclose(targets, 0.75 * train.votes + 0.25 * own, atol=1e-6)
    result = _train(
        ["--data", str(tiny_ferplus), "--targets", "joint", "--joint-labels", str(fer2013)],
        tmp_path,
    )
    assert result.exit_code == 0, result.output


def test_vote_targets_need_ferplus_data(tmp_path):
    root = write_folder_dataset(tmp_path / "fer", {"train": 6, "val": 2})
    result = _train(["--data", str(root), "--targets", "votes"], tmp_path)
    assert result.exit_code != 0
    assert "--targets votes: needs FER+ vote counts" in result.output
    assert "Traceback" not in result.output


def test_joint_without_fer2013_labels_is_one_line(tiny_ferplus, tmp_path):
    result = _train(
        ["--data", str(tiny_ferplus), "--targets", "joint", "--joint-labels", str(tmp_path)],
        tmp_path,
    )
    assert result.exit_code != 0
    assert "--joint-labels:" in result.output and "has no train/ folder" in result.output


def test_ferplus_model_converts_to_int8_and_evaluates_on_both_label_sets(tiny_ferplus, tmp_path):
    """train --targets votes -> convert --int8 on FER+ -> eval and bench against FER+."""
    from fer_edge.bench.config import BenchConfig
    from fer_edge.bench.measure import BenchOptions, bench

    result = _train(["--data", str(tiny_ferplus), "--targets", "votes"], tmp_path)
    assert result.exit_code == 0, result.output
    out = tmp_path / "models"
    result = CliRunner().invoke(
        main,
        [
            "convert",
            str(tmp_path / "run" / "model.keras"),
            "--data",
            str(tiny_ferplus),
            "--out",
            str(out),
            "--int8",
            "--epochs",
            "1",
            "--class-weight",
            "0.5",
        ],
    )
    assert result.exit_code == 0, result.output
    int8 = next(out.glob("*_qat_int8.tflite"))
    result = CliRunner().invoke(main, ["eval", str(int8), "--data", str(tiny_ferplus)])
    assert result.exit_code == 0, result.output
    assert "on ferplus val; 28 faces without a usable majority not scored" in result.output
    # One bench run, two label sets: the FER+ folder and a FER2013-style folder.
    fer = write_folder_dataset(tmp_path / "fer", {"train": 4, "val": 4})
    config = BenchConfig(warmup=1, repeats=3, rounds=1, threads=(1,), tta=("none",))
    report = bench(BenchOptions(models=(int8,), data=(tiny_ferplus, fer), config=config))
    assert [d.name for d in report.data] == ["ferplus val", "fer2013 val"]
    assert [d.unscored for d in report.data] == [28, 0]
    # The int8 model and its float parent (paired through the card), on both sets.
    pairs = {(e.model, e.data) for e in report.evaluations}
    assert pairs == {
        (m, d) for m in (int8.stem, "edge_float32") for d in ("ferplus val", "fer2013 val")
    }
    # The main table's accuracy is the first data set's.
    first = next(e for e in report.evaluations if (e.model, e.data) == (int8.stem, "ferplus val"))
    row = next(r for r in report.rows if r.model == int8.stem)
    assert row.accuracy == first.metrics.accuracy
