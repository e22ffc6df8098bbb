"""Covered examples kept as masks: the pictures they build, their size, and the JSON round trip."""
import json

import numpy as np
import pytest
from test_anchors import GRID, IntactPredictor, explain, grid_fn, textured_image

from imgexplain import AnchorImage, scale_image
from imgexplain.anchors.examples import CoveredExamples
from imgexplain.anchors.explanation import AnchorImageExplanation
from imgexplain.segmentation import superpixel_means


def _expected_picture(image, mask, fill):
    """The perturbed image of ``mask`` (True: the superpixel keeps its pixels), scaled as alibi's examples."""
    return scale_image(np.where(mask[GRID][..., None], image, fill.astype(image.dtype)))


def test_examples_are_the_perturbed_images_the_model_saw_stored_as_masks():
    image = textured_image()
    predictor = IntactPredictor(image, [1, 14])
    explanation = explain(predictor, image)
    fill = superpixel_means(image, GRID)
    seen = {np.concatenate(predictor.seen)[k].tobytes() for k in range(sum(map(len, predictor.seen)))}
    steps = explanation.raw["examples"]
    assert len(steps) == len(explanation.raw["feature"]) == 2
    for step in steps:
        for kind, held in (("covered_true", True), ("covered_false", False)):
            examples = step[kind]
            assert isinstance(examples, CoveredExamples) and len(examples) <= 10
            assert examples.masks.dtype == bool and examples.masks.shape == (len(examples), 16)
            for mask, picture in zip(examples.masks, examples):
                np.testing.assert_array_equal(picture, _expected_picture(image, mask, fill))
                assert np.where(mask[GRID][..., None], image, fill).astype(np.float32).tobytes() in seen
                assert mask[[1, 14]].all() == held
    assert len(steps[-1]["covered_true"]) == 10 and len(steps[0]["covered_false"]) > 0
    stacked = np.asarray(steps[-1]["covered_true"])
    assert stacked.shape == (len(steps[-1]["covered_true"]), 32, 32, 3) and stacked.dtype == np.float64


def test_examples_of_a_large_image_take_bytes_not_megabytes():
    side = 512
    image = np.random.default_rng(0).random((side, side, 3)).astype(np.float32)
    segments = (np.arange(side)[:, None] // 128) * 4 + np.arange(side)[None, :] // 128

    def predictor(images):
        held = np.all(images[:, :128, :128] == image[:128, :128], axis=(1, 2, 3))
        return np.stack([~held, held], axis=1).astype(np.float32)

    explanation = AnchorImage(predictor, image.shape, segmentation_fn=lambda _: segments, seed=0).explain(image)
    stored = sum(examples.masks.nbytes + examples.backgrounds.nbytes
                 for step in explanation.raw["examples"] for examples in step.values()
                 if isinstance(examples, CoveredExamples))
    assert 0 < stored < 10_000  # alibi's 10 float64 pictures per kind would be 63 MB per step
    assert len(explanation.to_json()) < 4 * image.nbytes  # the instance, the anchor and the segments, compressed


def test_json_round_trip_keeps_every_example_and_is_small():
    image = textured_image()
    explanation = explain(IntactPredictor(image, [6]), image)
    text = explanation.to_json()
    assert len(text) < 200_000
    restored = AnchorImageExplanation.from_json(text)
    assert restored == explanation and restored.to_json() == text
    for before, after in zip(explanation.raw["examples"], restored.raw["examples"]):
        np.testing.assert_array_equal(np.asarray(after["covered_true"]), np.asarray(before["covered_true"]))
        np.testing.assert_array_equal(np.asarray(after["covered_false"]), np.asarray(before["covered_false"]))
    np.testing.assert_array_equal(restored.anchor, explanation.anchor)
    assert restored.segments.dtype == explanation.segments.dtype
    tags = json.loads(text)["data"]["raw"]["examples"][0]["covered_true"]
    assert set(tags) == {"__covered_examples__"}


def test_examples_of_background_images_come_back_as_masks_with_a_clear_error_for_pictures():
    image = textured_image()
    backgrounds = np.stack([np.zeros_like(image), np.ones_like(image)])
    explainer = AnchorImage(IntactPredictor(image, [6]), image.shape, segmentation_fn=grid_fn,
                            images_background=backgrounds, seed=0)
    explanation = explainer.explain(image)
    examples = explanation.raw["examples"][0]["covered_false"]
    for mask, background, picture in zip(examples.masks, examples.backgrounds, examples):
        np.testing.assert_array_equal(picture, _expected_picture(image, mask, backgrounds[background]))
    restored = AnchorImageExplanation.from_json(explanation.to_json())
    again = restored.raw["examples"][0]["covered_false"]
    np.testing.assert_array_equal(again.masks, examples.masks)
    with pytest.raises(ValueError, match="background images are not saved in JSON"):
        again[0]
