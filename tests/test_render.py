"""Heatmap colouring, overlays and format_as_image."""
import matplotlib.cm
import numpy as np
import pytest
from PIL import Image

from imgexplain.cam.explanation import CAMExplanation
from imgexplain.render import colorize_heatmap, format_as_image, overlay_heatmap


def _explanation(heatmap, image_size=(20, 10), colour=(40, 80, 120), n_targets=1):
    width, height = image_size
    image = np.zeros((height, width, 3), dtype=np.uint8)
    image[:] = colour
    targets = [{"target": 0, "score": 0.5, "heatmap": heatmap}] * n_targets
    return CAMExplanation(meta={"name": "CAM"}, data={"image": image, "heatmap": heatmap, "targets": targets,
                                                      "method": "gradcam", "layer": "conv"})


def test_colorize_uses_the_colormap_and_caps_alpha_at_the_heat():
    heatmap = np.array([[0.0, 0.3], [0.7, 1.0]])
    rgba = colorize_heatmap(heatmap, colormap=matplotlib.cm.viridis, alpha_limit=0.65)
    np.testing.assert_allclose(rgba[..., :3], matplotlib.cm.viridis(heatmap)[..., :3])
    np.testing.assert_allclose(rgba[..., 3], [[0.0, 0.3], [0.65, 0.65]])
    np.testing.assert_allclose(colorize_heatmap(heatmap, alpha_limit=None)[..., 3], heatmap)


def test_alpha_limit_on_eli5s_first_0_to_255_scale():
    heatmap = np.array([[0.2, 1.0]])
    # Seed 003 passes alpha_limit=255. for a fully opaque heatmap.
    np.testing.assert_allclose(colorize_heatmap(heatmap, alpha_limit=255.)[..., 3], [[0.2, 1.0]])
    np.testing.assert_allclose(colorize_heatmap(heatmap, alpha_limit=51)[..., 3], [[0.2, 0.2]])


@pytest.mark.parametrize("alpha_limit, error", [(-0.1, ValueError), (256, ValueError),
                                                ("0.5", TypeError), (True, TypeError)])
def test_bad_alpha_limit(alpha_limit, error):
    with pytest.raises(error, match="alpha_limit"):
        colorize_heatmap(np.zeros((2, 2)), alpha_limit=alpha_limit)


def test_colormap_by_name_and_bad_colormaps():
    heatmap = np.array([[0.0, 1.0]])
    np.testing.assert_allclose(colorize_heatmap(heatmap, colormap="cividis")[..., :3],
                               matplotlib.cm.cividis(heatmap)[..., :3])
    with pytest.raises(ValueError, match="not a matplotlib colormap"):
        colorize_heatmap(heatmap, colormap="no-such-map")
    with pytest.raises(TypeError, match="colormap"):
        colorize_heatmap(heatmap, colormap=3)
    with pytest.raises(ValueError, match="colormap must map"):
        colorize_heatmap(heatmap, colormap=lambda values: values)


@pytest.mark.parametrize("heatmap, error, match", [
    ([[0.5]], TypeError, "numpy array"),
    (np.zeros((2, 2, 2)), ValueError, "2-D"),
    (np.array([[0, 1]]), TypeError, "floats"),
    (np.array([[0.0, 1.5]]), ValueError, r"\[0, 1\]"),
    (np.array([[0.0, np.nan]]), ValueError, "finite"),
])
def test_bad_heatmaps(heatmap, error, match):
    with pytest.raises(error, match=match):
        colorize_heatmap(heatmap)


def test_overlay_composites_at_the_image_size():
    heat, cap, colour = 0.8, 0.65, np.array([40, 80, 120])
    image = Image.new("RGB", (20, 10), tuple(colour))
    out = overlay_heatmap(image, np.full((2, 4), heat), alpha_limit=cap, resampling_filter=Image.NEAREST)
    assert out.size == (20, 10) and out.mode == "RGBA"
    heat_colour = np.round(np.asarray(matplotlib.cm.viridis(heat)[:3]) * 255)
    alpha = np.round(cap * 255) / 255
    expected = heat_colour * alpha + colour * (1 - alpha)
    np.testing.assert_allclose(np.asarray(out)[..., :3], np.broadcast_to(expected, (10, 20, 3)), atol=1)
    assert np.all(np.asarray(out)[..., 3] == 255)


def test_cold_pixels_leave_the_image_untouched_and_hot_ones_do_not():
    heatmap = np.zeros((2, 2))
    heatmap[0, 0] = 1.0
    image = Image.new("RGB", (8, 8), (40, 80, 120))
    out = np.asarray(overlay_heatmap(image, heatmap, resampling_filter=Image.NEAREST))
    np.testing.assert_array_equal(out[4:, 4:, :3], np.full((4, 4, 3), (40, 80, 120)))
    assert not np.array_equal(out[:4, :4, :3], np.full((4, 4, 3), (40, 80, 120)))


def test_overlay_accepts_uint8_arrays_and_rejects_other_images():
    out = overlay_heatmap(np.zeros((6, 9, 3), dtype=np.uint8), np.ones((3, 3)))
    assert out.size == (9, 6)
    with pytest.raises(ValueError, match="uint8"):
        overlay_heatmap(np.zeros((6, 9, 3)), np.ones((3, 3)))
    with pytest.raises(TypeError, match="PIL"):
        overlay_heatmap([[0]], np.ones((3, 3)))


def test_format_as_image_draws_the_first_target_at_the_image_size():
    heatmap = np.linspace(0, 1, 12).reshape(3, 4)
    explanation = _explanation(heatmap)
    out = format_as_image(explanation)
    assert isinstance(out, Image.Image) and out.size == (20, 10) and out.mode == "RGBA"
    expected = overlay_heatmap(explanation.image, heatmap)
    np.testing.assert_array_equal(np.asarray(out), np.asarray(expected))
    opaque = format_as_image(explanation, alpha_limit=1.0, colormap=matplotlib.cm.cividis,
                             resampling_filter=Image.BILINEAR)
    assert not np.array_equal(np.asarray(opaque), np.asarray(out))


def test_format_as_image_without_targets_returns_the_image():
    explanation = _explanation(np.zeros((2, 2)), n_targets=0)
    out = format_as_image(explanation)
    assert out.mode == "RGBA"
    np.testing.assert_array_equal(np.asarray(out)[..., :3], np.asarray(explanation.image))


def test_format_as_image_rejects_what_is_not_an_explanation():
    with pytest.raises(TypeError, match="no .image"):
        format_as_image(object())

    class NoPicture:
        image = np.zeros((4, 4, 3), dtype=np.uint8)
        targets = []

    with pytest.raises(TypeError, match="PIL"):
        format_as_image(NoPicture())
