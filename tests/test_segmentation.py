"""Superpixels: built-in segmentations, grid superpixels, relabelling and validation."""
import numpy as np
import pytest
from skimage import data

from imgexplain.segmentation import (grid_segments, make_segmentation_fn, relabel_segments, segment_image,
                                     superpixel_means)


def test_grid_segments_row_by_row():
    np.testing.assert_array_equal(grid_segments((4, 6), (2, 3)), [[0, 0, 0, 1, 1, 1]] * 2 + [[2, 2, 2, 3, 3, 3]] * 2)
    assert grid_segments((5, 5), (2, 2)).max() == 8  # partial cells at the edges
    with pytest.raises(ValueError, match="cell must be a"):
        grid_segments((4, 4), (0, 2))
    with pytest.raises(TypeError, match="cell must be a"):
        grid_segments((4, 4), 2)


def test_superpixel_means_per_channel_and_for_grayscale():
    segments = np.array([[0, 0, 1], [0, 1, 1]])
    gray = np.array([[1, 2, 10], [3, 20, 30]], dtype=np.uint8)
    np.testing.assert_array_equal(superpixel_means(gray, segments), [[2, 2, 20], [2, 20, 20]])
    color = np.stack([gray, 2 * gray], axis=-1)
    means = superpixel_means(color, segments)
    assert means.shape == (2, 3, 2) and means.dtype == np.float64
    np.testing.assert_array_equal(means[..., 1], 2 * superpixel_means(gray, segments))


def test_relabel_keeps_order_and_maps_to_consecutive_integers():
    labels = np.array([[7, 7, 3], [100, 3, 7]])
    np.testing.assert_array_equal(relabel_segments(labels, (2, 3)), [[1, 1, 0], [2, 0, 1]])


@pytest.mark.parametrize("name", ["slic", "felzenszwalb", "quickshift"])
def test_builtin_segmentations_give_consecutive_labels(name):
    image = data.astronaut()[::8, ::8].astype(np.float32) / 255
    function, custom, kwargs = make_segmentation_fn(name, None)
    segments = segment_image(function, image, custom)
    assert not custom and segments.shape == image.shape[:2]
    assert set(np.unique(segments)) == set(range(segments.max() + 1)) and segments.max() >= 1


def test_slic_kwargs_are_passed_and_one_based_labels_relabelled():
    image = data.astronaut()[::8, ::8].astype(np.float32) / 255
    function, _, kwargs = make_segmentation_fn("slic", {"n_segments": 15, "compactness": 20, "sigma": 0.5})
    assert kwargs == {"n_segments": 15, "compactness": 20, "sigma": 0.5}
    segments = segment_image(function, image, custom=False)
    assert segments.min() == 0 and 5 <= segments.max() + 1 <= 20


def test_custom_function_sees_the_image_unchanged():
    seen = []

    def remember(image):
        seen.append(image.shape)
        return grid_segments(image.shape[:2], (4, 4))

    function, custom, _ = make_segmentation_fn(remember, None)
    segment_image(function, np.zeros((8, 8, 1)), custom)
    assert custom and seen == [(8, 8, 1)]


@pytest.mark.parametrize("segmentation_fn, error", [("watershed", ValueError), (3, TypeError), (None, TypeError)])
def test_an_unknown_segmentation_fn_is_refused(segmentation_fn, error):
    with pytest.raises(error, match="segmentation_fn must be one of"):
        make_segmentation_fn(segmentation_fn, None)


def test_the_command_line_reads_which_segmentation_takes_a_count_from_one_table(monkeypatch):
    from argparse import Namespace

    from imgexplain import cli_options, segmentation
    from imgexplain.cli_options import InputError

    args = Namespace(top_k=5, p_sample=0.5, n_segments=30, segmentation="felzenszwalb", layer=None, multilabel=False)
    with pytest.raises(InputError, match="--n-segments applies to --segmentation slic; felzenszwalb finds its own"):
        cli_options.check_options(args, ["anchor"], "builtin")
    assert cli_options.segmentation_kwargs("slic", 30)["n_segments"] == 30
    monkeypatch.setitem(segmentation.COUNT_ARGUMENT, "felzenszwalb", "scale")
    cli_options.check_options(args, ["anchor"], "builtin")
    assert cli_options.segmentation_kwargs("felzenszwalb", 30) == {"scale": 30}
