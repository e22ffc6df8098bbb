"""pytorch-grad-cam's metrics (imgexplain.cam.metrics): the imputation against its equations written
out pixel by pixel, the confidence changes against scores computed by hand, ROAD's removed pixels."""
import numpy as np
import pytest
import torch
from torch import nn

from imgexplain.cam.metrics import (NEIGHBOUR_WEIGHTS, CamMultImageConfidenceChange, DropInConfidence,
                                    IncreaseInConfidence, NoisyLinearImputer, ROADCombined, ROADLeastRelevantFirst,
                                    ROADLeastRelevantFirstAverage, ROADMostRelevantFirst, ROADMostRelevantFirstAverage)
from imgexplain.targets import ClassifierOutputTarget


def _linear_model(weights):
    """Class 0's score is sum(weights * image); class 1's is its negative."""
    model = nn.Sequential(nn.Flatten(), nn.Linear(weights.size, 2, bias=False))
    with torch.no_grad():
        model[1].weight.copy_(torch.as_tensor(np.stack([weights.ravel(), -weights.ravel()])))
    return model.eval()


def test_imputed_pixels_are_the_weighted_mean_of_their_neighbours():
    rng = np.random.default_rng(0)
    image = rng.random((2, 6, 7))
    keep = (rng.random((6, 7)) > 0.4).astype(np.float32)
    kept = image.copy()
    filled = NoisyLinearImputer(noise=0.0)(image, keep)
    np.testing.assert_array_equal(image, kept)
    np.testing.assert_array_equal(filled[:, keep > 0], image[:, keep > 0])
    for row, column in zip(*np.nonzero(keep == 0)):
        total, weights = np.zeros(2), 0.0
        for (down, right), weight in NEIGHBOUR_WEIGHTS.items():
            if 0 <= row + down < 6 and 0 <= column + right < 7:
                total += weight * filled[:, row + down, column + right]
                weights += weight
        np.testing.assert_allclose(filled[:, row, column], total / weights, atol=1e-10)


def test_imputation_noise_is_seeded_and_has_the_given_spread():
    image = np.zeros((1, 40, 40))
    keep = np.zeros((40, 40))
    keep[0] = 1                                        # one known row of zeros: the solution is zero
    first = NoisyLinearImputer(noise=0.5, seed=3)(image, keep)
    np.testing.assert_array_equal(first, NoisyLinearImputer(noise=0.5, seed=3)(image, keep))
    assert abs(first[0, 1:].std() - 0.5) < 0.05


def test_cam_mult_confidence_change_is_the_score_of_the_multiplied_image_minus_the_score():
    rng = np.random.default_rng(1)
    weights = rng.normal(size=(1, 4, 5))
    images = rng.random((3, 1, 4, 5)).astype(np.float32)
    cams = rng.random((3, 4, 5)).astype(np.float32)
    targets = [ClassifierOutputTarget(0), ClassifierOutputTarget(1), ClassifierOutputTarget(0)]
    model = _linear_model(weights)
    signs = np.array([1, -1, 1])
    before = (images[:, 0] * weights[0]).sum(axis=(1, 2))
    expected = signs * ((images[:, 0] * cams * weights[0]).sum(axis=(1, 2)) - before)
    change = CamMultImageConfidenceChange()(torch.as_tensor(images), cams, targets, model)
    np.testing.assert_allclose(change, expected, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(DropInConfidence()(torch.as_tensor(images), cams, targets, model),
                               np.maximum(-expected, 0), rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(IncreaseInConfidence()(torch.as_tensor(images), cams, targets, model),
                                  np.float32(expected > 0))
    with pytest.raises(ValueError, match="one map per image"):
        CamMultImageConfidenceChange()(torch.as_tensor(images), cams[:, :2], targets, model)


def test_road_removes_the_most_or_least_relevant_pixels_by_percentile():
    images = torch.as_tensor(np.arange(1.0, 17.0, dtype=np.float32).reshape(1, 1, 4, 4) ** 2)
    cams = np.linspace(0, 1, 16, dtype=np.float32).reshape(1, 4, 4)
    model = _linear_model(np.ones((1, 4, 4)))
    targets = [ClassifierOutputTarget(0)]
    for metric, changed in ((ROADMostRelevantFirst(75, noise=0.0), cams[0] >= np.percentile(cams, 75)),
                            (ROADLeastRelevantFirst(75, noise=0.0), 1 - cams[0] >= np.percentile(1 - cams, 75))):
        _, perturbed = metric(images, cams, targets, model, return_visualization=True)
        assert np.count_nonzero(changed) == 4
        np.testing.assert_array_equal(perturbed[0, 0][~changed], images.numpy()[0, 0][~changed])
        assert np.all(perturbed[0, 0][changed] != images.numpy()[0, 0][changed])


def test_road_averages_and_combined():
    rng = np.random.default_rng(2)
    images = torch.as_tensor(rng.random((2, 1, 5, 5)).astype(np.float32))
    cams = rng.random((2, 5, 5)).astype(np.float32)
    model = _linear_model(rng.normal(size=(1, 5, 5)))
    targets = [ClassifierOutputTarget(0)] * 2
    most = [ROADMostRelevantFirst(p, noise=0.0)(images, cams, targets, model) for p in (30, 70)]
    least = [ROADLeastRelevantFirst(p, noise=0.0)(images, cams, targets, model) for p in (30, 70)]
    np.testing.assert_allclose(ROADMostRelevantFirstAverage([30, 70], noise=0.0)(images, cams, targets, model),
                               np.mean(most, axis=0), rtol=1e-6)
    np.testing.assert_allclose(ROADLeastRelevantFirstAverage([30, 70], noise=0.0)(images, cams, targets, model),
                               np.mean(least, axis=0), rtol=1e-6)
    np.testing.assert_allclose(ROADCombined([30, 70], noise=0.0)(images, cams, targets, model),
                               (np.mean(least, axis=0) - np.mean(most, axis=0)) / 2, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="percentile"):
        ROADMostRelevantFirst(120)
