"""One sigmoid rule everywhere: at exactly p = 0.5 (or a logit of 0), anchors, class tables and CAM all say class 0."""
import numpy as np
import pytest

from imgexplain.classes import probabilities
from imgexplain.outputs import sigmoid_labels, softmax
from imgexplain.predictor import labels_from_output

BORDER = np.array([[0.5], [0.5000001], [0.4999999]])
EXPECTED = [0, 1, 0]


def test_the_predictor_and_the_class_table_agree_on_the_border():
    assert list(labels_from_output(BORDER, 3)) == EXPECTED
    assert list(probabilities(BORDER).argmax(axis=1)) == EXPECTED
    assert list(sigmoid_labels(BORDER[:, 0])) == EXPECTED


def test_torch_cam_chooses_the_same_class_on_the_border():
    torch = pytest.importorskip("torch")
    from imgexplain.backends.torch.scores import target_scores

    _, chosen = target_scores(torch.tensor(BORDER), np.full(3, -1))
    assert list(chosen) == EXPECTED
    _, chosen = target_scores(torch.tensor([[0.0], [1e-6], [-1e-6]]), np.full(3, -1))  # logits: sigmoid(0) = 0.5
    assert list(chosen) == EXPECTED


def test_keras_cam_chooses_the_same_class_on_the_border():
    tf = pytest.importorskip("tensorflow")
    from imgexplain.backends.keras.cam import _class_scores

    chosen, _ = _class_scores(tf.constant(BORDER, tf.float64), tf.constant([-1, -1, -1]))
    assert list(chosen.numpy()) == EXPECTED


def test_softmax_is_shift_invariant_and_sums_to_one():
    scores = np.array([[1.0, 2.0, 3.0], [1001.0, 1002.0, 1003.0]])
    result = softmax(scores)
    np.testing.assert_allclose(result[0], result[1])
    np.testing.assert_allclose(result.sum(axis=1), 1.0)
