"""The peer models export with their own preprocessing and score like the published numbers."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

PEERS = Path(__file__).resolve().parents[3] / "shared" / "models" / "peers"
MINI = "fer2013_mini_XCEPTION.102-0.66.hdf5"
TOOL = Path(__file__).resolve().parents[2] / "tools" / "peer_models.py"


def _tool():
    spec = importlib.util.spec_from_file_location("peer_models", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
@pytest.mark.fer2013
def test_mini_xception_exports_and_scores_on_val(tmp_path, fer2013_root):
    if not (PEERS / MINI).is_file():
        pytest.skip("../shared/models/peers not present")
    from fer_edge.classifier import FaceClassifier
    from fer_edge.evaluate import evaluate, load_eval_set

    only_mini = tmp_path / "peers"
    only_mini.mkdir()
    (only_mini / MINI).symlink_to(PEERS / MINI)
    [path] = _tool().export_peers(only_mini, tmp_path / "out")
    classifier = FaceClassifier(path)
    spec = classifier.input_spec
    assert (spec.height, spec.width, spec.scale, spec.offset) == (64, 64, 1 / 127.5, -1.0)
    val = load_eval_set(fer2013_root, "val", classifier.meta, limit=600)
    # Published as 66%; on 600 val faces its own preprocessing must keep it well above 55%.
    assert evaluate(classifier, val).accuracy > 0.55
