"""eli5 0.16's tests/test_formatters_image.py, ported: only the imports and the test images' fixtures differ;
the tests of eli5's private helpers are left out (tests/peers/README.md)."""
# -*- coding: utf-8 -*-

import pytest

PIL = pytest.importorskip('PIL')
matplotlib = pytest.importorskip('matplotlib')

import numpy as np

from eli5_stand_ins import Explanation, box_image, cat_dog_picture  # eli5.base's container; eli5's test images
from imgexplain import TargetExplanation
from imgexplain.render import (
    format_as_image,
    heatmap_to_image,
    expand_heatmap,
)
from eli5_utils_image import assert_pixel_by_pixel_equal


# 'png' format is required for RGBA data
@pytest.fixture(scope='module')
def boxl():
    return box_image('L')


@pytest.fixture(scope='module')
def boxrgb():
    return box_image('RGB')


@pytest.fixture(scope='module')
def boxrgba():
    return box_image('RGBA')


# this is the original catdog image in 'jpg' format with RGB data
@pytest.fixture(scope='module')
def catdog():
    return cat_dog_picture()


@pytest.fixture(scope='module')
def catdog_rgba(catdog):
    return catdog.convert('RGBA')


@pytest.mark.parametrize('heatmap', [
    (np.zeros((5, 5))),
])
def test_heatmap_to_image_grayscale(heatmap, boxl):
    gray_heatmap = heatmap_to_image(heatmap)
    assert heatmap.shape == (gray_heatmap.width, gray_heatmap.height)
    assert_pixel_by_pixel_equal(gray_heatmap, boxl)


@pytest.mark.parametrize('heatmap', [
    (np.zeros((5, 5, 3))),
])
def test_heatmap_to_image_rgb(heatmap, boxrgb):
    rgba_heatmap = heatmap_to_image(heatmap)
    assert heatmap.shape[:2] == (rgba_heatmap.width, rgba_heatmap.height)
    assert_pixel_by_pixel_equal(rgba_heatmap, boxrgb)


@pytest.mark.parametrize('heatmap', [
    (np.zeros((5, 5, 4))),
])
def test_heatmap_to_image_rgba(heatmap, boxrgba):
    rgba_heatmap = heatmap_to_image(heatmap)
    assert heatmap.shape[:2] == (rgba_heatmap.width, rgba_heatmap.height)
    assert_pixel_by_pixel_equal(rgba_heatmap, boxrgba)


def test_heatmap_to_image_invalid():
    # heatmap must have rank 2 or rank 3
    with pytest.raises(ValueError):
        heatmap_to_image(np.zeros((1,)))
    # coloured heatmap must have 4 or 3 channels
    with pytest.raises(ValueError):
        heatmap_to_image(np.zeros((1, 1, 10)))


@pytest.mark.parametrize('heatmap, colormap', [
    (np.ones((1, 1)), matplotlib.cm.binary),
])
def test_colorize(heatmap, colormap):
    colorized = colormap(heatmap)
    # check rank
    assert len(colorized.shape) == 3
    # check that in interval [0, 1]
    assert colorized.max() <= 1.0
    assert 0.0 <= colorized.min()


@pytest.mark.parametrize('heatmap', [
    (np.zeros((3, 3))),
    (np.zeros((10, 10, 4))), # would need downsizing
])
def test_expand_heatmap(boxrgb, heatmap):
    expanded = expand_heatmap(heatmap, boxrgb, PIL.Image.BOX)
    assert (expanded.width, expanded.height) == (boxrgb.width, boxrgb.height)


def test_expand_heatmap_invalid():
    # image is wrong type
    heatmap = np.zeros((1, 1))
    image = np.ones((2, 2))
    with pytest.raises(TypeError):
        expand_heatmap(heatmap, image, PIL.Image.BOX)


@pytest.fixture(scope='module')
def mock_expl(catdog_rgba):
    return Explanation('mock estimator', 
        image=catdog_rgba, 
        targets=[TargetExplanation(-1, 
            heatmap=np.zeros((7, 7))
    )])


@pytest.fixture(scope='module')
def mock_expl_noheatmap(catdog_rgba):
    return Explanation('mock estimator', 
        image=catdog_rgba, 
    )


@pytest.fixture(scope='module')
def mock_expl_imgarr():
    return Explanation('mock estimator',
        image=np.zeros((2, 2, 4)),
    )


@pytest.fixture(scope='module')
def mock_expl_imgmode(boxl):
    return Explanation('mock estimator',
        image=boxl, # mode 'L'
    )


def test_format_as_image_notransparency(catdog_rgba, mock_expl):
    # heatmap with full transparency
    overlay = format_as_image(mock_expl, alpha_limit=0.0)
    assert_pixel_by_pixel_equal(overlay, catdog_rgba)


def test_format_as_image_noheatmap(catdog_rgba, mock_expl_noheatmap):
    # no heatmap
    overlay = format_as_image(mock_expl_noheatmap)
    assert_pixel_by_pixel_equal(overlay, catdog_rgba)


def test_format_as_image_invalid_expl(mock_expl_imgarr):
    with pytest.raises(TypeError):
        format_as_image(mock_expl_imgarr)