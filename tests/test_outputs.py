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


# One column at the edges of [0, 1]: 0 and 1 are probabilities (class 0 scores 1 - p), 1 + 1e-6 makes the
# column logits (class 0 scores -p). The four places that ask "is this a probability?" use outputs' one rule.
EDGES = {(0.0, 1.0): [1.0, 0.0], (0.0, 1.000001): [-0.0, -1.000001], (-0.000001, 1.0): [0.000001, -1.0]}


@pytest.mark.parametrize("column, class_0", EDGES.items())
def test_numpy_class_tables_and_cam_scores_agree_on_what_a_probability_is(column, class_0):
    from imgexplain.model_outputs import scores_of
    from imgexplain.outputs import are_probabilities
    from imgexplain.predictor import PredictorError

    outputs = np.array(column)[:, None]
    scores = scores_of(outputs, np.zeros(2, dtype=np.int64), None)
    np.testing.assert_allclose(scores, class_0, rtol=1e-6)
    assert are_probabilities(outputs) == (class_0 == [1.0, 0.0])
    if are_probabilities(outputs):
        np.testing.assert_allclose(probabilities(outputs)[:, 0], class_0)
    else:
        with pytest.raises(PredictorError, match="one column must be a sigmoid probability in"):
            probabilities(outputs)


@pytest.mark.parametrize("column, class_0", EDGES.items())
def test_torch_and_keras_cam_agree_on_what_a_probability_is(column, class_0):
    torch = pytest.importorskip("torch")
    tf = pytest.importorskip("tensorflow")
    from imgexplain.backends.keras.cam import _class_scores
    from imgexplain.backends.torch.scores import target_scores

    outputs = np.array(column)[:, None]
    scores, _ = target_scores(torch.tensor(outputs), np.zeros(2, dtype=np.int64))
    np.testing.assert_allclose(scores.numpy(), class_0, rtol=1e-6)
    _, scores = _class_scores(tf.constant(outputs), tf.constant([0, 0]))
    np.testing.assert_allclose(scores.numpy(), class_0, rtol=1e-6)
