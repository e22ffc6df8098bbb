"""Faithfulness metrics: known-answer curves, anchor precision, randomization check."""
import numpy as np
import pytest

from imgexplain.evaluate import (
    anchor_precision,
    deletion_curve,
    insertion_curve,
    randomization_check,
    saliency_from_anchor,
)
from imgexplain.evaluate.randomization import map_similarity
from imgexplain.explanation import Explanation
from imgexplain.predictor import PredictorError

SHAPE = (8, 8)


def evidence_weights():
    """A fixed, positive weight per pixel: the model's evidence for class 1."""
    return np.random.default_rng(0).permutation(np.arange(1, 65, dtype=float)).reshape(SHAPE)


class LinearModel:
    """p(class 1) = sum(w * x) / sum(w) for images in [0, 1]; records what it is sent."""

    def __init__(self, weights):
        self.weights = weights
        self.batches = []

    def __call__(self, images):
        images = np.asarray(images, dtype=float)
        self.batches.append(images.copy())
        pixels = images if images.ndim == 3 else images.mean(axis=-1)
        p = np.tensordot(pixels, self.weights, axes=2) / self.weights.sum()
        return np.stack([1 - p, p], axis=1)


def grid_segments(shape=SHAPE, cell=4):
    rows, cols = np.indices(shape)
    return (rows // cell) * (shape[1] // cell) + cols // cell


def test_deletion_of_the_true_evidence_follows_the_known_curve():
    weights = evidence_weights()
    model = LinearModel(weights)
    curve = deletion_curve(model, np.ones(SHAPE), weights, target=1, steps=64)
    removed = np.concatenate([[0.0], np.cumsum(np.sort(weights.ravel())[::-1])])
    np.testing.assert_allclose(curve.scores, 1 - removed / weights.sum())
    np.testing.assert_allclose(curve.fractions, np.arange(65) / 64)
    assert curve.kind == "deletion" and curve.target == 1 and curve.baseline == "zeros"


@pytest.mark.parametrize("kind", ["deletion", "insertion"])
def test_true_evidence_beats_its_reverse_and_a_random_map(kind):
    weights = evidence_weights()
    model = LinearModel(weights)
    measure = deletion_curve if kind == "deletion" else insertion_curve
    kwargs = dict(target=1, steps=16, baseline="zeros")
    true = measure(model, np.ones(SHAPE), weights, **kwargs).auc
    reverse = measure(model, np.ones(SHAPE), -weights, **kwargs).auc
    noise = measure(model, np.ones(SHAPE), np.random.default_rng(1).random(SHAPE), **kwargs).auc
    if kind == "deletion":
        assert true < noise < reverse
    else:
        assert true > noise > reverse


def test_insertion_goes_from_baseline_to_image():
    model = LinearModel(evidence_weights())
    image = np.random.default_rng(2).random((*SHAPE, 3))
    curve = insertion_curve(model, image, evidence_weights(), target=1, steps=4, baseline="mean")
    first, last = model.batches[0][0], model.batches[0][-1]
    np.testing.assert_allclose(first, np.broadcast_to(image.mean(axis=(0, 1)), image.shape))
    np.testing.assert_allclose(last, image)
    assert curve.scores.shape == (5,)


def test_blur_baseline_is_a_smoothed_image():
    seen = []

    def predictor(images):
        seen.append(images)
        return np.zeros((len(images), 2))

    image = np.random.default_rng(3).random((64, 64))
    deletion_curve(predictor, image, np.ones((4, 4)), target=1, steps=1, baseline="blur")
    blurred = seen[0][-1]
    assert blurred.shape == image.shape
    assert blurred.std() < 0.2 * image.std()
    np.testing.assert_allclose(blurred.mean(), image.mean(), atol=0.05)


def test_array_and_constant_baselines_are_used_as_given():
    model = LinearModel(evidence_weights())
    image = np.ones(SHAPE)
    fill = np.full(SHAPE, 0.25)
    deletion_curve(model, image, evidence_weights(), target=1, steps=2, baseline=fill)
    np.testing.assert_allclose(model.batches[-1][-1], fill)
    deletion_curve(model, image, evidence_weights(), target=1, steps=2, baseline=0.5)
    np.testing.assert_allclose(model.batches[-1][-1], 0.5)


def test_model_is_called_in_batches_and_target_defaults_to_the_prediction():
    model = LinearModel(evidence_weights())
    curve = deletion_curve(model, np.ones(SHAPE), evidence_weights(), steps=20, batch_size=8)
    assert curve.target == 1  # p(class 1) = 1 on the full image
    assert [len(b) for b in model.batches] == [1, 8, 8, 5]


def test_low_resolution_saliency_is_resized_to_the_image():
    weights = evidence_weights()
    model = LinearModel(weights)
    coarse = np.array([[1.0, 0.0], [0.0, 0.0]])  # top-left quadrant first
    curve = deletion_curve(model, np.ones(SHAPE), coarse, target=1, steps=4, seed=0)
    assert np.isclose(curve.scores[1], 1 - weights[:4, :4].sum() / weights.sum())


def test_superpixel_curves_remove_whole_superpixels_by_area():
    weights = evidence_weights()
    model = LinearModel(weights)
    segments = grid_segments()
    per_superpixel = np.array([3.0, 1.0, 2.0, 0.0])
    curve = deletion_curve(model, np.ones(SHAPE), per_superpixel, target=1, segments=segments)
    np.testing.assert_allclose(curve.fractions, [0, 0.25, 0.5, 0.75, 1])
    removed = np.cumsum([weights[segments == s].sum() for s in (0, 2, 1, 3)])
    np.testing.assert_allclose(curve.scores[1:], 1 - removed / weights.sum())
    as_map = deletion_curve(model, np.ones(SHAPE), per_superpixel[segments], target=1,
                            segments=segments + 10)
    np.testing.assert_allclose(as_map.scores, curve.scores)


def test_ties_are_broken_reproducibly_with_a_seed():
    model = LinearModel(evidence_weights())
    flat = np.zeros(SHAPE)
    a = deletion_curve(model, np.ones(SHAPE), flat, target=1, steps=8, seed=5)
    b = deletion_curve(model, np.ones(SHAPE), flat, target=1, steps=8, seed=5)
    c = deletion_curve(model, np.ones(SHAPE), flat, target=1, steps=8, seed=6)
    np.testing.assert_array_equal(a.scores, b.scores)
    assert not np.array_equal(a.scores, c.scores)


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        (dict(saliency=np.zeros((2, 2, 2))), ValueError, "saliency must be a 2-D map"),
        (dict(saliency=np.full(SHAPE, np.nan)), ValueError, "saliency contains NaN"),
        (dict(saliency=np.array([["a"]])), TypeError, "saliency must be a real-valued"),
        (dict(steps=0), ValueError, "steps must be a positive int"),
        (dict(batch_size=2.5), TypeError, "batch_size must be a positive int"),
        (dict(baseline="noise"), ValueError, "baseline must be one of"),
        (dict(baseline=np.zeros((3, 3))), ValueError, "a baseline image must be numeric"),
        (dict(target=-1), ValueError, "target must be None or a non-negative int"),
        (dict(target="1"), TypeError, "target must be None or a non-negative int"),
        (dict(image=np.zeros((2, 2, 2, 2))), ValueError, "image must be a numeric"),
        (dict(image=np.full(SHAPE, "a")), TypeError, "image must be a numeric"),
        (dict(segments=np.zeros((3, 3), dtype=int)), ValueError, "segments must be an integer array"),
        (dict(segments=grid_segments(), saliency=np.ones(3)), ValueError, "one score per superpixel"),
    ],
)
def test_bad_curve_input_is_rejected_before_any_model_call(kwargs, error, message):
    model = LinearModel(evidence_weights())
    arguments = dict(image=np.ones(SHAPE), saliency=evidence_weights(), target=1)
    arguments.update(kwargs)
    with pytest.raises(error, match=message) as raised:
        deletion_curve(model, **arguments)
    assert type(raised.value) is error
    assert model.batches == []


@pytest.mark.parametrize(
    "output, message",
    [(np.zeros(3), r"must return \(3, K\) scores"), (np.full((3, 2), np.nan), "non-finite")],
)
def test_bad_predictor_output_is_a_predictor_error(output, message):
    with pytest.raises(PredictorError, match=message):
        deletion_curve(lambda x: output, np.ones(SHAPE), evidence_weights(), target=0, steps=2)


def test_target_beyond_the_outputs_is_reported():
    with pytest.raises(ValueError, match="target 5 is out of range"):
        deletion_curve(LinearModel(evidence_weights()), np.ones(SHAPE), evidence_weights(),
                       target=5, steps=2)


# --- anchors ----------------------------------------------------------------------------


class IntactSuperpixels:
    """Class 1 iff the given superpixels keep their original pixels (a known true anchor)."""

    def __init__(self, image, segments, required):
        self.image, self.mask, self.n_images = image, np.isin(segments, required), 0

    def __call__(self, images):
        self.n_images += len(images)
        intact = np.all(images[:, self.mask] == self.image[self.mask], axis=tuple(range(1, 3)))
        return intact.astype(np.int64)


def textured_image():
    return np.random.default_rng(4).uniform(0, 255, (*SHAPE, 3)).astype(np.float32)


def anchor_explanation(anchor, precision=1.0, p_sample=0.5):
    return Explanation(meta={"name": "AnchorImage", "params": {"p_sample": p_sample}},
                       data={"segments": grid_segments(), "precision": precision,
                             "raw": {"feature": list(anchor)}})


def test_the_true_anchor_has_precision_one():
    image = textured_image()
    predictor = IntactSuperpixels(image, grid_segments(), [1, 2])
    result = anchor_precision(predictor, image, anchor_explanation([2, 1]), n=300, seed=0)
    assert result["precision"] == 1.0
    assert result["label"] == 1 and result["anchor"] == [2, 1]
    assert result["claimed_precision"] == 1.0 and result["n"] == 300
    assert predictor.n_images == 301
    assert result["ci"][0] > 0.98


@pytest.mark.parametrize("p_sample", [0.3, 0.5])
def test_a_partial_anchor_holds_as_often_as_the_missing_superpixel_survives(p_sample):
    image = textured_image()
    predictor = IntactSuperpixels(image, grid_segments(), [1, 2])
    explanation = anchor_explanation([1], precision=0.99, p_sample=p_sample)
    result = anchor_precision(predictor, image, explanation, n=2000, seed=1)
    low, high = result["ci"]
    assert low < 1 - p_sample < high
    assert high < 0.99  # the claimed precision is refuted
    assert result["p_sample"] == p_sample


def test_background_images_replace_perturbed_superpixels():
    image = textured_image()
    background = np.zeros((2, *image.shape), dtype=image.dtype)
    seen = []

    def predictor(images):
        seen.append(images)
        return np.zeros(len(images), dtype=np.int64)

    anchor_precision(predictor, image, anchor_explanation([0]), n=50, seed=2,
                     images_background=background)
    samples = np.concatenate(seen[1:])
    segments = grid_segments()
    np.testing.assert_array_equal(samples[:, segments == 0], np.broadcast_to(
        image[segments == 0], samples[:, segments == 0].shape))
    others = samples[:, segments != 0].reshape(50, -1)
    assert set(np.unique(others == 0)) == {True, False}


def test_anchor_precision_is_reproducible_with_a_seed():
    image = textured_image()
    predictor = IntactSuperpixels(image, grid_segments(), [1, 2, 3])
    a = anchor_precision(predictor, image, anchor_explanation([1]), n=200, seed=3)
    b = anchor_precision(predictor, image, anchor_explanation([1]), n=200, seed=3)
    assert a == b


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        (dict(explanation=anchor_explanation([7])), ValueError, r"anchor superpixels \[7\] are not labels"),
        (dict(explanation={"segments": grid_segments()}), ValueError, "must hold 'segments' and raw"),
        (dict(explanation=Explanation({}, {"segments": grid_segments(), "raw": {"feature": [0]}})),
         ValueError, "p_sample was not given"),
        (dict(p_sample=1.5), ValueError, r"p_sample must be a number in \[0, 1\]"),
        (dict(p_sample="0.5"), TypeError, r"p_sample must be a number in \[0, 1\]"),
        (dict(n=0), ValueError, "n must be a positive int"),
        (dict(n=10.0), TypeError, "n must be a positive int"),
        (dict(image=np.zeros((4, 4, 3))), ValueError, "segments must have the image's shape"),
        (dict(images_background=np.zeros((2, 4, 4, 3))), ValueError, "images_background must have shape"),
    ],
)
def test_bad_anchor_input_is_rejected_before_any_model_call(kwargs, error, message):
    calls = []
    arguments = dict(image=textured_image(), explanation=anchor_explanation([0]))
    arguments.update(kwargs)
    with pytest.raises(error, match=message) as raised:
        anchor_precision(lambda x: calls.append(x), **arguments)
    assert type(raised.value) is error
    assert calls == []


@pytest.mark.parametrize(
    "output, message",
    [(lambda x: np.zeros((len(x), 2, 2)), r"returned shape \(1, 2, 2\)"),
     (lambda x: np.full((len(x), 3), np.nan), "NaN"),
     (lambda x: 1 / 0, "raised ZeroDivisionError")],
)
def test_a_bad_predictor_is_named_in_the_error(output, message):
    with pytest.raises(PredictorError, match=message):
        anchor_precision(output, textured_image(), anchor_explanation([0]), n=10)


def test_saliency_from_anchor_ranks_superpixels_in_the_order_they_were_added():
    scores = saliency_from_anchor(anchor_explanation([2, 0]))
    np.testing.assert_array_equal(scores, [1, 0, 2, 0])
    one_based = Explanation({}, {"segments": grid_segments() + 1, "raw": {"feature": [4]}})
    np.testing.assert_array_equal(saliency_from_anchor(one_based), [0, 0, 0, 1])


# --- randomization check ----------------------------------------------------------------


@pytest.fixture(scope="module")
def torch_model():
    torch = pytest.importorskip("torch")
    pytest.importorskip("imgexplain.cam.api")
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(),
        torch.nn.Conv2d(8, 8, 3, padding=1), torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(8, 4),
        torch.nn.Softmax(dim=1),
    ).eval()
    images = np.random.default_rng(0).random((3, 3, 12, 12)).astype(np.float32)
    return model, images


def test_randomization_check_leaves_the_model_alone_and_is_reproducible(torch_model):
    from imgexplain import CAM

    model, images = torch_model
    before = {k: v.clone() for k, v in model.state_dict().items()}
    a = randomization_check(model, images, layer=model[2], seed=0)
    b = randomization_check(model, images, layer=model[2], seed=0)
    for key, value in model.state_dict().items():
        assert (value == before[key]).all()
    np.testing.assert_allclose(a["maps"], CAM(model, layer=model[2])(images, targets=a["targets"]))
    np.testing.assert_array_equal(a["spearman"], b["spearman"])
    assert a["spearman"].shape == a["ssim"].shape == (3,)
    assert a["layers"] == ["0", "2", "6"][::-1]
    assert not np.allclose(a["maps"], a["random_maps"])


def test_map_similarity_has_known_answers():
    ramp = np.arange(64.0).reshape(8, 8) / 63
    assert map_similarity(ramp[::2, ::2], ramp[::2, ::2], (8, 8)) == pytest.approx((1.0, 1.0))
    rho, ssim = map_similarity(ramp, 1 - ramp, (8, 8))
    assert rho == pytest.approx(-1.0) and ssim < 0
    assert map_similarity(ramp, np.zeros((8, 8)), (8, 8))[0] == 0.0


def test_cascade_randomizes_from_the_output_down(torch_model):
    model, images = torch_model
    result = randomization_check(model, images, layer=model[2], seed=1, cascade=True, targets=0)
    assert result["layers"] == [["6"], ["2"], ["0"]]
    assert result["spearman"].shape == (3, 3)
    np.testing.assert_array_equal(result["targets"], [0, 0, 0])


def test_randomization_check_rejects_what_it_cannot_explain(torch_model):
    model, images = torch_model
    with pytest.raises(TypeError, match="model must be a keras.Model or a torch.nn.Module"):
        randomization_check(lambda x: x, images)
    with pytest.raises(ValueError, match="targets must lie in"):
        randomization_check(model, images, targets=9)
    with pytest.raises(PredictorError, match="raised RuntimeError"):
        randomization_check(type(model[6])(5, 2), images)


@pytest.mark.slow
def test_randomization_check_on_a_keras_model_leaves_it_alone():
    keras = pytest.importorskip("keras")
    pytest.importorskip("imgexplain.cam.api")
    keras.utils.set_random_seed(0)
    inputs = keras.Input((12, 12, 3))
    features = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="features")(inputs)
    pooled = keras.layers.GlobalAveragePooling2D()(features)
    model = keras.Model(inputs, keras.layers.Dense(4, activation="softmax", name="scores")(pooled))
    images = np.random.default_rng(0).random((2, 12, 12, 3)).astype(np.float32)
    before = [w.copy() for w in model.get_weights()]
    result = randomization_check(model, images, layer=model.get_layer("features"), seed=0, cascade=True)
    for weight, original in zip(model.get_weights(), before):
        np.testing.assert_array_equal(weight, original)
    assert result["layers"] == [["scores"], ["features"]]
    assert result["spearman"].shape == result["ssim"].shape == (2, 2)
    assert not np.allclose(result["maps"], result["random_maps"])
