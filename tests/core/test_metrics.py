import numpy as np
import pytest

from fer_edge.metrics import agreement, classification_metrics, confusion_matrix


def test_metrics_by_hand():
    # true:  0 0 0 1 1 2 ; pred: 0 0 1 1 2 2
    m = classification_metrics(
        np.array([0, 0, 0, 1, 1, 2]), np.array([0, 0, 1, 1, 2, 2]), ("a", "b", "c")
    )
    assert m.count == 6
    assert m.accuracy == pytest.approx(4 / 6)
    assert m.confusion == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]
    a, b, c = m.per_class["a"], m.per_class["b"], m.per_class["c"]
    assert (a.precision, a.recall, a.support) == (1.0, pytest.approx(2 / 3), 3)
    assert (b.precision, b.recall) == (0.5, 0.5)
    assert (c.precision, c.recall) == (0.5, 1.0)
    f1 = [2 * 1 * (2 / 3) / (1 + 2 / 3), 0.5, 2 * 0.5 / 1.5]
    assert m.macro_f1 == pytest.approx(np.mean(f1))
    assert m.to_dict()["per_class"]["c"]["f1"] == pytest.approx(2 / 3)


def test_absent_class_is_left_out_of_macro_f1():
    m = classification_metrics(np.array([0, 1]), np.array([0, 1]), ("a", "b", "c"))
    assert m.macro_f1 == 1.0 and m.per_class["c"].support == 0


def test_confusion_and_agreement():
    assert confusion_matrix(np.array([1, 1]), np.array([0, 1]), 2).tolist() == [[0, 0], [1, 1]]
    assert agreement(np.array([1, 2, 3, 4]), np.array([1, 2, 0, 4])) == 0.75
    with pytest.raises(ValueError):
        agreement(np.array([1]), np.array([1, 2]))
