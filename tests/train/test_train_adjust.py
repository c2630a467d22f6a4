"""Post-hoc logit adjustment: the shift, folded into model.keras of a finished run."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from click.testing import CliRunner

from fer_edge.cli import main
from fer_edge.errors import FerEdgeError
from fer_edge.train.adjust import logit_shift


def test_shift_lifts_only_classes_under_the_share():
    labels = np.repeat(np.arange(3), [80, 15, 5])
    # Every class (Menon): tau * log(1 / prior).
    np.testing.assert_allclose(logit_shift(labels, 3, 1.0, 1.0), -np.log([0.8, 0.15, 0.05]), 1e-6)
    # The tail only: classes under 10% lifted to 10%.
    np.testing.assert_allclose(logit_shift(labels, 3, 0.5, 0.1), [0, 0, 0.5 * np.log(2)], 1e-6)
    with pytest.raises(FerEdgeError, match="--logit-adjust-below"):
        logit_shift(labels, 3, 1.0, 0.0)


def test_a_finished_run_is_adjusted_anew_with_resume(trained_run, tmp_path):
    from fer_edge.evaluate import load_keras_model

    result, _ = trained_run
    run = tmp_path / "run"
    shutil.copytree(result.out, run)
    before = load_keras_model(run / "model.keras").layers[-1].get_weights()[1]
    out = CliRunner().invoke(
        main,
        [
            "train",
            "--out",
            str(run),
            "--resume",
            "--logit-adjust",
            "1",
            "--logit-adjust-below",
            "1",
        ],
    )
    assert out.exit_code == 0, out.output
    metrics = json.loads((run / "metrics.json").read_text())
    shift = np.array(list(metrics["logit_shift"].values()))
    # The generated data is balanced: every class gets about log(7).
    np.testing.assert_allclose(shift, np.log(7), atol=0.2)
    after = load_keras_model(run / "model.keras").layers[-1].get_weights()[1]
    np.testing.assert_allclose(after - before, shift, atol=1e-5)
    # The checkpoint it came from is left as trained.
    best = load_keras_model(run / "checkpoints" / "best.keras").layers[-1].get_weights()[1]
    np.testing.assert_allclose(best, before, atol=1e-6)
    assert metrics["options"]["logit_adjust"] == 1.0
