"""Copy a converted model pair into the package as the bundled default.

``fer-edge convert`` writes ``PREFIX_qat_int8.tflite`` and ``PREFIX_float32.tflite`` with
model cards. This copies them to ``fer_edge/models/default_int8.tflite`` and
``default_float32.tflite``, rewriting the cards and the embedded metadata so the pair still
points at each other under the new names.

Usage::

    python tools/bundle_default_model.py runs/ship PREFIX
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from fer_edge.atomic import write_bytes, write_json
from fer_edge.bench.models import gzip_size
from fer_edge.modelmeta import ModelMeta, embed_in_tflite, strip_meta

PACKAGE_MODELS = Path(__file__).resolve().parents[1] / "fer_edge" / "models"
RENAMES = {"qat_int8": "default_int8", "float32": "default_float32"}


def bundle(folder: Path, prefix: str, dest: Path = PACKAGE_MODELS) -> list[Path]:
    """Copy ``PREFIX_{qat_int8,float32}`` from ``folder`` into ``dest`` under default names."""
    written = []
    for suffix, new_stem in RENAMES.items():
        src = folder / f"{prefix}_{suffix}.tflite"
        card = json.loads(src.with_suffix(".json").read_text())
        card["float_model"] = "default_float32.tflite"
        card["bundled_from"] = src.name
        meta = ModelMeta.from_dict(card["meta"])
        extra = {**meta.extra, "float_model": "default_float32.tflite"}
        meta = ModelMeta(meta.labels, meta.input, meta.name, extra)
        card["meta"] = meta.to_dict()
        model = embed_in_tflite(strip_meta(src.read_bytes()), meta)
        target = dest / f"{new_stem}.tflite"
        write_bytes(target, model)
        card["size_bytes"] = len(model)
        card["gzip_bytes"] = gzip_size(model)
        write_json(target.with_suffix(".json"), card)
        written.append(target)
    return written


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    for path in bundle(Path(sys.argv[1]), sys.argv[2]):
        print(f"wrote {path}")
