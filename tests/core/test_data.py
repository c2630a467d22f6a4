import time

import numpy as np
import pytest

from fer_edge.data import load_dataset, stratified_split
from fer_edge.errors import FerEdgeError
from fer_edge.labels import FER2013_CLASSES
from fer_edge.synthetic import write_csv_dataset, write_folder_dataset


def test_folder_dataset_loads_all_splits(tmp_path):
    root = write_folder_dataset(tmp_path / "d", 5, splits=("train", "val", "test"))
    ds = load_dataset(root)
    assert ds.classes == FER2013_CLASSES
    assert {name: len(s) for name, s in ds.splits.items()} == {"train": 35, "val": 35, "test": 35}
    assert ds.counts("train") == dict.fromkeys(FER2013_CLASSES, 5)
    train = ds.split("train")
    assert train.images.shape == (35, 48, 48) and train.images.dtype == np.uint8
    assert train.labels.dtype == np.int64
    assert not ds.skipped and not ds.val_carved


def test_bad_files_are_skipped_and_counted(tmp_path):
    root = write_folder_dataset(tmp_path / "d", 4, splits=("train", "val"))
    happy = root / "train" / "happy"
    good = (happy / "train_00000.png").read_bytes()
    (happy / "corrupt.png").write_bytes(good[: len(good) // 3])
    (happy / "text.jpg").write_text("this is not a jpeg")
    (happy / "notes.txt").write_text("hello")
    (happy / "empty.png").write_bytes(b"")
    ds = load_dataset(root)
    assert ds.counts("train")["happy"] == 4
    reasons = {s.path.rsplit("/", 1)[-1]: s.reason for s in ds.skipped}
    assert set(reasons) == {"corrupt.png", "text.jpg", "notes.txt", "empty.png"}
    assert reasons["notes.txt"] == "not an image file"
    assert ds.skipped_summary().startswith("skipped 4 inputs: ")


def test_images_of_other_sizes_and_colour_are_resized_to_gray_48(tmp_path):
    import cv2

    folder = tmp_path / "d" / "train" / "happy"
    folder.mkdir(parents=True)
    cv2.imwrite(str(folder / "big.jpg"), np.full((100, 80, 3), 200, np.uint8))
    ds = load_dataset(tmp_path / "d", "happy", splits=("train",))
    assert ds.split("train").images.shape == (1, 48, 48)
    assert abs(int(ds.split("train").images[0, 24, 24]) - 200) <= 2


def test_subset_remaps_labels(tmp_path):
    root = write_folder_dataset(tmp_path / "d", 3)
    ds = load_dataset(root, "happy,sad,surprise,neutral")
    assert ds.classes == ("happy", "sad", "surprise", "neutral")
    assert sorted(set(ds.split("train").labels.tolist())) == [0, 1, 2, 3]
    assert len(ds.split("train")) == 12


def test_missing_val_is_carved_stratified_and_seeded(tmp_path):
    root = write_folder_dataset(tmp_path / "d", 20, splits=("train",))
    a = load_dataset(root, val_fraction=0.25, seed=3)
    b = load_dataset(root, val_fraction=0.25, seed=3)
    c = load_dataset(root, val_fraction=0.25, seed=4)
    assert a.val_carved
    assert a.counts("val") == dict.fromkeys(FER2013_CLASSES, 5)
    assert a.counts("train") == dict.fromkeys(FER2013_CLASSES, 15)
    assert np.array_equal(a.split("val").images, b.split("val").images)
    assert not np.array_equal(a.split("val").images, c.split("val").images)


def test_stratified_split_keeps_rare_classes_on_both_sides():
    labels = np.array([0] * 100 + [1] * 3 + [2] * 2)
    kept, held = stratified_split(labels, 0.1, seed=0)
    assert len(np.intersect1d(kept, held)) == 0 and len(kept) + len(held) == len(labels)
    assert np.bincount(labels[held]).tolist() == [10, 1, 1]
    assert np.bincount(labels[kept]).tolist() == [90, 2, 1]


def test_csv_dataset_maps_usage_and_skips_bad_rows(tmp_path):
    path = write_csv_dataset(tmp_path / "fer.csv", n_per_class=2)
    with path.open("a") as handle:
        handle.write("3,1 2 3,Training\n")  # short row
        handle.write("9," + " ".join(["0"] * 2304) + ",Training\n")  # bad label
        handle.write("3," + " ".join(["300"] * 2304) + ",Training\n")  # bad pixel values
    ds = load_dataset(path)
    assert {k: len(v) for k, v in ds.splits.items()} == {"train": 14, "val": 14, "test": 14}
    assert len(ds.skipped) == 3
    assert "3 pixels, expected 2304" in ds.skipped[0].reason
    assert ds.skipped[0].path.endswith("fer.csv:44")


def test_csv_and_folder_give_the_same_pixels(tmp_path):
    csv_ds = load_dataset(
        write_csv_dataset(tmp_path / "a.csv", 2, usages=("Training",)), splits=("train",)
    )
    folder = load_dataset(
        write_folder_dataset(tmp_path / "b", 2, splits=("train",)), splits=("train",)
    )
    a, b = csv_ds.split("train"), folder.split("train")
    for k in range(len(FER2013_CLASSES)):
        assert np.array_equal(a.images[a.labels == k], b.images[b.labels == k])


def test_csv_subset(tmp_path):
    ds = load_dataset(write_csv_dataset(tmp_path / "a.csv", 2), "fer4")
    assert ds.counts("test") == {"happy": 2, "sad": 2, "surprise": 2, "neutral": 2}


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("missing", "does not exist"),
        ("nosplits", "has no train/, val/ or test/ folder"),
        ("unknown", "unknown class folder 'contempt'"),
        ("emptyclass", "class disgust has no training images"),
        ("txt", "neither a dataset folder nor a .csv"),
        ("badcsv", "is not a FER2013 CSV"),
    ],
)
def test_bad_datasets_are_clear_errors(tmp_path, setup, message):
    root = tmp_path / "d"
    if setup == "nosplits":
        (root / "happy").mkdir(parents=True)
    elif setup == "unknown":
        write_folder_dataset(root, 2, splits=("train",))
        (root / "train" / "contempt").mkdir()
    elif setup == "emptyclass":
        write_folder_dataset(root, 2, splits=("train",))
        for f in (root / "train" / "disgust").iterdir():
            f.unlink()
    elif setup == "txt":
        root = tmp_path / "x.txt"
        root.write_text("x")
    elif setup == "badcsv":
        root = tmp_path / "x.csv"
        root.write_text("a,b\n1,2\n")
    with pytest.raises(FerEdgeError, match=message):
        load_dataset(root)


def test_missing_split_is_a_clear_error(tmp_path):
    ds = load_dataset(write_folder_dataset(tmp_path / "d", 2, splits=("train", "val")))
    with pytest.raises(FerEdgeError, match="no 'test' split"):
        ds.split("test")


@pytest.mark.fer2013
def test_shared_fer2013_counts_match_its_readme(fer2013_root):
    start = time.perf_counter()
    ds = load_dataset(fer2013_root)
    seconds = time.perf_counter() - start
    print(f"loaded {sum(len(s) for s in ds.splits.values())} images in {seconds:.1f} s")
    assert ds.counts("train") == {
        "angry": 3932,
        "disgust": 431,
        "fear": 4018,
        "happy": 7182,
        "sad": 4761,
        "surprise": 3128,
        "neutral": 4918,
    }
    assert ds.counts("val") == {
        "angry": 467,
        "disgust": 56,
        "fear": 496,
        "happy": 895,
        "sad": 653,
        "surprise": 415,
        "neutral": 607,
    }
    assert not ds.skipped and not ds.val_carved
