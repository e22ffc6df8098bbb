"""CAM weightings on numpy arrays, checked against their definitions written out loop by loop,
and the CAM explanation object."""
import io

import numpy as np
import pytest
from PIL import Image

import cam_textbook
from imgexplain.cam import methods
from imgexplain.cam.explanation import CAMExplanation, HeatmapArray, TargetExplanation


def _random_pair(seed=0, shape=(2, 3, 4, 5)):
    rng = np.random.default_rng(seed)
    activations = rng.random(shape)
    gradients = rng.normal(size=shape)
    return activations, gradients


def _normalized_by_hand(raw):
    out = np.zeros_like(raw)
    for n in range(raw.shape[0]):
        rectified = np.maximum(raw[n], 0)
        if rectified.max() > 0:
            out[n] = rectified / rectified.max()
    return out


def test_normalize_maps_rectifies_scales_and_keeps_zero_maps_zero():
    maps = np.array([[[-1.0, 2.0], [4.0, 0.0]], [[-3.0, -1.0], [0.0, -2.0]]])
    out = methods.normalize_maps(maps)
    np.testing.assert_array_equal(out[0], [[0.0, 0.5], [1.0, 0.0]])
    np.testing.assert_array_equal(out[1], np.zeros((2, 2)))
    assert not np.isnan(out).any()


def test_gradcam_on_a_hand_made_example():
    activations = np.zeros((1, 2, 2, 2))
    activations[0, :, :, 0] = [[1, 0], [0, 0]]
    activations[0, :, :, 1] = [[0, 0], [0, 2]]
    gradients = np.zeros((1, 2, 2, 2))
    gradients[0, :, :, 0] = 0.5      # mean 0.5
    gradients[0, :, :, 1] = [[1, -1], [0, -4]]   # mean -1
    # 0.5 * A0 - 1 * A1 = [[0.5, 0], [0, -2]] -> ReLU -> / 0.5
    np.testing.assert_allclose(methods.gradcam(activations, gradients)[0], [[1, 0], [0, 0]])


def test_gradcam_matches_its_definition():
    activations, gradients = _random_pair()
    raw = np.zeros(activations.shape[:3])
    for n in range(activations.shape[0]):
        for k in range(activations.shape[3]):
            raw[n] += gradients[n, :, :, k].mean() * activations[n, :, :, k]
    np.testing.assert_allclose(methods.gradcam(activations, gradients), _normalized_by_hand(raw))


def test_gradcam_plus_plus_matches_its_definition():
    activations, gradients = _random_pair(1)
    gradients[0, 0, 0, :] = 0.0   # zero gradients must give zero alphas, not NaN
    n_images, height, width, channels = activations.shape
    raw = np.zeros((n_images, height, width))
    for n in range(n_images):
        for k in range(channels):
            total = activations[n, :, :, k].sum()
            weight = 0.0
            for i in range(height):
                for j in range(width):
                    g = gradients[n, i, j, k]
                    denominator = 2 * g**2 + total * g**3
                    alpha = g**2 / denominator if denominator != 0 else 0.0
                    weight += alpha * max(g, 0.0)
            raw[n] += weight * activations[n, :, :, k]
    out = methods.gradcam_plus_plus(activations, gradients)
    np.testing.assert_allclose(out, _normalized_by_hand(raw), atol=1e-12)


def test_hirescam_and_layercam_match_their_definitions():
    activations, gradients = _random_pair(2)
    hires = np.zeros(activations.shape[:3])
    layer = np.zeros(activations.shape[:3])
    for n in range(activations.shape[0]):
        for k in range(activations.shape[3]):
            hires[n] += gradients[n, :, :, k] * activations[n, :, :, k]
            layer[n] += np.maximum(gradients[n, :, :, k], 0) * activations[n, :, :, k]
    np.testing.assert_allclose(methods.hirescam(activations, gradients), _normalized_by_hand(hires))
    np.testing.assert_allclose(methods.layercam(activations, gradients), _normalized_by_hand(layer))


def test_hirescam_differs_from_gradcam_when_gradients_vary_in_space():
    activations = np.ones((1, 1, 2, 1))
    gradients = np.array([1.0, -1.0]).reshape(1, 1, 2, 1)   # averages to zero
    np.testing.assert_array_equal(methods.gradcam(activations, gradients), [[[0.0, 0.0]]])
    np.testing.assert_array_equal(methods.hirescam(activations, gradients), [[[1.0, 0.0]]])


def test_scorecam_weights_are_a_softmax_over_channels():
    activations, _ = _random_pair(3)
    scores = np.random.default_rng(3).random((2, 5))
    raw = np.zeros(activations.shape[:3])
    for n in range(2):
        weights = np.exp(scores[n]) / np.exp(scores[n]).sum()
        for k in range(5):
            raw[n] += weights[k] * activations[n, :, :, k]
    np.testing.assert_allclose(methods.scorecam(activations, scores), _normalized_by_hand(raw))
    # A channel whose masked image scores far higher takes all the weight.
    dominant = np.array([[0.0, 0.0, 50.0, 0.0, 0.0]] * 2)
    expected = activations[..., 2] / activations[..., 2].max(axis=(1, 2), keepdims=True)
    np.testing.assert_allclose(methods.scorecam(activations, dominant), expected, atol=1e-12)


def test_eigencam_recovers_a_rank_one_activation_pattern():
    rng = np.random.default_rng(4)
    spatial = rng.random((3, 4))
    channel_loadings = rng.random(6) + 0.1
    activations = (spatial[:, :, None] * channel_loadings[None, None, :])[None]
    # Centred over positions, the pattern is spatial - its mean; rectified and scaled.
    expected = _normalized_by_hand((spatial - spatial.mean())[None])[0]
    np.testing.assert_allclose(methods.eigencam(activations)[0], expected, atol=1e-10)
    # The sign of a singular vector is arbitrary: the map must not come out inverted.
    flipped = methods.eigencam(np.concatenate([activations, 2 * activations]))
    np.testing.assert_allclose(flipped[1], expected, atol=1e-10)


def _registry_arguments(entry, activations, gradients):
    """The arguments after the activations that a method with ``entry.needs`` takes."""
    n_images, _, _, channels = activations.shape
    return {"gradients": (gradients,), "hessian": (gradients, 0.1 * gradients),
            "masked passes": (np.linspace(0, 1, n_images * channels).reshape(n_images, channels),),
            "ablation": (np.ones(n_images), np.linspace(0, 1, n_images * channels).reshape(n_images, channels)),
            "nothing": ()}[entry.needs]


def test_every_registered_method_keeps_float32_and_gives_maps_in_0_1():
    activations, gradients = (array.astype(np.float32) for array in _random_pair(5))
    for entry in methods.REGISTRY.values():
        if not entry.takes_layer:
            continue
        arguments = _registry_arguments(entry, activations, gradients)
        for eigen_smooth in (False, True):
            out = entry.function(activations, *arguments, eigen_smooth=eigen_smooth, **entry.options)
            assert out.dtype == np.float32 and out.shape == activations.shape[:3], entry.name
            assert 0 <= out.min() and out.max() <= 1, entry.name
    assert set(methods.METHODS) == {"gradcam", "gradcam++", "xgradcam", "hirescam", "gradcam-elementwise",
                                    "layercam", "eigengradcam", "segeigencam", "shapleycam", "scorecam",
                                    "ablationcam", "eigencam", "kpcacam", "fem", "randomcam", "fullgrad"}
    assert set(methods.NEEDS) >= {entry.needs for entry in methods.REGISTRY.values()}


def test_method_named_is_case_insensitive_and_rejects_unknown_names():
    assert methods.method_named("GradCAM++") is methods.REGISTRY["gradcam++"]
    with pytest.raises(ValueError, match="method must be one of"):
        methods.method_named("gradcam+++")
    with pytest.raises(TypeError, match="method must be one of"):
        methods.method_named(3)


# --- the explanation object ---------------------------------------------------------------


def _explanation():
    rng = np.random.default_rng(6)
    heatmaps = rng.random((2, 3, 4)).astype(np.float32)
    data = {
        "image": rng.integers(0, 256, (12, 16, 3), dtype=np.uint8),
        "heatmap": heatmaps[0],
        "targets": [{"target": 3, "score": 0.75, "heatmap": heatmaps[0]},
                    {"target": 1, "score": 0.125, "heatmap": heatmaps[1]}],
        "method": "gradcam",
        "layer": "conv",
    }
    return CAMExplanation(meta={"name": "CAM", "params": {"method": "gradcam"}}, data=data)


def test_explanation_attributes():
    explanation = _explanation()
    assert isinstance(explanation.image, Image.Image) and explanation.image.size == (16, 12)
    np.testing.assert_array_equal(np.asarray(explanation.image), explanation.data["image"])
    assert isinstance(explanation.heatmap, np.ndarray) and explanation.heatmap.shape == (3, 4)
    assert [t.target for t in explanation.targets] == [3, 1]
    assert explanation.targets[0].score == 0.75
    assert isinstance(explanation.targets[0], TargetExplanation)
    np.testing.assert_array_equal(explanation.targets[1].heatmap, explanation.data["targets"][1]["heatmap"])
    assert explanation.method == "gradcam" and explanation.layer == "conv"
    assert explanation["layer"] == "conv"


def test_explanation_json_round_trip_keeps_the_image_and_maps():
    explanation = _explanation()
    again = CAMExplanation.from_json(explanation.to_json())
    assert again == explanation
    np.testing.assert_array_equal(np.asarray(again.image), np.asarray(explanation.image))
    np.testing.assert_array_equal(again.targets[1].heatmap, explanation.targets[1].heatmap)


def test_explanation_plot_and_png_repr():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    explanation = _explanation()
    figure = explanation.plot()
    assert len(figure.axes) == 2   # the picture and its colour bar
    plt.close(figure)
    png = explanation._repr_png_()
    assert png.startswith(b"\x89PNG")
    assert Image.open(io.BytesIO(png)).size[0] > 16


def test_heatmap_array_acts_as_eli5_heatmap_image_and_as_an_array():
    heatmap = HeatmapArray(np.array([[0.0, 1.0], [0.5, 0.25]], dtype=np.float32))
    resized = heatmap.resize((6, 4))
    assert isinstance(resized, Image.Image) and resized.size == (6, 4) and resized.mode == "L"
    assert heatmap.to_image().getpixel((1, 0)) == 255
    assert heatmap._repr_png_().startswith(b"\x89PNG")
    doubled = heatmap * 2
    assert type(doubled) is np.ndarray and doubled.max() == 2.0
    assert type(heatmap.max()) is np.float32


def test_xgradcam_and_elementwise_match_their_definitions():
    activations, gradients = _random_pair(6)
    xgrad = np.zeros(activations.shape[:3])
    elementwise = np.zeros(activations.shape[:3])
    for n in range(activations.shape[0]):
        for k in range(activations.shape[3]):
            weight = (gradients[n, :, :, k] * activations[n, :, :, k]).sum() / activations[n, :, :, k].sum()
            xgrad[n] += weight * activations[n, :, :, k]
            elementwise[n] += np.maximum(gradients[n, :, :, k] * activations[n, :, :, k], 0)
    np.testing.assert_allclose(methods.xgradcam(activations, gradients), _normalized_by_hand(xgrad))
    np.testing.assert_allclose(methods.gradcam_elementwise(activations, gradients), _normalized_by_hand(elementwise))


def test_ablationcam_weights_are_relative_drops_and_zero_scores_give_zero_weights():
    weights = methods.ablationcam_weights(np.array([2.0, 0.0]), np.array([[1.0, 3.0], [1.0, -1.0]]))
    np.testing.assert_allclose(weights, [[0.5, -0.5], [0.0, 0.0]])


def test_resize_maps_is_bilinear_with_half_pixel_centres():
    maps = np.array([[[0.0, 1.0]]])
    # Width 2 -> 4: sample positions -0.25, 0.25, 0.75, 1.25, clamped at the edges.
    np.testing.assert_allclose(methods.resize_maps(maps, (1, 4)), [[[0.0, 0.25, 0.75, 1.0]]])


# --- the methods added with the registry, against tests/cam_textbook.py -------------------------


def test_eigengradcam_and_segeigencam_match_the_centred_principal_component():
    activations, gradients = _random_pair(7)
    for n in range(activations.shape[0]):
        np.testing.assert_allclose(methods.eigengradcam(activations, gradients)[n],
                                   cam_textbook.eigengradcam_map(activations[n], gradients[n]), atol=1e-10)
        np.testing.assert_allclose(methods.segeigencam(activations, gradients)[n],
                                   cam_textbook.segeigencam_map(activations[n], gradients[n]), atol=1e-10)


def test_shapleycam_weights_are_gradients_minus_half_the_hessian_product():
    activations, gradients = _random_pair(8)
    hessian_products = np.random.default_rng(9).normal(size=activations.shape)
    out = methods.shapleycam(activations, gradients, hessian_products)
    for n in range(activations.shape[0]):
        np.testing.assert_allclose(out[n], cam_textbook.shapleycam_map(activations[n], gradients[n],
                                                                       hessian_products[n]), atol=1e-10)
    # Without curvature ShapleyCAM is Grad-CAM.
    np.testing.assert_allclose(methods.shapleycam(activations, gradients, np.zeros_like(gradients)),
                               methods.gradcam(activations, gradients))


def test_fem_keeps_channels_by_the_k_sigma_rule():
    activations = np.random.default_rng(10).exponential(size=(2, 6, 6, 4))
    for k in (0.5, 2.0):
        out = methods.fem(activations, k=k)
        for n in range(2):
            np.testing.assert_allclose(out[n], cam_textbook.fem_map(activations[n], k), atol=1e-12)


def test_kpcacam_matches_kernel_pca_written_out():
    activations = np.random.default_rng(11).random((2, 3, 4, 5))
    out = methods.kpcacam(activations)
    for n in range(2):
        np.testing.assert_allclose(out[n], cam_textbook.kpca_sigmoid_map(activations[n]), atol=1e-8)


def test_kpcacam_with_a_linear_kernel_is_the_centred_principal_component():
    activations = np.random.default_rng(12).random((1, 4, 4, 3))
    linear = methods.kpcacam(activations, kernel="linear")[0]
    np.testing.assert_allclose(linear, cam_textbook.eigengradcam_map(activations[0], np.ones_like(activations[0])),
                               atol=1e-8)
    with pytest.raises(ValueError, match="kernel must be one of"):
        methods.kpcacam(activations, kernel="laplace")


def test_randomcam_is_seeded_and_weights_lie_in_minus_one_one():
    activations = np.random.default_rng(13).random((2, 3, 3, 4))
    first, again = methods.randomcam(activations, seed=3), methods.randomcam(activations, seed=3)
    np.testing.assert_array_equal(first, again)
    weights = np.random.default_rng(3).uniform(-1, 1, size=(2, 4))
    raw = np.einsum("nhwk,nk->nhw", activations, weights)
    np.testing.assert_allclose(first, _normalized_by_hand(raw))
    assert not np.array_equal(first, methods.randomcam(activations, seed=4))


def test_projections_treat_nan_activations_as_zero_and_leave_the_input_alone():
    activations, gradients = _random_pair(14)
    holed = activations.copy()
    holed[0, 1, 1, 2] = np.nan
    kept = holed.copy()
    filled = np.nan_to_num(holed)
    for function in (methods.eigencam, methods.kpcacam):
        out = function(holed)
        assert not np.isnan(out).any()
        np.testing.assert_allclose(out, function(filled))
    assert not np.isnan(methods.eigengradcam(holed, gradients)).any()
    np.testing.assert_array_equal(holed, kept)
