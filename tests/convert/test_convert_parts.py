"""fer-edge convert building blocks that need no training: schedule, table, Edge TPU step."""

from __future__ import annotations

import json
import os
import shutil
import stat
from pathlib import Path

import numpy as np
import pytest

from fer_edge.convert.conversion import percent_tag
from fer_edge.convert.edgetpu import (
    HOW_TO,
    compile_for_edgetpu,
    find_compiler,
    flatbuffer_only,
)
from fer_edge.convert.prune import schedule_for
from fer_edge.convert.report import format_table
from fer_edge.convert.results import ExportedModel
from fer_edge.convert.sparsity import kernel_sparsity
from fer_edge.convert.tflite_info import inspect_tflite
from fer_edge.errors import FerEdgeError
from fer_edge.modelmeta import read_meta
from fer_edge.runtime import load_runtime


@pytest.mark.parametrize("total", [1, 2, 3, 7, 30, 299, 1200, 5000])
def test_prune_schedule_reaches_the_target_within_training(total):
    schedule = schedule_for(0.5, total)
    assert 1 <= schedule.end_step <= total
    # tfmot updates masks when (step - begin) % frequency == 0: the last update must land on
    # end_step, where the polynomial schedule is at the target.
    assert schedule.end_step % schedule.frequency == 0
    assert schedule.end_step <= max(1, 2 * total // 3)
    assert 1 <= schedule.frequency <= 100


def test_percent_tag():
    assert [percent_tag(s) for s in (0.5, 0.75, 0.333, 0.9)] == ["50", "75", "33", "90"]


def test_inspect_reads_dtypes_and_kernels(tiny_tflite):
    float_info = inspect_tflite(tiny_tflite["float"].read_bytes())
    int8_info = inspect_tflite(tiny_tflite["int8"].read_bytes())
    assert (float_info.input_dtype, int8_info.input_dtype) == ("float32", "int8")
    assert not float_info.is_full_integer and int8_info.is_full_integer
    # The conftest CNN: one conv (8x3x3x1) and one dense layer (7x8).
    shapes = sorted((k.op, k.values.shape) for k in int8_info.kernels)
    assert shapes == [("CONV_2D", (8, 3, 3, 1)), ("FULLY_CONNECTED", (7, 8))]
    assert {k.values.dtype.name for k in int8_info.kernels} == {"int8"}
    # Recounted by hand: both kernels are of the pruned kinds, 72 + 56 weights.
    values = np.concatenate([k.values.ravel() for k in int8_info.kernels])
    sparsity = kernel_sparsity(int8_info.kernels)
    assert sparsity.weights == values.size == 128
    assert sparsity.pruned == pytest.approx(np.mean(values == 0))
    assert sparsity.pruned < 0.2  # never pruned: int8 rounding zeroes only a few weights


def _row(path: Path, method: str, **kw) -> ExportedModel:
    values = dict(
        path=path,
        card=path.with_suffix(".json"),
        method=method,
        float_model="m_float32.tflite",
        size_bytes=2048,
        gzip_bytes=1024,
        sparsity=0.5,
        sparsity_all_kernels=0.45,
        target_sparsity=0.5,
        val_accuracy=0.6543,
        float_val_accuracy=0.66,
        agreement=0.9512,
        input_dtype="int8",
        output_dtype="int8",
        fine_tune=None,
        seconds=12.3,
    )
    values.update(kw)
    return ExportedModel(**values)


def test_table_aligns_columns():
    table = format_table(
        [
            _row(Path("m_float32.tflite"), "float", size_bytes=1_500_000, agreement=1.0),
            _row(Path("m_pqat50_int8.tflite"), "pqat-int8"),
        ]
    )
    lines = table.splitlines()
    assert lines[0].split() == [
        "model",
        "method",
        "size",
        "gzip",
        "sparsity",
        "val",
        "acc",
        "agree",
        "time",
    ]
    assert len({len(line) for line in lines}) == 1  # right-aligned numbers end together
    assert "1464.8 KB" in lines[2] and "100.0%" in lines[2]
    assert lines[3].split()[:2] == ["m_pqat50_int8.tflite", "pqat-int8"]
    assert "2.0 KB" in lines[3] and "65.4%" in lines[3] and "95.1%" in lines[3]


# --- Edge TPU ----------------------------------------------------------------------------


def test_flatbuffer_only_drops_the_metadata(tiny_tflite, tmp_path):
    raw = tiny_tflite["int8"].read_bytes()
    bare = flatbuffer_only(raw)
    assert 0 < len(bare) < len(raw)
    assert flatbuffer_only(bare) == bare
    path = tmp_path / "bare.tflite"
    path.write_bytes(bare)
    with pytest.raises(FerEdgeError, match="no fer-edge metadata"):
        read_meta(path)
    load_runtime().interpreter(model_content=bare)  # still a complete model


def test_missing_compiler_explains_how_to_get_one(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    assert find_compiler() is None
    assert "x86-64" in HOW_TO and "apt-get install edgetpu-compiler" in HOW_TO


def _stand_in_compiler(folder: Path, body: str) -> str:
    """A shell script with edgetpu_compiler's interface; the real one exists only for x86
    Debian hosts with Coral's apt repository, so only our side of the exchange is tested."""
    script = folder / "edgetpu_compiler"
    script.write_text("#!/bin/sh\n" + body)
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return str(script)


@pytest.mark.skipif(shutil.which("sh") is None, reason="needs a POSIX shell")
def test_compiled_model_keeps_metadata_and_log(tiny_tflite, tmp_path):
    model = tmp_path / "m_qat_int8.tflite"
    shutil.copy(tiny_tflite["int8"], model)
    # Arguments: -s -o OUTDIR MODEL; writes OUTDIR/<stem>_edgetpu.tflite and .log.
    compiler = _stand_in_compiler(
        tmp_path,
        'out="$3"; src="$4"; stem=$(basename "$src" .tflite)\n'
        'echo "Edge TPU Compiler version 16.0 (stand-in)"\n'
        'cp "$src" "$out/${stem}_edgetpu.tflite"\n'
        'echo "Operations mapped: all" > "$out/${stem}_edgetpu.log"\n',
    )
    result = compile_for_edgetpu(model, compiler)
    assert result.ok, result.message
    assert result.model == tmp_path / "m_qat_int8_edgetpu.tflite"
    # The compiler saw the bare flatbuffer; the metadata was embedded again afterwards.
    assert read_meta(result.model).extra["compiled_for"] == "edgetpu"
    assert read_meta(result.model).labels == read_meta(model).labels
    log = result.log.read_text()
    assert "version 16.0" in log and "Operations mapped: all" in log
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".edgetpu")]


@pytest.mark.skipif(shutil.which("sh") is None, reason="needs a POSIX shell")
def test_compiler_failure_keeps_the_log_and_writes_no_model(tiny_tflite, tmp_path):
    model = tmp_path / "m_ptq_int8.tflite"
    shutil.copy(tiny_tflite["int8"], model)
    compiler = _stand_in_compiler(tmp_path, 'echo "Model not quantized" >&2\nexit 1\n')
    result = compile_for_edgetpu(model, compiler)
    assert not result.ok and result.model is None
    assert "exit 1" in result.message
    assert "Model not quantized" in result.log.read_text()
    assert not (tmp_path / "m_ptq_int8_edgetpu.tflite").exists()
    assert "\n" not in result.message  # one line for the CLI


@pytest.mark.skipif(shutil.which("sh") is None, reason="needs a POSIX shell")
def test_convert_compiles_int8_outputs_when_asked(tmp_path, monkeypatch):
    from fer_edge.convert import ConvertOptions, convert
    from fer_edge.labels import FER2013_CLASSES
    from fer_edge.modelmeta import ModelMeta, add_to_zip_model, sidecar_path
    from fer_edge.synthetic import write_folder_dataset
    from fer_edge.train.models import build_model

    model_path = tmp_path / "runs" / "mlp" / "model.keras"
    model_path.parent.mkdir(parents=True)
    build_model("mlp").save(model_path)
    add_to_zip_model(model_path, ModelMeta(FER2013_CLASSES))
    data = write_folder_dataset(tmp_path / "data", {"train": 2, "val": 1})
    options = ConvertOptions(
        model=model_path,
        data=data,
        out=tmp_path / "out",
        ptq=("int8",),
        edgetpu=True,
        representative=4,
    )

    system_path = os.environ.get("PATH", "")
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    report = convert(options)
    assert report.edgetpu == [] and report.edgetpu_help == HOW_TO

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    _stand_in_compiler(
        bin_dir,
        'stem=$(basename "$4" .tflite); cp "$4" "$3/${stem}_edgetpu.tflite"; echo compiled\n',
    )
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{system_path}")
    report = convert(options)
    # No metadata name: files are named after the run folder. Only the int8 model compiles.
    assert [r.source.name for r in report.edgetpu] == ["mlp_ptq_int8.tflite"]
    compiled = report.edgetpu[0].model
    assert compiled is not None and compiled.name == "mlp_ptq_int8_edgetpu.tflite"
    card = json.loads(sidecar_path(compiled).read_text())
    assert card["compiled_from"] == "mlp_ptq_int8.tflite"
    assert card["float_model"] == "mlp_float32.tflite"
    assert card["size_bytes"] == compiled.stat().st_size
    assert card["edgetpu_log"] == "mlp_ptq_int8_edgetpu.log"
