"""Shared fixtures: generated datasets, tiny real TFLite models, the shared FER2013 path."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = Path(__file__).resolve().parents[1]


def run_cli(*args):
    """Run ``fer-edge ARGS`` in-process; a traceback in the output fails the test."""
    from click.testing import CliRunner

    from fer_edge.cli import main

    result = CliRunner().invoke(main, [str(a) for a in args])
    assert "Traceback" not in result.output, result.output
    return result


@pytest.fixture
def full_device(tmp_path) -> Path:
    """A character device like /dev/full in ``tmp_path`` (needs root: skipped otherwise)."""
    import stat

    node = tmp_path / "full"
    try:
        os.mknod(node, stat.S_IFCHR | 0o666, os.makedev(1, 7))
    except PermissionError:
        pytest.skip("mknod needs root")
    return node


def symlinked(tmp_path: Path, folder: str, name: str, text: str) -> tuple[Path, Path]:
    """Make ``tmp_path/folder/name`` holding ``text`` and a link ``tmp_path/name`` to it.

    Returns:
        ``(link, target)``.
    """
    target = tmp_path / folder / name
    target.parent.mkdir()
    target.write_text(text)
    link = tmp_path / name
    link.symlink_to(target)
    return link, target


def load_tool(name: str):
    """Import the script ``tools/NAME.py`` (tools are scripts, not package modules)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"tools_{name}", REPO / "tools" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # Registered first: dataclasses resolve a tool's string annotations through sys.modules.
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


SHARED = REPO.parent / "shared"
FER2013 = SHARED / "data" / "fer2013"
FERPLUS = SHARED / "data" / "ferplus"
YUNET = SHARED / "models" / "face_detection_yunet_2026may.onnx"


@pytest.fixture(scope="session")
def fer2013_root() -> Path:
    if not (FER2013 / "train").is_dir():
        pytest.skip("../shared/data/fer2013 not present")
    return FER2013


@pytest.fixture(scope="session")
def ferplus_root() -> Path:
    if not (FERPLUS / "FER2013Valid" / "label.csv").is_file():
        pytest.skip("../shared/data/ferplus not present")
    return FERPLUS


@pytest.fixture(scope="session", params=["onnx", "tflite"])
def yunet_model(request) -> Path:
    """YuNet twice: the zoo's ONNX file (OpenCV's DNN) and the bundled TFLite conversion."""
    if request.param == "tflite":
        from fer_edge.detect import default_yunet_model

        return default_yunet_model()
    if not YUNET.is_file():
        pytest.skip("../shared/models YuNet file not present")
    return YUNET


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory) -> Path:
    """A generated 7-class folder dataset: 24 train and 8 val images per class."""
    from fer_edge.synthetic import write_folder_dataset

    root = tmp_path_factory.mktemp("tiny") / "data"
    return write_folder_dataset(root, {"train": 24, "val": 8})


@pytest.fixture(scope="session")
def tiny_tflite(tmp_path_factory) -> dict[str, Path]:
    """A tiny real Keras CNN exported as float32 and full-int8 TFLite, with metadata."""
    from fer_edge.convert.tiny import build_tiny_cnn, export_pair
    from fer_edge.labels import FER2013_CLASSES
    from fer_edge.modelmeta import ModelMeta
    from fer_edge.synthetic import synthetic_images

    images, _ = synthetic_images(4)
    out = tmp_path_factory.mktemp("tflite")
    meta = ModelMeta(FER2013_CLASSES, name="tiny")
    return export_pair(build_tiny_cnn(), out, "tiny", images, meta)


#: Names Chromium goes by on PATH (Debian: chromium).
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


@pytest.fixture(scope="session")
def chromium() -> str:
    """The headless browser for page tests; skips without one (.ci/run installs it)."""
    import shutil

    found = next(filter(None, map(shutil.which, CHROMIUM_NAMES)), None)
    if found is None:
        pytest.skip("no Chromium on PATH (Debian: apt-get install chromium)")
    return found


@pytest.fixture(scope="session")
def two_face_video(tmp_path_factory) -> Path:
    """24 frames at 10 fps: two astronaut faces side by side, in 4 places, 6 frames each."""
    import cv2

    from fer_edge.bench.facevideo import compose_frames, write_video

    face = cv2.imread(str(Path(__file__).parent / "data" / "astronaut_face.png"), 0)
    frames = compose_frames([face] * 8, face_size=150, per_frame=2, hold=6, jitter=3)
    path = tmp_path_factory.mktemp("pair") / "pair.mp4"
    write_video(path, frames, 10.0)
    return path


@pytest.fixture(scope="session")
def astronaut_face():
    """The public-domain NASA face photo in tests/data, gray (see its LICENSE file)."""
    import cv2

    path = Path(__file__).resolve().parent / "data" / "astronaut_face.png"
    image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    assert image is not None, path
    return image


@pytest.fixture
def small_tmpfs(tmp_path):
    """A real 256 KiB tmpfs (a disk that fills up); skips where mounting is not allowed."""
    import subprocess

    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)],
        capture_output=True,
    )
    if done.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.fixture
def fill_disk():
    """``fill(folder, leave)``: fill the file system of ``folder`` to ``leave`` free bytes."""
    import os

    def fill(folder: Path, leave: int) -> None:
        stats = os.statvfs(folder)
        free = stats.f_bavail * stats.f_frsize
        (folder / "filler.bin").write_bytes(b"\0" * max(0, free - leave))

    return fill
