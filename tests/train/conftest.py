"""Training fixtures shared by the training tests."""

from __future__ import annotations

import pytest

from fer_edge.synthetic import write_folder_dataset


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory):
    """A real short training run of a slim edge model on learnable generated data."""
    from fer_edge.train.inputs import AugmentOptions
    from fer_edge.train.options import TrainOptions
    from fer_edge.train.trainer import train

    # Enough steps (~45 per epoch) for BatchNorm's moving statistics to settle.
    root = write_folder_dataset(tmp_path_factory.mktemp("d") / "data", {"train": 120, "val": 20})
    options = TrainOptions(
        data=str(root),
        out=str(tmp_path_factory.mktemp("runs") / "edge"),
        model="edge",
        model_options={"width": 0.5},
        epochs=6,
        batch_size=16,
        learning_rate=3e-3,
        select_fraction=0.15,
        augment=AugmentOptions(flip=False, rotation=0, shift=0.05, zoom=0.05),
    )
    return train(options, verbose=0), options
