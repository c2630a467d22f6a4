"""Export the peer FER2013 models to float32 TFLite with their own preprocessing, for the bench.

The peers (``../shared/models/peers/``, oarriaga/face_classification, MIT) are Keras HDF5
files: 64x64 gray input scaled to [-1, 1], softmax in the canonical FER2013 order. This writes
``OUT/<name>_float32.tflite`` with that input spec embedded (fer-edge metadata), so
``fer-edge bench`` and ``fer-edge eval`` run them through the same classifier, crops and
evaluation path as fer-edge's own models. The exported files are for side-by-side runs only:
never commit or ship them (their licence and provenance stay with ``../shared``).

Usage::

    python tools/peer_models.py [--peers ../shared/models/peers] [--out runs/peers]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fer_edge.card import ModelCard, gzip_size
from fer_edge.labels import FER2013_CLASSES
from fer_edge.modelmeta import ModelMeta
from fer_edge.preprocess import InputSpec

REPO = Path(__file__).resolve().parents[1]
#: The peers' own preprocessing: ``x / 127.5 - 1`` on 64x64 gray faces.
PEER_SPEC = InputSpec(height=64, width=64, channels=1, scale=1 / 127.5, offset=-1.0)
PEERS = {
    "fer2013_mini_XCEPTION.102-0.66.hdf5": "mini-xception",
    "fer2013_big_XCEPTION.54-0.66.hdf5": "big-xception",
}


def export_peers(peers: Path, out: Path) -> list[Path]:
    """Convert every known peer found in ``peers`` and return the written model paths."""
    from fer_edge.convert.export import to_tflite, write_tflite
    from fer_edge.tfcompat import tf_and_keras

    _, keras = tf_and_keras()
    written = []
    for filename, name in PEERS.items():
        source = peers / filename
        if not source.is_file():
            print(f"skipped {name}: {source} not found", file=sys.stderr)
            continue
        model = keras.models.load_model(source, compile=False)
        meta = ModelMeta(FER2013_CLASSES, PEER_SPEC, name=name, extra={"peer": filename})
        path = write_tflite(out / f"{name}_float32.tflite", to_tflite(model), meta)
        ModelCard(
            meta=meta,
            method="float",
            source=str(source),
            float_model=path.name,
            size_bytes=path.stat().st_size,
            gzip_bytes=gzip_size(path),
            input_dtype="float32",
            output_dtype="float32",
            extra={"peer": "oarriaga/face_classification (MIT); not for shipping"},
        ).write(path.with_suffix(".json"))
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    """Parse flags and export; return the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--peers", type=Path, default=REPO.parent / "shared/models/peers")
    parser.add_argument("--out", type=Path, default=REPO / "runs" / "peers")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    paths = export_peers(args.peers, args.out)
    for path in paths:
        print(f"wrote {path}")
    return 0 if paths else 1


if __name__ == "__main__":
    sys.exit(main())
