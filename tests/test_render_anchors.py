"""Anchor pictures and plots (imgexplain.render.anchors): the anchor kept, the rest hatched grey, numbered
superpixels, and the figure an anchor explanation draws of itself."""
import numpy as np
import pytest
from matplotlib.figure import Figure
from skimage.segmentation import mark_boundaries

from imgexplain import render
from imgexplain.explanation import Explanation


def _image_and_segments():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, size=(40, 60, 3), dtype=np.uint8)
    segments = np.zeros((40, 60), dtype=int)
    segments[:, 20:40] = 1
    segments[:, 40:] = 2
    return image, segments


def test_anchor_picture_keeps_the_anchor_and_greys_the_rest():
    image, segments = _image_and_segments()
    picture = render.anchor_picture(image, segments, [1])
    assert picture.dtype == np.uint8 and picture.shape == image.shape
    anchor = segments == 1
    np.testing.assert_array_equal(picture[anchor], image[anchor])
    # Away from the outline the rest is grey (R = G = B) and lighter than the image on average.
    far = (segments == 0) & (np.arange(60) < 15)[np.newaxis, :] | (segments == 2) & (np.arange(60) > 45)
    assert np.all(picture[far] == picture[far][:, :1])
    assert picture[far].mean() > image[far].mean() + 50
    # The outline follows the anchor's boundary just outside it, one pixel wide, in a colour that is not grey.
    outline = ~anchor & np.any(picture != picture[:, :, :1], axis=2)
    assert set(np.nonzero(outline)[1]) == {19, 40}
    # The region the search may perturb is hatched (two greys), so it never reads as one flat patch.
    assert len(np.unique(picture[segments == 0][:, 0])) >= 2


def test_a_near_whole_anchor_leaves_its_hole_hatched_not_a_flat_grey_patch():
    image = np.full((224, 224, 3), 128, np.uint8)
    segments = np.arange(224 * 224).reshape(224, 224) // (224 * 16)  # 14 bands of 16 rows
    picture = render.anchor_picture(image, segments, [k for k in range(14) if k != 6])
    hole = picture[6 * 16 + 2:7 * 16 - 2, 2:-2, 0]
    assert hole.std() > 10 and len(np.unique(hole)) == 2


def test_anchor_picture_of_a_float_image_in_0_1_matches_its_uint8_picture():
    image, segments = _image_and_segments()
    np.testing.assert_array_equal(render.anchor_picture(image / 255.0, segments, [0, 2]),
                                  render.anchor_picture(image, segments, [0, 2]))


def test_empty_anchor_is_faded_not_black_and_no_text_is_drawn_into_it():
    image = np.full((160, 240, 3), 128, dtype=np.uint8)
    picture = render.anchor_picture(image, np.zeros((160, 240), dtype=int), [])
    assert picture.shape == (160, 240, 3)
    # Every pixel is the faded image, light or hatched: no band, no letters.
    assert set(np.unique(picture).tolist()) == {round(0.35 * 128 + 0.65 * 235), round(0.35 * 128 + 0.65 * 150)}
    np.testing.assert_array_equal(picture[:40], picture[120:160])  # the top band is the hatching, as below
    assert render.EMPTY_ANCHOR_TEXT == "empty anchor: the prediction holds whatever is perturbed"


def test_anchor_picture_rejects_bad_input():
    image, segments = _image_and_segments()
    with pytest.raises(ValueError, match=r"segments: expected a label image of shape \(40, 60\)"):
        render.anchor_picture(image, segments[:, :10], [0])
    with pytest.raises(ValueError, match=r"features: superpixel ids \[7\]"):
        render.anchor_picture(image, segments, [0, 7])
    with pytest.raises(ValueError, match="image: expected an"):
        render.anchor_picture(image[:, :, :2], segments, [0])


def test_boundaries_picture_is_mark_boundaries_plus_numbers():
    image, segments = _image_and_segments()
    plain = render.boundaries_picture(image, segments, numbers=False)
    expected = np.round(mark_boundaries(image, segments, color=(1, 1, 0), mode="thick") * 255)
    np.testing.assert_array_equal(plain, expected.astype(np.uint8))
    assert np.all(plain[:, [19, 20, 39, 40]] == (255, 255, 0))
    numbered = render.boundaries_picture(image, segments)
    changed = np.any(numbered != plain, axis=2)
    # One number per superpixel, written near its middle.
    for label, columns in enumerate([(0, 20), (20, 40), (40, 60)]):
        assert changed[:, columns[0]:columns[1]].any(), label


def _anchor_explanation(features, precision=0.97, coverage=0.31):
    image, segments = _image_and_segments()
    return Explanation(
        meta={"name": "AnchorImage", "params": {}},
        data={"anchor": np.zeros_like(image), "segments": segments, "precision": precision,
              "coverage": coverage, "raw": {"instance": image, "feature": features, "prediction": np.array([3])}},
    )


def test_plot_anchor_draws_image_anchor_and_superpixels():
    figure = render.plot_anchor(_anchor_explanation([1]))
    assert isinstance(figure, Figure)
    titles = [axis.get_title() for axis in figure.axes]
    assert titles == ["image, predicted class 3", "anchor: precision 0.97, coverage 0.31", "3 superpixels"]
    shown = figure.axes[1].get_images()[0].get_array()
    image, segments = _image_and_segments()  # 40 x 60: enlarged 6 times (to 240 x 360), without blurring
    np.testing.assert_array_equal(shown, render.anchor_picture(render.enlarged(image), render.enlarged(segments), [1]))
    assert shown.shape == (240, 360, 3)
    # Ids are matplotlib text over the superpixels panel (and the anchor's on the anchor panel).
    assert sorted(text.get_text() for text in figure.axes[2].texts) == ["0", "1", "2"]
    assert [text.get_text() for text in figure.axes[1].texts] == ["1"]


def test_plot_of_a_28_pixel_image_is_enlarged_and_sharp():
    image = np.random.default_rng(0).integers(0, 256, (28, 28, 3)).astype(np.uint8)
    segments = np.arange(28 * 28).reshape(28, 28) // 196
    explanation = Explanation(meta={}, data={"segments": segments, "precision": 1.0, "coverage": 0.5,
                                             "raw": {"instance": image, "feature": [1], "prediction": [0]}})
    figure = render.plot_anchor(explanation)
    first = figure.axes[0].get_images()[0]
    assert first.get_array().shape == (224, 224, 3) and first.get_interpolation() == "nearest"
    np.testing.assert_array_equal(first.get_array()[::8, ::8], image)


def test_plot_anchor_into_given_axes_and_for_an_empty_anchor():
    figure = Figure()
    axis = figure.subplots()
    assert render.plot_anchor(_anchor_explanation([], precision=1.0, coverage=1.0), ax=axis) is figure
    assert axis.get_title().startswith("empty anchor")
    with pytest.raises(ValueError, match="ax: expected None, one Axes or three Axes; got 2"):
        render.plot_anchor(_anchor_explanation([1]), ax=Figure().subplots(1, 2))


def test_anchor_explanations_plot_themselves():
    """AnchorImage's explanation draws itself with plot_anchor, and Jupyter gets that picture."""
    from imgexplain import AnchorImage

    image, segments = _image_and_segments()

    def middle_is_textured(images):
        return (images[:, :, 20:40].std(axis=(1, 2, 3)) > 20).astype(int)

    explainer = AnchorImage(middle_is_textured, image.shape, segmentation_fn=lambda picture: segments, seed=0)
    explanation = explainer.explain(image.astype(np.float32))
    assert list(explanation.data["raw"]["feature"]) == [1]
    figure = explanation.plot()
    assert [axis.get_title() for axis in figure.axes][1].startswith("anchor: precision 1.00")
    np.testing.assert_array_equal(figure.axes[1].get_images()[0].get_array(),
                                  render.anchor_picture(render.enlarged(image), render.enlarged(segments), [1]))
    assert explanation._repr_png_().startswith(b"\x89PNG")
