"""Shared fixtures: generated datasets, tiny real TFLite models, the shared FER2013 path."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
FER2013 = SHARED / "data" / "fer2013"
YUNET = SHARED / "models" / "face_detection_yunet_2026may.onnx"


@pytest.fixture(scope="session")
def fer2013_root() -> Path:
    if not (FER2013 / "train").is_dir():
        pytest.skip("../shared/data/fer2013 not present")
    return FER2013


@pytest.fixture(scope="session")
def yunet_model() -> Path:
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
    from fer_edge.labels import FER2013_CLASSES
    from fer_edge.modelmeta import ModelMeta
    from fer_edge.synthetic import synthetic_images
    from fer_edge.train.tiny import build_tiny_cnn, export_pair

    images, _ = synthetic_images(4)
    out = tmp_path_factory.mktemp("tflite")
    meta = ModelMeta(FER2013_CLASSES, name="tiny")
    return export_pair(build_tiny_cnn(), out, "tiny", images, meta)
