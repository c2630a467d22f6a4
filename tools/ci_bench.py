"""CI benchmark: bench the bundled models (or fresh test models) and a small scene; print tables.

Fails only on errors and on accuracy floors that are deterministic (a fixed split scored by a
fixed model); never on speed, since CI machines are noisy.

Usage (from the repository root, with the dev extra installed)::

    python tools/ci_bench.py [--out DIR]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
FER2013 = HERE.parent.parent / "shared" / "data" / "fer2013"
TEST_FACE = HERE.parent / "tests" / "data" / "astronaut_face.png"
#: The scene: the Haar default of old, a full-frame detection every frame (the default before
#: tracking) and the run defaults, side by side in one run; faces stay 20 frames, so the
#: tracker has faces to follow.
SCENE_ARGS = (
    "--limit", "24", "--hold", "20", "--settings", "haar,full,default", "--no-progress",
)  # fmt: skip
CONFIG = HERE.parent / "benchmarks" / "configs" / "ci.json"
# Test models learn the generated gratings almost perfectly; int8 must keep the float
# model's answers. Both are deterministic for a fixed seed, split and model.
SYNTHETIC_FLOORS = ("--min-accuracy", "0.6", "--min-agreement", "0.9")
REAL_FLOORS = ("--min-agreement", "0.8")


def make_test_models(out: Path, data: Path) -> list[Path]:
    """Train a tiny CNN on ``data`` and export float32 and full-int8 TFLite models with cards.

    Args:
        out: folder for the models and their model cards.
        data: a generated folder dataset (see :mod:`fer_edge.synthetic`).

    Returns:
        The float and int8 model paths.
    """
    from fer_edge.card import ModelCard, gzip_size
    from fer_edge.convert.tiny import build_tiny_cnn, export_pair, fit_tiny
    from fer_edge.data import load_dataset
    from fer_edge.modelmeta import ModelMeta

    dataset = load_dataset(data, splits=("train", "val"))
    train = dataset.split("train")
    model = build_tiny_cnn((8, 16), len(dataset.classes), padding="same")
    fit_tiny(model, train.images, train.labels, epochs=15, learning_rate=1e-2)
    meta = ModelMeta(dataset.classes, name="ci-test")
    exported = export_pair(model, out, "ci", train.images[:100], meta)
    paths = []
    for kind, method in (("float", "float"), ("int8", "ptq-int8")):
        path = exported[kind]
        ModelCard(
            meta=meta,
            method=method,
            source="tools/ci_bench.py",
            float_model=exported["float"].name,
            sparsity=0.0,
            size_bytes=path.stat().st_size,
            gzip_bytes=gzip_size(path),
        ).write(path.with_suffix(".json"))
        paths.append(path)
    return paths


def bench(models: list[Path], out: Path, tag: str, extra: tuple[str, ...]) -> None:
    """Run ``fer-edge bench`` as a user would; raise if it fails."""
    command = [
        sys.executable,
        "-m",
        "fer_edge",
        "bench",
        *map(str, models),
        "--config",
        str(CONFIG),
        "--no-progress",
        "--json",
        str(out / f"bench-{tag}.json"),
        "--markdown",
        str(out / f"bench-{tag}.md"),
        *extra,
    ]
    print(f"== bench {tag}: {' '.join(command[3:])}", flush=True)
    subprocess.run(command, check=True)


def scene_faces(out: Path) -> Path:
    """Return FER2013's val split, or (without it) a class folder of the repository's test face."""
    if (FER2013 / "val").is_dir():
        return FER2013 / "val"
    import cv2

    image = cv2.imread(str(TEST_FACE), cv2.IMREAD_GRAYSCALE)
    if image is None:
        raise FileNotFoundError(f"cannot read the test face {TEST_FACE}")
    face = cv2.resize(image, (48, 48))
    for name, image in (("happy", face), ("sad", cv2.flip(face, 1))):
        (out / name).mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(out / name / "0.png"), image)
    return out


def scene(out: Path) -> None:
    """Run ``fer-edge bench --scene`` on a small scene as a user would; raise if it fails."""
    faces = scene_faces(out / "scene-faces")
    command = [sys.executable, "-m", "fer_edge", "bench", "--scene", str(faces), *SCENE_ARGS]
    command += ["--json", str(out / "scene.json"), "--markdown", str(out / "scene.md")]
    print(f"== scene: {' '.join(command[3:])}", flush=True)
    subprocess.run(command, check=True)


def main(argv: list[str] | None = None) -> int:
    """Bench bundled or fresh test models; return the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="keep reports and test models here")
    parser.add_argument(
        "--fresh", action="store_true", help="bench fresh test models even where models ship"
    )
    args = parser.parse_args(argv)

    from fer_edge.bench.modelfiles import bundled_models
    from fer_edge.synthetic import write_folder_dataset

    with tempfile.TemporaryDirectory(prefix="fer-edge-ci-") as tmp:
        out = args.out or Path(tmp)
        out.mkdir(parents=True, exist_ok=True)
        synthetic = write_folder_dataset(out / "synthetic", {"train": 40, "val": 20})
        models = [] if args.fresh else bundled_models()
        bundled = bool(models)
        try:
            if bundled:
                bench(models, out, "bundled", ())
            else:
                models = make_test_models(out / "models", synthetic)
                bench(models, out, "synthetic", ("--data", str(synthetic), *SYNTHETIC_FLOORS))
            if (FER2013 / "val").is_dir():
                # Test models never saw a face: their FER2013 accuracy is chance, so the real
                # floors apply to bundled models only.
                floors = REAL_FLOORS if bundled else ()
                bench(models, out, "fer2013-val", ("--data", str(FER2013), *floors))
            else:
                print(f"== {FER2013} absent: no FER2013 bench", flush=True)
            scene(out)
        except subprocess.CalledProcessError as exc:
            print(f"bench failed with exit code {exc.returncode}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
