"""Stand-ins for what eli5's tests load from files or downloads, or take from eli5's own containers, for the
ported tests.

- ``eli5``: the functions the tests call as ``eli5.NAME``, from imgexplain. ``explain_prediction`` is called
  with ``errors="return"``: eli5 returns an explanation with ``.error`` for a model it cannot explain, where
  imgexplain raises by default (README, "Coming from eli5").
- ``Explanation``: eli5.base's plain container (an estimator name and keyword fields), which the formatter
  tests fill by hand; imgexplain's ``format_as_image`` takes any object with ``.image`` and ``.targets``.
- ``box_image``: eli5's tests/images/box_5x5_{l,rgb,rgba}.png are 5x5 pictures of zeros, made here.
- ``cat_dog_picture``: eli5's tests/images/cat_dog.jpg (a dog above a cat) is a file of eli5's repository;
  here a 224x224 picture of scikit-image's coffee cup above its cat (chelsea), so that the top class is
  above and the cat in the area the test names.
- ``keras_clf``: MobileNetV2's ImageNet weights are a download; here imgexplain's built-in EfficientNet-Lite0
  (its Keras port), which ships with the dependencies.
"""
import functools
import types

import numpy as np
from PIL import Image

import imgexplain

eli5 = types.SimpleNamespace(explain_prediction=functools.partial(imgexplain.explain_prediction, errors="return"),
                             show_prediction=imgexplain.show_prediction, format_as_image=imgexplain.format_as_image)


class Explanation:
    def __init__(self, estimator, description=None, error=None, method=None, is_regression=False, targets=None,
                 image=None, **other_fields):
        self.estimator, self.description, self.error, self.method = estimator, description, error, method
        self.is_regression, self.targets, self.image = is_regression, targets, image
        self.__dict__.update(other_fields)


def box_image(mode):
    channels = {"L": (), "RGB": (3,), "RGBA": (4,)}[mode]
    return Image.fromarray(np.zeros((5, 5) + channels, np.uint8), mode=mode)


def cat_dog_picture():
    """224x224 RGB on grey: the coffee cup in rows 0..127 (EfficientNet-Lite0's top class: espresso), the cat,
    56x80, centred on row 171 (tiger cat, 282, among its classes)."""
    from imgexplain.datasets import load_samples, resize_image

    samples = load_samples(target_size=None, names=["coffee", "chelsea"])
    picture = np.full((224, 224, 3), 128, np.uint8)
    picture[:128] = resize_image(samples["coffee"], (128, 224))
    picture[143:199, 72:152] = resize_image(samples["chelsea"], (56, 80))
    return Image.fromarray(picture)
