"""AnchorImage: known answers, the precision guarantee, reproducibility, layouts and every bad input."""
import json

import numpy as np
import pytest

from imgexplain import AnchorImage, PredictorCallError, PredictorError, PredictorReturnTypeError, scale_image
from imgexplain.anchors.explanation import AnchorImageExplanation
from imgexplain.anchors.sampler import IMAGES_PER_CHECK, MAX_CHECKS_PER_CALL
from imgexplain.segmentation import grid_segments

SIDE = 32
CELL = 8  # a 4 x 4 grid: 16 superpixels


def textured_image(channels=3, seed=0):
    return np.random.default_rng(seed).random((SIDE, SIDE, channels)).astype(np.float32)


GRID = grid_segments((SIDE, SIDE), (CELL, CELL))


def grid_fn(image):
    return GRID


class IntactPredictor:
    """Class 1 exactly when every superpixel in ``needed`` is intact; records every image it sees."""

    def __init__(self, image, needed, segments=GRID):
        self.image = image.reshape(image.shape[:2] + (-1,))
        self.needed = list(needed)
        self.segments = segments
        self.seen = []

    def intact(self, images):
        images = images.reshape(images.shape[:3] + (-1,))
        return np.stack([np.all(images[:, self.segments == k] == self.image[self.segments == k], axis=(1, 2))
                         for k in range(self.segments.max() + 1)], axis=1)

    def __call__(self, images):
        self.seen.append(images.copy())
        holds = self.intact(images)[:, self.needed].all(axis=1)
        return np.stack([~holds, holds], axis=1).astype(np.float32)


def explain(predictor, image, seed=0, **kwargs):
    explainer = AnchorImage(predictor, image.shape, segmentation_fn=grid_fn, seed=seed)
    return explainer.explain(image, **kwargs)


@pytest.mark.parametrize("needed", [[6], [1, 14], [0, 5, 10]])
def test_anchor_is_exactly_the_superpixels_the_model_needs(needed):
    image = textured_image()
    explanation = explain(IntactPredictor(image, needed), image)
    assert sorted(explanation.raw["feature"]) == needed
    assert explanation.precision == 1.0
    assert explanation.success and not explanation.empty_anchor
    assert explanation.coverage == pytest.approx(0.5 ** len(needed), abs=0.03)


def test_precision_guarantee_holds_on_fresh_samples():
    image = textured_image()
    rng = np.random.default_rng(1)
    weights = rng.random(16)

    def weighted(images):
        intact = IntactPredictor(image, []).intact(images)
        holds = intact @ weights > 0.45 * weights.sum()
        return np.stack([~holds, holds], axis=1).astype(float)

    threshold, epsilon_stop = 0.9, 0.05
    explanation = explain(weighted, image, threshold=threshold, tau=0.25)
    anchor = explanation.raw["feature"]
    masks = rng.random((20000, 16)) >= 0.5
    masks[:, anchor] = True
    weights_kept = masks @ weights > 0.45 * weights.sum()
    assert explanation.success
    assert weights_kept.mean() >= threshold - epsilon_stop
    assert explanation.precision == pytest.approx(weights_kept.mean(), abs=0.05)


def test_raw_record_counts_true_model_use_and_no_mask_twice():
    image = textured_image()
    predictor = IntactPredictor(image, [1, 14])
    explanation = explain(predictor, image)
    raw = explanation.raw
    probe, *calls = predictor.seen  # the constructor's call on a zero image, as alibi's
    assert probe.shape == (1,) + image.shape and not probe.any()
    images = np.concatenate(calls)
    assert raw["num_preds"] == len(images)
    assert raw["model_calls"] == len(calls)
    checks = raw["determinism_checks"]  # images evaluated again to check that the model is deterministic
    # the instance's first check, then one per IMAGES_PER_CHECK images however the calls split them
    assert 0 < checks <= MAX_CHECKS_PER_CALL + raw["num_preds"] / IMAGES_PER_CHECK
    # the instance is not a sample
    assert raw["n_samples"] == raw["samples_from_memo"] + raw["num_preds"] - 1 - checks
    masks = predictor.intact(images)
    assert len(np.unique(masks, axis=0)) == len(masks) - checks
    assert len(raw["examples"]) == len(raw["feature"])
    assert raw["prediction"].tolist() == [1]
    np.testing.assert_array_equal(raw["instance"], image)


def test_same_seed_same_explanation_and_global_rng_untouched():
    image = textured_image()
    predictor = IntactPredictor(image, [1, 14])
    state = np.random.get_state()[1].copy()
    explainer = AnchorImage(predictor, image.shape, segmentation_fn=grid_fn, seed=3)
    first, second = explainer.explain(image), explainer.explain(image)
    assert first.to_json() == second.to_json()
    np.testing.assert_array_equal(np.random.get_state()[1], state)
    other = explainer.explain(image, seed=4)
    assert other.raw["n_samples"] != first.raw["n_samples"] or other.coverage != first.coverage


def test_without_seed_the_global_rng_seeds_the_search_as_in_alibi():
    image = textured_image()
    weights = np.random.default_rng(1).random(16)

    def weighted(images):  # a noisy answer: the samples drawn decide the explanation
        intact = IntactPredictor(image, []).intact(images)
        holds = intact @ weights > 0.45 * weights.sum()
        return np.stack([~holds, holds], axis=1).astype(float)

    explainer = AnchorImage(weighted, image.shape, segmentation_fn=grid_fn)
    explanations, states_after = [], []
    for global_seed in (0, 0, 1):
        np.random.seed(global_seed)
        explanations.append(explainer.explain(image, threshold=0.9, tau=0.25))
        states_after.append(np.random.get_state()[1].copy())
    first, again, other = explanations
    assert first.to_json() == again.to_json()
    np.testing.assert_array_equal(states_after[0], states_after[1])  # advanced by a draw, never reseeded
    assert first.raw["n_samples"] != other.raw["n_samples"] or first.precision != other.precision
    np.random.seed(0)
    state = np.random.get_state()[1].copy()
    explainer.explain(image, threshold=0.9, tau=0.25, seed=5)
    np.testing.assert_array_equal(np.random.get_state()[1], state)  # a seed leaves the global state alone


def test_data_has_exactly_alibis_keys_and_the_extras_are_attributes():
    image = textured_image()
    explanation = explain(IntactPredictor(image, [6]), image)
    assert list(explanation.data) == ["anchor", "segments", "precision", "coverage", "raw"]
    assert list(explanation.meta) == ["name", "type", "explanations", "version", "params"]
    assert explanation.success is explanation.raw["success"] is True
    assert explanation.empty_anchor is explanation.raw["empty_anchor"] is False
    restored = AnchorImageExplanation.from_json(explanation.to_json())
    assert restored.success and not restored.empty_anchor


def test_json_round_trip_keeps_arrays():
    image = textured_image()
    explanation = explain(IntactPredictor(image, [6]), image)
    restored = AnchorImageExplanation.from_json(explanation.to_json())
    np.testing.assert_array_equal(restored.anchor, explanation.anchor)
    np.testing.assert_array_equal(restored.segments, explanation.segments)
    assert restored.raw["feature"] == explanation.raw["feature"]
    assert restored.meta["params"]["threshold"] == 0.95
    assert json.loads(explanation.to_json())["meta"]["name"] == "AnchorImage"
    assert explanation["precision"] == explanation.precision == explanation.data["precision"]


def test_anchor_picture_is_the_scaled_image_on_the_anchor_and_zero_elsewhere():
    image = textured_image()
    explanation = explain(IntactPredictor(image, [6]), image)
    scaled = scale_image(image)
    inside = GRID == 6
    np.testing.assert_array_equal(explanation.anchor[inside], scaled[inside].astype(int))
    assert np.all(explanation.anchor[~inside] == 0)
    assert explanation.anchor.shape == image.shape


def test_empty_anchor_when_the_prediction_always_holds():
    image = textured_image()
    explanation = explain(lambda images: np.ones(len(images), dtype=int), image)
    assert explanation.empty_anchor and explanation.success
    assert explanation.raw["feature"] == []
    assert explanation.precision == 1.0 and explanation.coverage == 1.0
    assert not explanation.anchor.any()


@pytest.mark.parametrize("layout", [(SIDE, SIDE, 1), (SIDE, SIDE)])
def test_grayscale_images_and_the_anchor_in_the_input_layout(layout):
    image = textured_image(channels=1).reshape(layout)
    predictor = IntactPredictor(image, [5])
    explanation = AnchorImage(predictor, layout, segmentation_fn=grid_fn, seed=0).explain(image)
    assert sorted(explanation.raw["feature"]) == [5]
    assert explanation.anchor.shape == layout
    assert all(batch.shape[1:] == layout for batch in predictor.seen)


def test_builtin_segmentation_on_grayscale_repeats_channels():
    image = np.zeros((SIDE, SIDE, 1), dtype=np.float32)
    image[:, SIDE // 2:] = 1.0
    explainer = AnchorImage(lambda x: np.zeros(len(x), int), image.shape, segmentation_fn="slic",
                            segmentation_kwargs={"n_segments": 4, "compactness": 10, "channel_axis": -1})
    segments = explainer.generate_superpixels(image)
    assert segments.min() == 0 and segments.max() >= 1
    assert set(np.unique(segments)) == set(range(segments.max() + 1))


def test_background_images_fill_perturbed_superpixels():
    image = textured_image()
    backgrounds = np.stack([np.full(image.shape, value, dtype=np.float32) for value in (-1.0, -2.0)])
    predictor = IntactPredictor(image, [3])
    explanation = AnchorImage(predictor, image.shape, segmentation_fn=grid_fn, images_background=backgrounds,
                              seed=0).explain(image)
    assert sorted(explanation.raw["feature"]) == [3]
    samples = np.concatenate(predictor.seen[1:])
    perturbed_values = set(np.unique(samples[samples < 0]).tolist())
    assert perturbed_values == {-1.0, -2.0}


def test_mean_fill_uses_each_superpixels_mean():
    image = textured_image()
    predictor = IntactPredictor(image, [3])
    explain(predictor, image)
    samples = np.concatenate(predictor.seen[1:])
    cell = samples[:, GRID == 0]
    perturbed = cell[~np.all(cell == image[GRID == 0], axis=(1, 2))]
    np.testing.assert_allclose(perturbed, np.broadcast_to(image[GRID == 0].mean(axis=0), perturbed.shape), rtol=1e-5)


@pytest.mark.parametrize("dtype", [np.float64, np.uint8])
def test_predictor_receives_the_requested_dtype(dtype):
    image = (textured_image() * 255).astype(dtype)
    predictor = IntactPredictor(image, [2])
    explanation = AnchorImage(predictor, image.shape, dtype=dtype, segmentation_fn=grid_fn, seed=0).explain(image)
    assert {batch.dtype for batch in predictor.seen} == {np.dtype(dtype)}
    assert sorted(explanation.raw["feature"]) == [2]


def test_label_and_sigmoid_predictors():
    image = textured_image()
    intact = IntactPredictor(image, [9])
    labels = explain(lambda x: intact(x).argmax(axis=1), image)
    sigmoid = explain(lambda x: intact(x)[:, 1:] * 0.8 + 0.1, image)
    assert sorted(labels.raw["feature"]) == sorted(sigmoid.raw["feature"]) == [9]


def test_beam_search_finds_the_pair():
    image = textured_image()
    explanation = explain(IntactPredictor(image, [1, 14]), image, beam_size=3)
    assert sorted(explanation.raw["feature"]) == [1, 14]


def test_stop_on_first_returns_the_first_valid_anchor():
    image = textured_image()

    def either(images):
        intact = IntactPredictor(image, []).intact(images)
        holds = intact[:, 4] | (intact[:, 8] & intact[:, 9])
        return holds.astype(int)

    explanation = explain(either, image, stop_on_first=True)
    assert explanation.raw["feature"] == [4]


def test_max_anchor_size_returns_the_best_small_anchor_and_says_it_failed():
    image = textured_image()
    explanation = explain(IntactPredictor(image, [1, 14]), image, max_anchor_size=1)
    assert not explanation.success
    assert len(explanation.raw["feature"]) == 1 and explanation.raw["feature"][0] in (1, 14)
    assert explanation.precision < 0.95


def test_labels_are_relabelled_to_consecutive_integers():
    image = textured_image()
    gappy = (GRID * 10 + 7).astype(float)  # floats with gaps: 7, 17, ...
    predictor = IntactPredictor(image, [6])
    explanation = AnchorImage(predictor, image.shape, segmentation_fn=lambda im: gappy, seed=0).explain(image)
    np.testing.assert_array_equal(explanation.segments, GRID)
    assert sorted(explanation.raw["feature"]) == [6]


def test_seed_001_rectangular_superpixels_work_as_written():
    def superpixel(image, size=(4, 7)):
        segments = np.zeros([image.shape[0], image.shape[1]])
        row_idx, col_idx = np.where(segments == 0)
        for i, j in zip(row_idx, col_idx):
            segments[i, j] = int((image.shape[1] / size[1]) * (i // size[0]) + j // size[1])
        return segments

    image = np.random.default_rng(0).random((28, 28, 1)).astype(np.float32)
    explainer = AnchorImage(lambda x: x.reshape(len(x), -1)[:, :2], image.shape, segmentation_fn=superpixel)
    segments = explainer.generate_superpixels(image)
    assert segments.max() + 1 == len(np.unique(segments)) == 28
    explanation = explainer.explain(image, threshold=0.95, p_sample=0.8, seed=0)
    assert explanation.anchor.shape == image.shape


def test_scale_image_and_overlay_mask():
    image = np.array([[0.0, 1.0], [2.0, 4.0]])
    np.testing.assert_allclose(scale_image(image), [[0, 63.75], [127.5, 255]])
    np.testing.assert_allclose(scale_image(image, scale=(-1, 1)), [[-1, -0.5], [0, 1]])
    assert not scale_image(np.ones((2, 2))).any()
    explainer = AnchorImage(lambda x: np.zeros(len(x), int), (2, 2))
    segments = np.array([[0, 1], [1, 2]])
    np.testing.assert_array_equal(explainer.overlay_mask(image, segments, [1]), [[0, 63], [127, 0]])


def test_reset_predictor():
    image = textured_image()
    explainer = AnchorImage(IntactPredictor(image, [2]), image.shape, segmentation_fn=grid_fn, seed=0)
    explainer.reset_predictor(IntactPredictor(image, [11]))
    assert explainer.explain(image).raw["feature"] == [11]


# ---- bad input: a clear error, and no model call before it (but the constructor's probe) ------------------


class CountingPredictor:
    def __init__(self):
        self.calls = 0

    def __call__(self, images):
        self.calls += 1
        return np.zeros((len(images), 2))


@pytest.mark.parametrize("image, error, message", [
    (np.zeros((SIDE, SIDE + 1, 3), np.float32), ValueError, "expected image_shape"),
    (np.zeros((SIDE, SIDE), np.float32), ValueError, "expected image_shape"),
    (np.zeros((0, SIDE, 3), np.float32), ValueError, "empty"),
    (np.full((SIDE, SIDE, 3), np.nan, np.float32), ValueError, "NaN"),
    (np.zeros((SIDE, SIDE, 3), dtype=object), TypeError, "numbers"),
    ([[0.0]], TypeError, "numpy array"),
])
def test_bad_images(image, error, message):
    predictor = CountingPredictor()
    explainer = AnchorImage(predictor, (SIDE, SIDE, 3), segmentation_fn=grid_fn)
    with pytest.raises(error, match=message):
        explainer.explain(image)
    assert predictor.calls == 1  # the constructor's probe


@pytest.mark.parametrize("segments, message", [
    (np.zeros((SIDE, SIDE)), "1 superpixel"),
    (np.full((SIDE, SIDE), 0.5), "non-integer"),
    (np.zeros((SIDE, 3)), "shape"),
    (np.where(GRID > 3, np.nan, GRID), "NaN"),
])
def test_bad_segmentations(segments, message):
    predictor = CountingPredictor()
    explainer = AnchorImage(predictor, (SIDE, SIDE, 3), segmentation_fn=lambda image: segments)
    with pytest.raises(ValueError, match=message):
        explainer.explain(textured_image())
    assert predictor.calls == 1  # the constructor's probe


def test_segmentation_that_raises():
    def broken(image):
        raise RuntimeError("boom")

    with pytest.raises(ValueError, match="broken failed.*boom"):
        AnchorImage(CountingPredictor(), (SIDE, SIDE, 3), segmentation_fn=broken).explain(textured_image())


@pytest.mark.parametrize("output, message", [
    (lambda x: np.zeros((len(x) + 1, 2)), "shape"),
    (lambda x: np.zeros((len(x), 2, 2)), "shape"),
    (lambda x: np.full((len(x), 2), np.nan), "NaN"),
    (lambda x: np.full((len(x), 1), 3.0), r"outside \[0, 1\]"),
    (lambda x: np.full(len(x), 0.5), "non-integer"),
    (lambda x: "cat", "dtype"),
])
def test_predictor_returning_wrong_things(output, message):
    """The constructor calls the predictor once on a zero image, as alibi's does, and names what is wrong."""
    with pytest.raises(PredictorReturnTypeError, match="predictor.*" + message):
        AnchorImage(output, (SIDE, SIDE, 3), segmentation_fn=grid_fn)
    explainer = AnchorImage(lambda x: np.zeros((len(x), 2)), (SIDE, SIDE, 3), segmentation_fn=grid_fn)
    with pytest.raises(PredictorReturnTypeError, match="predictor.*" + message):
        explainer.reset_predictor(output)
    assert explainer.predictor(np.zeros((1, SIDE, SIDE, 3))).tolist() == [0]  # the previous predictor stays


def test_predictor_that_raises_is_named():
    def my_model(images):
        raise MemoryError("out of memory")

    with pytest.raises(PredictorCallError, match="my_model' raised MemoryError.*out of memory.*image_shape") as caught:
        AnchorImage(my_model, (SIDE, SIDE, 3), segmentation_fn=grid_fn)
    assert isinstance(caught.value, PredictorError) and isinstance(caught.value.__cause__, MemoryError)


def test_predictor_failing_after_the_probe_is_a_predictor_error_at_explain():
    image = textured_image()

    def fails_on_perturbed_images(images):
        if len(images) > 1:
            raise MemoryError("out of memory")
        return np.zeros((1, 2))

    def answers_wrongly_on_perturbed_images(images):
        return np.zeros((len(images), 2 if len(images) == 1 else 3, 1))

    with pytest.raises(PredictorCallError, match="fails_on_perturbed_images' raised MemoryError"):
        AnchorImage(fails_on_perturbed_images, image.shape, segmentation_fn=grid_fn).explain(image)
    with pytest.raises(PredictorReturnTypeError, match="answers_wrongly_on_perturbed_images' returned shape"):
        AnchorImage(answers_wrongly_on_perturbed_images, image.shape, segmentation_fn=grid_fn).explain(image)


def test_predictor_attribute_gives_labels_as_alibi_and_keeps_the_users_function():
    def probabilities(images):
        return np.stack([1 - images.mean(axis=(1, 2, 3)), images.mean(axis=(1, 2, 3))], axis=1)

    def sigmoid(images):
        return images.mean(axis=(1, 2, 3))[:, None]

    images = np.stack([np.zeros((SIDE, SIDE, 3)), np.full((SIDE, SIDE, 3), 0.8)])
    for function in (probabilities, sigmoid):
        explainer = AnchorImage(function, (SIDE, SIDE, 3), segmentation_fn=grid_fn)
        assert explainer.user_predictor is function
        labels = explainer.predictor(images)
        assert labels.shape == (2,) and labels.tolist() == [0, 1]
    explainer.reset_predictor(probabilities)
    assert explainer.user_predictor is probabilities and explainer.predictor(images).tolist() == [0, 1]


@pytest.mark.parametrize("kwargs, error, message", [
    ({"p_sample": 1.5}, ValueError, "p_sample"),
    ({"threshold": -0.1}, ValueError, "threshold"),
    ({"delta": 0}, ValueError, "delta"),
    ({"tau": 1.0}, ValueError, "tau"),
    ({"batch_size": 0}, ValueError, "batch_size"),
    ({"coverage_samples": 2.5}, TypeError, "coverage_samples"),
    ({"p_sample": "0.5"}, TypeError, "p_sample"),
    ({"max_anchor_size": True}, TypeError, "max_anchor_size"),
    ({"beam_size": 0}, ValueError, "beam_size"),
    ({"max_anchor_size": 0}, ValueError, "max_anchor_size"),
    ({"n_covered_ex": -1}, ValueError, "n_covered_ex"),
    ({"seed": -3}, ValueError, "seed"),
    ({"unknown": 1}, TypeError, "unknown"),
])
def test_bad_explain_arguments(kwargs, error, message):
    predictor = CountingPredictor()
    with pytest.raises(error, match=message):
        AnchorImage(predictor, (SIDE, SIDE, 3), segmentation_fn=grid_fn).explain(textured_image(), **kwargs)
    assert predictor.calls == 1  # the constructor's probe


@pytest.mark.parametrize("kwargs, error, message", [
    ({"image_shape": (SIDE,)}, ValueError, "image_shape"),
    ({"image_shape": "big"}, TypeError, "image_shape"),
    ({"dtype": str}, TypeError, "dtype"),
    ({"segmentation_fn": "watershed"}, ValueError, "segmentation_fn"),
    ({"segmentation_fn": grid_fn, "segmentation_kwargs": {"n_segments": 3}}, ValueError, "segmentation_kwargs"),
    ({"images_background": np.zeros((2, SIDE, SIDE))}, ValueError, "images_background"),
    ({"images_background": np.full((1, SIDE, SIDE, 3), np.nan)}, ValueError, "NaN"),
    ({"seed": 1.5}, TypeError, "seed"),
    ({"predictor": "model"}, TypeError, "callable"),
])
def test_bad_constructor_arguments(kwargs, error, message):
    predictor = CountingPredictor()
    arguments = {"predictor": predictor, "image_shape": (SIDE, SIDE, 3)} | kwargs
    with pytest.raises(error, match=message):
        AnchorImage(**arguments)
    assert predictor.calls == 0
