"""eli5 0.16's tests/test_keras_integration.py, ported: only the imports and the fixtures standing in for
downloads and files differ; test_show_prediction_nodeps (which mocks eli5.ipython) is left out
(tests/peers/README.md). Test integration of Grad-CAM explanation and image formatter for Keras"""
from __future__ import print_function

import pytest

keras = pytest.importorskip('keras')
PIL = pytest.importorskip('PIL')
matplotlib = pytest.importorskip('matplotlib')

import numpy as np
from PIL import Image
from keras.models import Sequential

import imgexplain
from eli5_stand_ins import eli5, cat_dog_picture  # eli5's functions (errors="return"); eli5's test image
from imgexplain import format_as_image
from imgexplain.render import (
    expand_heatmap
)
from eli5_utils_image import assert_pixel_by_pixel_equal


imagenet_cat_idx = 282


@pytest.fixture(scope='module')
def built_in_model():
    return imgexplain.zoo.efficientnet_lite0(framework="keras")


@pytest.fixture(scope='module')
def keras_clf(built_in_model):
    # Stand-in for MobileNetV2's ImageNet weights (a download): imgexplain's EfficientNet-Lite0, Keras port.
    clf = built_in_model.model
    return clf


@pytest.fixture(scope='module')
def cat_dog_image(built_in_model):
    # Stand-in for tests/images/cat_dog.jpg (eli5_stand_ins.cat_dog_picture), preprocessed for the stand-in model.
    im = cat_dog_picture()
    doc = keras.preprocessing.image.img_to_array(im)
    doc = np.expand_dims(doc, axis=0)  # add batch size
    doc = built_in_model.preprocess(doc)  # because our classifier is EfficientNet-Lite0
    # re-load from array because we did some preprocessing
    im = keras.preprocessing.image.array_to_img(doc[0])
    return doc, im


def assert_good_external_format(expl, overlay):
    """
    Check properties of the formatted heatmap over the original image,
    using external properties of the image,
    such as dimensions, mode, type.
    """
    original = expl.image
    # check external properties
    assert isinstance(overlay, Image.Image)
    assert overlay.width == original.width
    assert overlay.height == original.height
    assert overlay.mode == 'RGBA'


def assert_attention_over_area(expl, area):
    """
    Check that the explanation 'expl' lights up the most over 'area', 
    a tuple of (x1, x2, y1, y2), starting and ending points of the bounding rectangle
    in the original image.
    We make two assumptions in this test:
    1. The model can classify the example image correctly.
    2. The area specified by the tester over the example image covers the predicted class correctly.
    """
    image = expl.image
    heatmap = expl.targets[0].heatmap

    # fit heatmap over image
    heatmap = expand_heatmap(heatmap, image, Image.LANCZOS)
    heatmap = np.array(heatmap)

    # get a slice of the area
    x1, x2, y1, y2 = area
    crop = heatmap[y1:y2, x1:x2] # row-first ordering
    # TODO: instead of hard-coding the height and width offsets
    # it might be a better idea to use percentages
    # this makes the tests independent of any resizing done on the image
    # and the heatmap doesn't have to be resized
    # however, it might be harder for the user to determine percentages

    # check intensity
    total_intensity = np.sum(heatmap)
    crop_intensity = np.sum(crop)
    p = total_intensity / 100 # -> 1% of total_intensity
    crop_p = crop_intensity / p # -> intensity %
    # at least 50% (need to experiment with this number)
    assert 50 < crop_p

    # Alternatively, check that the intensity over area
    # is greater than all other intensity:
    # remaining_intensity = total_intensity - intensity
    # assert remaining_intensity < total_intensity


# area = (x1, x2, y1, y2)
@pytest.mark.parametrize('area, targets', [
    ((54, 170, 2, 100), None), # focus on the dog (pick top prediction)
    ((44, 180, 130, 212), [imagenet_cat_idx]), # focus on the cat (supply prediction)
])
def test_image_classification(keras_clf, cat_dog_image, area, targets):
    doc, image = cat_dog_image
    # check explanation
    res = eli5.explain_prediction(keras_clf, doc, image=image, targets=targets)
    assert_attention_over_area(res, area)

    # check formatting
    res.image = res.image.convert('RGBA')  # explicitly normalize
    overlay = format_as_image(res)
    assert_good_external_format(res, overlay)

    # check show function with image auto-conversion
    show_overlay = eli5.show_prediction(keras_clf, doc, targets=targets)

    assert_pixel_by_pixel_equal(overlay, show_overlay)


@pytest.mark.parametrize('model, doc', [
    (Sequential(), np.zeros((0,))),  # bad input
    (Sequential(), np.zeros((1, 2, 2, 3),)),  # bad model
])
def test_explain_prediction_not_supported(model, doc):
    res = eli5.explain_prediction(model, doc)
    assert 'supported' in res.error