"""Compiling int8 models for the Coral Edge TPU with ``edgetpu_compiler``, when it is present."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import tempfile
import zipfile
from pathlib import Path

from fer_edge.atomic import write_bytes, write_text
from fer_edge.convert.results import EdgeTpuResult
from fer_edge.modelmeta import ModelMeta, embed_in_tflite, read_meta

COMPILER = "edgetpu_compiler"
#: Seconds before a hung compiler is given up on.
TIMEOUT = 600

HOW_TO = (
    "edgetpu_compiler is not on PATH; it runs only on x86-64 Linux (Debian/Ubuntu). On such a "
    "host: echo 'deb https://packages.cloud.google.com/apt coral-edgetpu-stable main' | "
    "sudo tee /etc/apt/sources.list.d/coral-edgetpu.list; curl "
    "https://packages.cloud.google.com/apt/doc/apt-key.gpg | sudo apt-key add -; "
    "sudo apt-get update && sudo apt-get install edgetpu-compiler; then run "
    "'fer-edge convert ... --edgetpu' there, or 'edgetpu_compiler -s -o OUT MODEL_int8.tflite' "
    "on the int8 models (keep MODEL_int8.json beside the output: the compiler drops the "
    "embedded metadata)."
)


def find_compiler() -> str | None:
    """Return the path of ``edgetpu_compiler`` on PATH, or ``None``."""
    return shutil.which(COMPILER)


def flatbuffer_only(data: bytes) -> bytes:
    """Return a ``.tflite`` file's bytes without the metadata archive appended to it."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = archive.infolist()
            start = min((m.header_offset for m in members), default=len(data))
    except zipfile.BadZipFile:
        return data
    return data[:start]


def compile_for_edgetpu(model_path: str | os.PathLike[str], compiler: str) -> EdgeTpuResult:
    """Compile one int8 ``.tflite`` into ``<stem>_edgetpu.tflite`` beside it.

    The compiler sees the bare flatbuffer (it would drop the appended metadata anyway); the
    metadata is embedded again into its output. Its console output and its own log are kept
    in ``<stem>_edgetpu.log``. Outputs are written atomically.

    Args:
        model_path: a full-integer model written by ``fer-edge convert``.
        compiler: the compiler executable.
    """
    source = Path(model_path)
    out_dir = source.parent
    target = out_dir / f"{source.stem}_edgetpu.tflite"
    log_path = out_dir / f"{source.stem}_edgetpu.log"
    with tempfile.TemporaryDirectory(prefix=".edgetpu.", dir=out_dir) as tmp:
        bare = Path(tmp) / source.name
        bare.write_bytes(flatbuffer_only(source.read_bytes()))
        command = [compiler, "-s", "-o", tmp, str(bare)]
        try:
            run = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT)
            console, code = run.stdout + run.stderr, run.returncode
        except (OSError, subprocess.TimeoutExpired) as exc:
            console, code = f"{type(exc).__name__}: {exc}\n", -1
        own_log = Path(tmp) / f"{source.stem}_edgetpu.log"
        text = f"$ {' '.join(command)}\n{console}"
        if own_log.is_file():
            text += f"\n--- {own_log.name} ---\n{own_log.read_text(errors='replace')}"
        write_text(log_path, text)
        produced = Path(tmp) / target.name
        if code != 0 or not produced.is_file():
            return EdgeTpuResult(
                source,
                None,
                log_path,
                False,
                f"{COMPILER} failed on {source.name} (exit {code}); see {log_path}",
            )
        meta = read_meta(source)
        meta = ModelMeta(
            meta.labels, meta.input, meta.name, {**meta.extra, "compiled_for": "edgetpu"}
        )
        write_bytes(target, embed_in_tflite(produced.read_bytes(), meta))
    return EdgeTpuResult(source, target, log_path, True, f"compiled {target.name}")
