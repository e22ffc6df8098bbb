"""AnchorImage under hostile predictors and large images: predictors that write to their input, random models,
and batches bounded in bytes."""
import logging

import numpy as np
import pytest
from test_anchors import IntactPredictor, explain, textured_image

import imgexplain.predictor
from imgexplain import AnchorImage, evaluate
from imgexplain.segmentation import grid_segments

TRUE_ANCHOR = [1, 14]


def same_explanation(first, second):
    assert first.raw["feature"] == second.raw["feature"]
    assert first.precision == second.precision and first.coverage == second.coverage
    assert first.success == second.success
    np.testing.assert_array_equal(first.anchor, second.anchor)
    for kind in ("covered_true", "covered_false"):
        for step_a, step_b in zip(first.raw["examples"], second.raw["examples"]):
            np.testing.assert_array_equal(np.asarray(step_a[kind]), np.asarray(step_b[kind]))


class ScalingPredictor(IntactPredictor):
    """The model of an image in 0..255 that scales its input to 0..1 first, optionally in place."""

    def __init__(self, image, needed, in_place):
        super().__init__(image / 255, needed)
        self.in_place = in_place

    def __call__(self, images):
        if self.in_place:
            images /= 255
        else:
            images = images / 255
        return super().__call__(images)


def test_a_predictor_that_scales_its_input_in_place_changes_nothing():
    image = textured_image() * 255
    original = image.copy()
    clean = explain(ScalingPredictor(image, TRUE_ANCHOR, in_place=False), image)
    mutating = explain(ScalingPredictor(image, TRUE_ANCHOR, in_place=True), image)
    np.testing.assert_array_equal(image, original)
    assert sorted(mutating.raw["feature"]) == TRUE_ANCHOR and mutating.precision == 1.0
    same_explanation(mutating, clean)
    np.testing.assert_array_equal(mutating.raw["instance"], original)


def test_a_predictor_that_overwrites_its_input_cannot_corrupt_the_memo():
    image = textured_image()
    reference = explain(IntactPredictor(image, TRUE_ANCHOR), image)
    inner = IntactPredictor(image, TRUE_ANCHOR)

    def vandal(images):
        labels = inner(images)
        images[:] = 0
        return labels

    same_explanation(explain(vandal, image), reference)


def test_evaluate_gives_the_predictor_a_copy_of_the_callers_image():
    image = textured_image() * 255
    original = image.copy()
    explanation = explain(ScalingPredictor(image, TRUE_ANCHOR, in_place=False), image)
    saliency = evaluate.saliency_from_anchor(explanation)
    results = []
    for in_place in (False, True):
        predictor = ScalingPredictor(image, TRUE_ANCHOR, in_place)
        results.append((
            evaluate.anchor_precision(predictor, image, explanation, n=300, seed=0),
            evaluate.deletion_curve(predictor, image, saliency, segments=explanation.segments, seed=0).scores,
        ))
        np.testing.assert_array_equal(image, original)
    assert results[1][0] == results[0][0] and results[0][0]["precision"] == 1.0
    np.testing.assert_array_equal(results[1][1], results[0][1])


def coin_flip(seed):
    rng = np.random.default_rng(seed)

    def predictor(images):
        p = rng.random(len(images))
        return np.stack([p, 1 - p], axis=1)

    return predictor


SMALL_IMAGE = textured_image()[:24, :24]
SMALL_GRID = grid_segments((24, 24), (8, 8))  # 9 superpixels: a random model takes the search to every size


def explain_small(predictor, **kwargs):
    explainer = AnchorImage(predictor, SMALL_IMAGE.shape, segmentation_fn=lambda _: SMALL_GRID,
                            seed=kwargs.pop("seed", 0))
    return explainer.explain(SMALL_IMAGE, **kwargs)


def test_a_coin_flip_model_never_gets_a_confident_anchor(caplog):
    for seed in range(20):
        with caplog.at_level(logging.WARNING, logger="imgexplain.anchors.sampler"):
            explanation = explain_small(coin_flip(1000 + seed), seed=seed)
        assert not (explanation.success and explanation.precision > 0.75), seed
        assert explanation.raw["nondeterministic"] and not explanation.raw["memo_used"]
        assert "not deterministic" in caplog.text
        caplog.clear()


def test_declared_deterministic_trusts_the_memo_and_declared_random_never_uses_it():
    # The false confidence that the check prevents: a memo of coin flips claims a sure anchor.
    trusted = explain_small(coin_flip(0), deterministic=True)
    assert trusted.success and trusted.precision == 1.0 and trusted.raw["memo_used"]
    assert trusted.raw["determinism_checks"] == 0
    declared = explain_small(coin_flip(0), deterministic=False)
    assert not declared.success and declared.raw["nondeterministic"]
    assert declared.raw["samples_from_memo"] == 0 and declared.raw["determinism_checks"] == 0
    assert declared.raw["num_preds"] == declared.raw["n_samples"] + 1


def test_a_model_with_rare_flips_is_caught_by_the_checks_of_later_calls():
    image = textured_image()
    caught = 0
    for seed in range(20):
        rng = np.random.default_rng(seed)
        deterministic_part = IntactPredictor(image, TRUE_ANCHOR)

        def rarely_flipping(images):
            scores = deterministic_part(images)
            flipped = rng.random(len(images)) < 0.05
            scores[flipped] = scores[flipped, ::-1]
            return scores

        explanation = explain(rarely_flipping, image, seed=seed)
        caught += explanation.raw["nondeterministic"]
    assert caught >= 15  # the first call's check alone catches about a third


def test_checks_change_nothing_for_a_deterministic_model(caplog):
    image = textured_image()
    explanations = {}
    for deterministic in (None, True, False):
        with caplog.at_level(logging.WARNING, logger="imgexplain.anchors.sampler"):
            explanations[deterministic] = explain(IntactPredictor(image, [0, 5, 10]), image, seed=3,
                                                  deterministic=deterministic)
    assert caplog.text == ""
    checked = explanations[None].raw
    assert checked["memo_used"] and not checked["nondeterministic"] and checked["determinism_checks"] > 0
    same_explanation(explanations[None], explanations[True])
    same_explanation(explanations[None], explanations[False])
    assert explanations[None].meta["params"]["deterministic"] is None


@pytest.mark.parametrize("value", [1, "yes", 0.0])
def test_deterministic_must_be_none_or_a_bool(value):
    image = textured_image()
    with pytest.raises(TypeError, match="deterministic must be None, True or False"):
        explain(IntactPredictor(image, TRUE_ANCHOR), image, deterministic=value)


class BatchRecorder(IntactPredictor):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.batch_sizes = []

    def __call__(self, images):
        self.batch_sizes.append(len(images))
        return super().__call__(images)


@pytest.mark.parametrize("backgrounds", [False, True])
def test_batches_bounded_in_bytes_give_the_same_anchor(monkeypatch, backgrounds):
    image = textured_image()
    kwargs = {}
    if backgrounds:
        kwargs["images_background"] = np.random.default_rng(5).random((3,) + image.shape).astype(np.float32)
    results = {}
    for limit in (None, 3 * image.nbytes):
        if limit:
            monkeypatch.setattr(imgexplain.predictor, "MAX_BATCH_BYTES", limit)
        predictor = BatchRecorder(image, TRUE_ANCHOR)
        explainer = AnchorImage(predictor, image.shape, segmentation_fn=lambda _: grid_segments((32, 32), (8, 8)),
                                seed=0, **kwargs)
        results[limit] = explainer.explain(image), predictor.batch_sizes
    (unlimited, unlimited_sizes), (chunked, chunked_sizes) = results.values()
    same_explanation(chunked, unlimited)
    assert chunked_sizes[0] == unlimited_sizes[0] == 1  # the constructor's probe, as alibi's
    assert chunked.raw["num_preds"] == unlimited.raw["num_preds"] == sum(chunked_sizes[1:])
    assert max(chunked_sizes) == 2 and max(unlimited_sizes) > 100


def test_evaluate_in_batches_bounded_in_bytes_gives_the_same_numbers(monkeypatch):
    image = textured_image()
    explanation = explain(IntactPredictor(image, TRUE_ANCHOR), image)
    saliency = evaluate.saliency_from_anchor(explanation)
    backgrounds = np.random.default_rng(5).random((3,) + image.shape).astype(np.float32)
    results = []
    for limit in (None, 2 * image.nbytes):
        if limit:
            monkeypatch.setattr(imgexplain.predictor, "MAX_BATCH_BYTES", limit)
        predictor = BatchRecorder(image, TRUE_ANCHOR)
        results.append((
            evaluate.anchor_precision(predictor, image, explanation, n=200, seed=1),
            evaluate.anchor_precision(predictor, image, explanation, n=200, seed=1, images_background=backgrounds),
            evaluate.insertion_curve(predictor, image, saliency, segments=explanation.segments, seed=0).scores,
            evaluate.deletion_curve(predictor, image, np.arange(32 * 32).reshape(32, 32) % 7,
                                    steps=20).scores,
        ))
        results[-1] += (max(predictor.batch_sizes),)
    (*unlimited, unlimited_largest), (*chunked, chunked_largest) = results
    assert chunked[:2] == unlimited[:2]
    for chunked_scores, unlimited_scores in zip(chunked[2:], unlimited[2:]):
        np.testing.assert_array_equal(chunked_scores, unlimited_scores)
    assert chunked_largest == 1 and unlimited_largest > 10
