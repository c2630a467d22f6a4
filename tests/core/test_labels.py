import pytest

from fer_edge.errors import FerEdgeError
from fer_edge.labels import FER2013_CLASSES, resolve_classes


def test_canonical_order():
    assert FER2013_CLASSES == ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
    assert resolve_classes(None) == FER2013_CLASSES


def test_subset_by_list_keeps_canonical_order():
    assert resolve_classes("neutral, Happy,sad,surprise") == ("happy", "sad", "surprise", "neutral")
    assert resolve_classes(["sad", "angry"]) == ("angry", "sad")
    assert resolve_classes("fer4") == ("happy", "sad", "surprise", "neutral")


@pytest.mark.parametrize("spec", ["happy,pride", "", "happy,happy"])
def test_bad_class_lists_are_clear_errors(spec):
    with pytest.raises(FerEdgeError) as err:
        resolve_classes(spec)
    assert "--classes" in str(err.value)


def test_unknown_class_lists_valid_names():
    with pytest.raises(FerEdgeError, match="valid classes are angry, disgust.*neutral, contempt"):
        resolve_classes("pride")


def test_contempt_is_ferplus_eighth_class():
    assert resolve_classes("ferplus8")[-1] == "contempt"
    # Canonical order: FER2013's seven, then contempt, however the list is spelled.
    assert resolve_classes("contempt,happy") == ("happy", "contempt")
