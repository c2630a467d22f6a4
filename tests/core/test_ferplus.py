"""FER+ data: the FERPlus majority rule, vote distributions, the layout loader and its errors."""

from __future__ import annotations

import numpy as np
import pytest

from fer_edge.data import load_dataset
from fer_edge.errors import FerEdgeError
from fer_edge.ferplus import VOTE_COLUMNS, majority, vote_distribution
from fer_edge.labels import FER2013_CLASSES, resolve_classes
from fer_edge.synthetic import write_ferplus_dataset


def _votes(**counts: int) -> np.ndarray:
    return np.array([counts.get(c, 0) for c in VOTE_COLUMNS], dtype=np.float32)


@pytest.mark.parametrize(
    ("counts", "expected"),
    [
        # label.csv's first row: single votes go (sad 1), 4 of the 9 left is not over half.
        ({"neutral": 4, "sad": 1, "angry": 3, "disgust": 2}, None),
        # Its second: 6 of the 8 left after the single votes (surprise, sad) go.
        ({"neutral": 6, "surprise": 1, "sad": 1, "unknown": 2}, "neutral"),
        ({"happy": 5, "surprise": 5}, None),
        ({"fear": 6, "surprise": 4}, "fear"),
        ({"unknown": 8, "neutral": 2}, "unknown"),
        ({"contempt": 7, "neutral": 3}, "contempt"),
        # All single votes: nothing is left.
        ({c: 1 for c in VOTE_COLUMNS}, None),
    ],
)
def test_majority_follows_the_ferplus_rule(counts, expected):
    assert majority(_votes(**counts)) == expected


def test_vote_distribution_drops_single_votes_and_non_classes():
    shares = vote_distribution(_votes(neutral=6, sad=1, fear=2, unknown=1), FER2013_CLASSES)
    assert shares.shape == (1, 7)
    expected = np.zeros(7, np.float32)
    expected[FER2013_CLASSES.index("neutral")] = 0.75
    expected[FER2013_CLASSES.index("fear")] = 0.25
    np.testing.assert_allclose(shares[0], expected)


def test_generated_ferplus_folder_loads_with_majority_labels_and_votes(tmp_path):
    root = write_ferplus_dataset(tmp_path / "fp", {"train": 10, "val": 5})
    dataset = load_dataset(root)
    assert dataset.label_set == "ferplus"
    assert dataset.classes == FER2013_CLASSES
    # Two vote patterns in five have no majority: counted, not loaded.
    assert dataset.unscored == {"train": {"no majority": 28}, "val": {"no majority": 14}}
    train = dataset.split("train")
    assert len(train) == 42 and train.votes is not None and train.names is not None
    np.testing.assert_allclose(train.votes.sum(axis=1), 1.0, rtol=1e-6)
    assert np.array_equal(np.argmax(train.votes, axis=1), train.labels)
    assert all(name.startswith("fer") and name.endswith(".png") for name in train.names)
    # The selection split and other subsets keep votes and names aligned with the faces.
    part = train.subset(np.array([3, 1]))
    assert np.array_equal(part.votes, train.votes[[3, 1]])
    assert list(part.names) == [train.names[3], train.names[1]]


def test_class_subsets_and_contempt_as_an_eighth_class(tmp_path):
    root = write_ferplus_dataset(tmp_path / "fp", 5, splits=("train",))
    label = root / "FER2013Train" / "label.csv"
    rows = label.read_text().splitlines()
    # Turn the first face into contempt (7 votes) with 3 neutral.
    name = rows[0].split(",")[0]
    rows[0] = f'{name},"(0, 0, 48, 48)",3,0,0,0,0,0,0,7,0,0'
    label.write_text("\n".join(rows) + "\n")
    seven = load_dataset(root, splits=("train",), val_fraction=0.2)
    assert seven.unscored["train"]["majority contempt"] == 1
    eight = load_dataset(root, resolve_classes("ferplus8"), splits=("train",))
    assert eight.classes[-1] == "contempt" and eight.counts("train")["contempt"] == 1
    four = load_dataset(root, "fer4", splits=("train",))
    assert set(four.counts("train")) == {"happy", "sad", "surprise", "neutral"}
    assert four.split("train").votes.shape[1] == 4


def test_corrupt_images_and_bad_rows_are_skipped_and_counted(tmp_path):
    root = write_ferplus_dataset(tmp_path / "fp", 5, splits=("train", "val"))
    folder = root / "FER2013Train"
    (folder / "fer0000000.png").write_bytes(b"not a png")
    with (folder / "label.csv").open("a") as handle:
        handle.write('fer9999998.png,"(0, 0, 48, 48)",1,2,x,0,0,0,0,0,0,0\n')
        handle.write("fer9999999.png,too,few\n")
    dataset = load_dataset(root)
    reasons = sorted(s.reason for s in dataset.skipped)
    assert len(reasons) == 3
    assert "corrupt or not an image" in reasons and "non-numeric vote count" in reasons
    assert any("columns" in r for r in reasons)


def test_missing_split_names_the_folder(tmp_path):
    from fer_edge.evaluate import load_eval_set
    from fer_edge.modelmeta import ModelMeta

    root = write_ferplus_dataset(tmp_path / "fp", 3, splits=("train",))
    with pytest.raises(FerEdgeError, match="FER2013Valid/label.csv"):
        load_eval_set(root, "val", ModelMeta(FER2013_CLASSES))


def test_shared_ferplus_counts_match_its_readme(ferplus_root):
    dataset = load_dataset(ferplus_root, splits=("val",))
    assert len(dataset.split("val")) == 3175
    assert dataset.counts("val") == {
        "angry": 289,
        "disgust": 25,
        "fear": 60,
        "happy": 862,
        "sad": 348,
        "surprise": 411,
        "neutral": 1180,
    }
    assert dataset.unscored["val"] == {
        "no majority": 377,
        "majority contempt": 16,
        "majority unknown": 11,
    }
