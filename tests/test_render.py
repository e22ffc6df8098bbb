"""Heatmap colouring, overlays and format_as_image."""
import ast
from pathlib import Path

import matplotlib.cm
import numpy as np
import pytest
from PIL import Image

import imgexplain
from imgexplain.cam.explanation import CAMExplanation
from imgexplain.render import colorize_heatmap, expand_heatmap, format_as_image, heatmap_to_image, overlay_heatmap


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
        colorize_heatmap(heatmap, colormap=3.5)
    with pytest.raises(ValueError, match="not an OpenCV colormap"):
        colorize_heatmap(heatmap, colormap=99)
    np.testing.assert_allclose(colorize_heatmap(heatmap, colormap=16)[..., :3],     # cv2.COLORMAP_VIRIDIS
                               matplotlib.cm.viridis(heatmap)[..., :3])
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


# --- show_cam_on_image ----------------------------------------------------------------------------------


def test_show_cam_on_image_follows_its_definition_for_float_and_uint8_images():
    from imgexplain.render import show_cam_on_image

    rng = np.random.default_rng(0)
    image = rng.random((6, 8, 3))
    mask = rng.random((6, 8))
    colours = matplotlib.colormaps["jet"](mask)[..., :3]
    blended = 0.7 * colours + 0.3 * image
    expected = np.round(blended / blended.max() * 255).astype(np.uint8)
    np.testing.assert_array_equal(show_cam_on_image(image, mask, colormap="jet", image_weight=0.3), expected)
    bgr = show_cam_on_image(image, mask, use_rgb=False, colormap="jet", image_weight=0.3)
    np.testing.assert_array_equal(bgr, expected[..., ::-1])
    pixels = np.round(image * 255).astype(np.uint8)
    np.testing.assert_array_equal(show_cam_on_image(pixels, mask), show_cam_on_image(pixels / 255.0, mask))
    assert show_cam_on_image(image[..., 0], mask).shape == (6, 8, 3)
    small = show_cam_on_image(image, mask[::2, ::2])      # resized to the image
    np.testing.assert_array_equal(show_cam_on_image(image, mask), show_cam_on_image(image, mask, colormap=2))
    assert small.shape == (6, 8, 3) and small.dtype == np.uint8


@pytest.mark.parametrize("image, mask, error, match", [
    (np.full((4, 4, 3), 2.0), np.zeros((4, 4)), ValueError, r"\[0, 1\]"),
    (np.zeros((4, 4, 3), dtype=np.int64), np.zeros((4, 4)), TypeError, "uint8"),
    (np.zeros((4, 4, 2)), np.zeros((4, 4)), ValueError, "shape"),
    (np.zeros((4, 4, 3)), np.full((4, 4), 1.5), ValueError, r"\[0, 1\]"),
    (np.zeros((4, 4, 3)), np.zeros((4, 4)), ValueError, "image_weight"),
])
def test_show_cam_on_image_rejects_bad_input(image, mask, error, match):
    from imgexplain.render import show_cam_on_image

    with pytest.raises(error, match=match):
        show_cam_on_image(image, mask, image_weight=1.5 if match == "image_weight" else 0.5)


# --- figures ---------------------------------------------------------------------------------------------


def test_plots_are_pyplot_figures_with_class_names_that_jupyter_shows_once(tmp_path, monkeypatch):
    import types

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from imgexplain import render

    registered = {}

    class Formatter:
        def for_type(self, cls, printer):
            registered[cls] = printer

    shell = types.SimpleNamespace(display_formatter=types.SimpleNamespace(formatters={"image/png": Formatter()}))
    monkeypatch.setattr(render.figures, "_ipython_shell", lambda: shell)
    heatmap = np.linspace(0, 1, 12).reshape(3, 4)
    figure = _explanation(heatmap).plot(labels={0: "tabby"})
    assert plt.gcf() is figure and "tabby (0)" in figure.axes[0].get_title()
    plt.savefig(tmp_path / "cam.png")
    assert (tmp_path / "cam.png").stat().st_size > 0
    # As a notebook cell's value, the figure is drawn once and leaves pyplot, so the inline backend,
    # which shows pyplot's open figures at the end of the cell, does not show it again.
    png = registered[type(figure)](figure)
    assert png.startswith(b"\x89PNG") and not plt.fignum_exists(figure.number)


def test_enlarging_and_the_overlay_colour_bar_refuse_bad_sizes():
    from imgexplain import render

    with pytest.raises(ValueError, match="min_side must be a positive integer; got 0"):
        render.enlarged(np.zeros((2, 2)), min_side=0)
    with pytest.raises(ValueError, match=r"picture: expected an \(H, W\) or \(H, W, C\) array"):
        render.enlarged(np.zeros(3))
    with pytest.raises(TypeError, match="steps must be an integer"):
        render.overlay_colormap("gray", steps=2.5)


def test_the_cam_plot_of_a_small_image_is_enlarged_without_blurring():
    from imgexplain import render

    explanation = _explanation(np.array([[0.0, 1.0]]), image_size=(20, 10))  # 20 x 10 pixels
    shown = render.plot_cam(explanation).axes[0].get_images()[0]
    assert shown.get_array().shape == (23 * 10, 23 * 20, 4) and shown.get_interpolation() == "nearest"
    bar = render.plot_cam(explanation).axes[1]._colorbar.cmap  # the colour bar: the overlay's opacity
    assert bar(0.0)[3] == 0.0 and bar(1.0)[3] == pytest.approx(0.65, abs=0.01)


def test_anchor_plot_is_a_pyplot_figure_numbering_the_anchor_superpixels():
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from imgexplain.explanation import Explanation
    from imgexplain.render import plot_anchor

    image = np.random.default_rng(0).integers(0, 255, (40, 60, 3), dtype=np.uint8)
    segments = np.repeat(np.arange(3), 20)[None, :].repeat(40, axis=0)
    explanation = Explanation(meta={"name": "AnchorImage"}, data={
        "segments": segments, "precision": 0.97, "coverage": 0.31,
        "raw": {"instance": image, "feature": [2, 0], "prediction": np.array([1])}})
    figure = plot_anchor(explanation, labels=["cat", "dog"])
    assert plt.gcf() is figure
    assert figure.axes[0].get_title() == "image, predicted dog (1)"
    numbers = sorted(text.get_text() for text in figure.axes[1].texts)
    assert numbers == ["0", "2"]
    plt.close(figure)


def test_only_render_imports_matplotlib():
    """Drawing lives in imgexplain/render/: no module outside it imports matplotlib."""
    package = Path(imgexplain.__file__).parent
    importers = []
    for path in sorted(package.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = ([alias.name for alias in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            if any(name.split(".")[0] == "matplotlib" for name in names):
                importers.append(path.relative_to(package).as_posix())
    assert importers and all(path.startswith("render/") for path in importers)


@pytest.mark.parametrize("shape, mode", [((2, 3), "L"), ((2, 3, 3), "RGB"), ((2, 3, 4), "RGBA")])
def test_heatmap_to_image_for_every_heatmap_eli5_takes(shape, mode):
    heatmap = np.linspace(0, 1, int(np.prod(shape))).reshape(shape)
    kept = heatmap.copy()
    picture = heatmap_to_image(heatmap)
    assert picture.mode == mode and picture.size == (3, 2)
    np.testing.assert_array_equal(np.asarray(picture), np.round(heatmap * 255).astype(np.uint8))
    np.testing.assert_array_equal(heatmap, kept)
    expanded = expand_heatmap(heatmap, Image.new("RGB", (9, 4)), Image.NEAREST)
    assert expanded.mode == mode and expanded.size == (9, 4)
    np.testing.assert_array_equal(np.asarray(expanded)[::2, ::3], np.asarray(picture))


@pytest.mark.parametrize("heatmap, error, message", [
    (Image.new("L", (2, 2)), TypeError, "numpy array"),
    (np.array([["a"]]), TypeError, "numbers"),
    (np.zeros((1,)), ValueError, "shape"),
    (np.zeros((1, 1, 10)), ValueError, "shape"),
    (np.zeros((0, 3)), ValueError, r"\[0, 1\]"),
    (np.array([[-0.001]]), ValueError, r"\[0, 1\]"),
    (np.array([[1.001]]), ValueError, r"\[0, 1\]"),
    (np.array([[np.nan]]), ValueError, r"\[0, 1\]"),
])
def test_heatmap_to_image_refuses(heatmap, error, message):
    with pytest.raises(error, match=message):
        heatmap_to_image(heatmap)
    with pytest.raises(TypeError, match="PIL image"):
        expand_heatmap(np.zeros((2, 2)), np.ones((2, 2)))


def test_opencv_jet_is_matlab_jet_on_uint8_levels():
    from imgexplain.render.opencv import opencv_jet

    # MATLAB's jet: blue rises from 0.5 to 1 on [0, 1/8], green on [1/8, 3/8], red on [3/8, 5/8]; then
    # blue falls on [3/8, 5/8], green on [5/8, 7/8], red to 0.5 at 1.
    levels = np.array([0, 32, 64, 96, 128, 160, 192, 224, 255]) / 255
    expected = []
    for level in levels:
        red = min(max(1.5 - abs(4 * level - 3), 0), 1)
        green = min(max(1.5 - abs(4 * level - 2), 0), 1)
        blue = min(max(1.5 - abs(4 * level - 1), 0), 1)
        expected.append((red, green, blue))
    np.testing.assert_allclose(opencv_jet(levels), expected)
    np.testing.assert_array_equal(opencv_jet(np.array([0.5, 0.5019])), opencv_jet(np.array([0.5, 0.5])))
