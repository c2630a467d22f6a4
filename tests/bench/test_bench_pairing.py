"""Pairing int8 models with their float parent, and benchmark configs."""

import json
from pathlib import Path

import pytest

from fer_edge.bench.config import load_config, parse_int_list, parse_name_list
from fer_edge.bench.modelfiles import display_names, expand_model_paths
from fer_edge.bench.pairing import pair_models
from fer_edge.card import read_card
from fer_edge.errors import FerEdgeError

REPO = Path(__file__).resolve().parents[2]


def _model(folder: Path, name: str, card: dict | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.tflite"
    path.write_bytes(b"TFL3")
    if card is not None:
        path.with_suffix(".json").write_text(json.dumps(card))
    return path


def test_card_float_model_names_the_parent(tmp_path):
    f = _model(tmp_path, "edge_float", {"method": "float", "float_model": "edge_float.tflite"})
    q = _model(tmp_path, "edge_int8", {"method": "ptq-int8", "float_model": "edge_float.tflite"})
    pf, pq = pair_models([f, q])
    assert (pf.parent, pf.reason) == (None, "reference")
    assert (pq.parent, pq.reason) == (f, "card")


def test_parent_is_found_beside_the_model_when_not_listed(tmp_path):
    f = _model(tmp_path, "edge_float", {"method": "float"})
    q = _model(tmp_path, "edge_qat", {"method": "qat-int8", "float_model": "edge_float.tflite"})
    assert pair_models([q])[0].parent == f


def test_missing_named_parent_falls_back_to_baseline_with_a_note(tmp_path):
    base = _model(tmp_path / "other", "base")
    q = _model(tmp_path, "edge_int8", {"method": "ptq-int8", "float_model": "gone.tflite"})
    (pairing,) = pair_models([q], baseline=base)
    assert (pairing.parent, pairing.reason) == (base, "baseline")
    assert "gone.tflite" in pairing.note


def test_no_cards_pairs_only_with_baseline(tmp_path):
    a = _model(tmp_path, "a")
    b = _model(tmp_path, "b")
    assert [p.parent for p in pair_models([a, b])] == [None, None]
    pa, pb = pair_models([a, b], baseline=a)
    assert (pa.parent, pa.reason) == (None, "reference")
    assert (pb.parent, pb.reason) == (a, "baseline")


def test_same_source_float_card_is_the_last_resort(tmp_path):
    f = _model(tmp_path / "f", "net_float", {"method": "float", "source": "runs/net.keras"})
    _model(tmp_path / "f", "other_float", {"method": "float", "source": "runs/other.keras"})
    q = _model(tmp_path / "q", "net_int8", {"method": "pqat-int8", "source": "runs/net.keras"})
    assert pair_models([q, f])[0].parent == f
    # Without the float model among the candidates there is nothing to find.
    assert pair_models([q])[0].parent is None


def test_unreadable_card_counts_as_no_card(tmp_path):
    q = _model(tmp_path, "q")
    q.with_suffix(".json").write_text("{not json")
    assert read_card(q) is None
    assert pair_models([q])[0].reason == "unpaired"


def test_expand_model_paths(tmp_path):
    a = _model(tmp_path / "m", "a")
    b = _model(tmp_path / "m", "b")
    assert expand_model_paths([tmp_path / "m", a]) == [a, b]
    with pytest.raises(FerEdgeError, match="does not exist"):
        expand_model_paths([tmp_path / "nope.tflite"])
    keras = tmp_path / "model.keras"
    keras.write_bytes(b"x")
    with pytest.raises(FerEdgeError, match="not a .tflite"):
        expand_model_paths([keras])
    (tmp_path / "empty").mkdir()
    with pytest.raises(FerEdgeError, match="holds no .tflite"):
        expand_model_paths([tmp_path / "empty"])


def test_display_names_stay_unique():
    paths = [Path("a/x.tflite"), Path("b/x.tflite"), Path("b/y.tflite")]
    assert display_names(paths) == ["a/x", "b/x", "y"]


def test_shipped_configs_load_by_name_and_path():
    from fer_edge.bench.config import config_names

    names = config_names()
    assert {"default", "ci", "fer2013-val", "pi4"} <= set(names)
    for name in names:
        by_name = load_config(name)
        assert by_name.name == name
        assert by_name == load_config(REPO / "benchmarks" / "configs" / f"{name}.json")
    with pytest.raises(FerEdgeError, match=r"no configuration named 'pi5'.*pi4"):
        load_config("pi5")


def test_config_errors_name_the_file_and_key(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"warmup": 1, "repeat": 3}))
    with pytest.raises(FerEdgeError, match=r"bad.json: unknown key repeat"):
        load_config(bad)
    bad.write_text(json.dumps({"threads": ["two"]}))
    with pytest.raises(FerEdgeError, match="'threads' must be a list of integers"):
        load_config(bad)
    bad.write_text(json.dumps({"repeats": 0}))
    with pytest.raises(FerEdgeError, match="repeats must be at least 1"):
        load_config(bad)
    bad.write_text("[1, 2]")
    with pytest.raises(FerEdgeError, match="JSON object"):
        load_config(bad)
    with pytest.raises(FerEdgeError, match="does not exist"):
        load_config(tmp_path / "missing.json")


def test_flag_lists():
    assert parse_int_list("1, 2,4", "--threads") == (1, 2, 4)
    assert parse_name_list("litert, TF,litert") == ("litert", "tf")
    for bad in ("", "0", "1,x"):
        with pytest.raises(FerEdgeError, match="--threads"):
            parse_int_list(bad, "--threads")
